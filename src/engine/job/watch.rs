//! Waiting for a job's own resource (snapshot, backup, checkpoint item) to
//! settle: one loop for every kind, which reports each look, keeps
//! unknown statuses apart, and tells trouble reading the resource from the
//! resource going away.

use std::future::Future;
use std::sync::Mutex;

use super::super::poll::{poll_with, Cadence, Look, PollEnd};
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
