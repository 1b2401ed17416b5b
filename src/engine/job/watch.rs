//! Waiting for a job's own resource (snapshot, backup, checkpoint item) to
//! settle: one loop for every kind, which reports each look, keeps
//! unknown statuses apart, and tells trouble reading the resource from the
//! resource going away.

use std::future::Future;
use std::sync::Mutex;

use super::super::poll::{poll_until, poll_with, Cadence, Look, PollEnd};
use super::JobRunner;
use crate::api::{ApiError, ErrorClass};
use crate::store::StoreError;

/// What a resource's status says.
pub(super) enum Verdict {
    /// Terminal: the caller reads the outcome from the resource.
    Settled,
    /// Still working.
    Working,
    /// A status the agent does not know: warned about once, then waited on.
    Unknown,
    /// The job cannot go on with this resource; the reason says why.
    Lost(String),
}

/// One resource of a job to wait for.
pub(super) struct Watch<'a> {
    /// The resource's name in messages: `snapshot`, `backup`, `checkpoint item`.
    pub what: &'static str,
    pub id: &'a str,
    pub cadence: Cadence,
}

impl JobRunner {
    /// Looks at the resource until a status settles it, it is lost, or the
    /// job's deadline passes. `look` reads it, `status` and `judge` say
    /// where it stands, and `seen` is told of every answer.
    pub(super) async fn watch<T, Fut>(
        &mut self,
        watch: Watch<'_>,
        look: impl Fn() -> Fut,
        status: impl Fn(&T) -> &str,
        judge: impl Fn(&str) -> Verdict,
        seen: impl Fn(&JobRunner, &T),
    ) -> Result<Result<T, PollEnd<String>>, StoreError>
    where
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let Watch { what, id, cadence } = watch;
        let unknown = Mutex::new(Vec::<String>::new());
        let this = &*self;
        let end = poll_with(cadence, this.deadline, || async {
            match look().await {
                Ok(resource) => {
                    let status = status(&resource);
                    this.polled(what, id, status);
                    seen(this, &resource);
                    match judge(status) {
                        Verdict::Settled => Look::Done(resource),
                        Verdict::Working => Look::Pending,
                        Verdict::Unknown => {
                            let mut unknown = unknown.lock().unwrap_or_else(|p| p.into_inner());
                            if !unknown.iter().any(|s| s == status) {
                                unknown.push(status.to_string());
                            }
                            Look::Pending
                        }
                        Verdict::Lost(reason) => Look::Fail(reason),
                    }
                }
                Err(e) => look_error(what, id, e),
            }
        })
        .await;
        let unknown = unknown.into_inner().unwrap_or_else(|p| p.into_inner());
        self.warn_unknown(what, id, unknown)?;
        Ok(end)
    }
}

impl JobRunner {
    /// What an earlier process may have made, found by `look` (by name),
    /// asked again while it is not listed until `grace` after the job
    /// entered its phase: a restart right after the create must not take
    /// "not listed yet" for "never made". Trouble looking gives `None`,
    /// left to the create-or-adopt that follows.
    pub(super) async fn listed_since_phase<T, Fut>(
        &self,
        grace: chrono::TimeDelta,
        look: impl Fn() -> Fut,
    ) -> Result<Option<T>, StoreError>
    where
        Fut: Future<Output = Result<Option<T>, ApiError>>,
    {
        let left = (self.phase_entered_at()? + grace - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        let until = (tokio::time::Instant::now() + left).min(self.deadline);
        let found = poll_until(&self.policy.poll, until, || async {
            match look().await {
                Ok(Some(found)) => Look::Done(found),
                Ok(None) => Look::Pending,
                Err(_) => Look::Fail(()),
            }
        })
        .await;
        Ok(found.ok())
    }

    /// What `look` finds in a list (`what` `id`'s result), asked again
    /// while the list does not show it yet, until `until`; with the number
    /// of looks that found nothing. Trouble reading the list for good is
    /// warned about and gives `None`.
    pub(super) async fn find_listed<T, Fut>(
        &mut self,
        until: tokio::time::Instant,
        what: &str,
        id: &str,
        look: impl Fn() -> Fut,
    ) -> Result<(Option<T>, u32), StoreError>
    where
        Fut: Future<Output = Result<Option<T>, ApiError>>,
    {
        let empty_looks = Mutex::new(0u32);
        let found = poll_until(&self.policy.poll, until, || async {
            match look().await {
                Ok(Some(found)) => Look::Done(found),
                Ok(None) => {
                    *empty_looks.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    Look::Pending
                }
                Err(e) => look_error(what, id, e),
            }
        })
        .await;
        let empty = empty_looks.into_inner().unwrap_or_else(|p| p.into_inner());
        match found {
            Ok(found) => Ok((Some(found), empty)),
            Err(PollEnd::Deadline) => Ok((None, empty)),
            Err(PollEnd::Failed(reason)) => {
                self.warn(&reason)?;
                Ok((None, empty))
            }
        }
    }
}

/// A failed GET while polling: the job's own resource vanishing is a
/// failure; transient trouble means look again later.
pub(super) fn look_error<T>(what: &str, id: &str, e: ApiError) -> Look<T, String> {
    if e.is_not_found() {
        return Look::Fail(format!(
            "{what} {id} disappeared (HTTP 404) while the agent was waiting for it"
        ));
    }
    match e.class {
        ErrorClass::Retryable | ErrorClass::BadAnswer | ErrorClass::Busy => Look::Pending,
        _ => Look::Fail(format!("cannot read {what} {id}: {e}")),
    }
}
