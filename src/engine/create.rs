//! Creating a resource exactly once. A create call whose outcome is unknown
//! (timeout, reset connection, unreadable answer) is never simply repeated:
//! the resource is first looked up by its deterministic name and adopted if
//! it exists.

use std::future::Future;

use tokio::time::Instant;

use super::poll::Cadence;
use crate::api::{ApiError, ErrorClass};
use crate::config::PollSettings;

/// How a create-or-adopt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    /// The resource exists (created now, or found by name and adopted).
    Id { id: String, adopted: bool },
    /// The cloud refused for good (or quota, or auth); the reason says why.
    /// `retry_worthy` when a later attempt of the job may succeed (the cloud
    /// reports that a snapshot or backup it made for the request failed).
    /// `status`: the HTTP status of the refusal, when there was one.
    Refused {
        reason: String,
        retry_worthy: bool,
        status: Option<u16>,
    },
    /// The deadline passed while the cloud kept failing or stayed busy.
    TimedOut(String),
}

/// Finds-or-creates until the deadline. `maybe_exists` says whether an
/// earlier attempt (before a restart, say) may already have created it.
pub async fn create_or_adopt<Find, FindFut, Make, MakeFut>(
    what: &str,
    poll: &PollSettings,
    deadline: Instant,
    mut maybe_exists: bool,
    find: Find,
    make: Make,
) -> Created
where
    Find: Fn() -> FindFut,
    FindFut: Future<Output = Result<Option<String>, ApiError>>,
    Make: Fn() -> MakeFut,
    MakeFut: Future<Output = Result<String, ApiError>>,
{
    let mut cadence = Cadence::new(poll);
    let mut last_error: Option<ApiError> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            // What an earlier attempt may have made is looked for once more,
            // so that it is recorded even when the job has run out of time.
            if maybe_exists {
                if let Ok(Some(id)) = find().await {
                    return Created::Id { id, adopted: true };
                }
            }
            let last = last_error.map_or_else(|| "none".to_string(), |e| e.to_string());
            return Created::TimedOut(format!(
                "{what} was not created within the completion timeout (last error: {last})"
            ));
        }
        if let Some(e) = &last_error {
            tracing::info!(what, error = %e, "will try again");
            tokio::time::sleep(cadence.next_wait().min(deadline - now)).await;
        }
        if maybe_exists {
            match find().await {
                Ok(Some(id)) => return Created::Id { id, adopted: true },
                Ok(None) => {}
                Err(e) => {
                    if !retry_worthy(&e) {
                        return Created::Refused {
                            reason: format!("looking up {what} by name failed: {e}"),
                            retry_worthy: false,
                            status: e.status,
                        };
                    }
                    last_error = Some(e);
                    continue;
                }
            }
        }
        match make().await {
            Ok(id) => return Created::Id { id, adopted: false },
            Err(e) if retry_worthy(&e) => {
                // Unless the server provably never saw it, the request may
                // have created the resource: look before creating again.
                maybe_exists |= !e.not_processed && e.class != ErrorClass::Busy;
                last_error = Some(e);
            }
            Err(e) => {
                return Created::Refused {
                    reason: refusal(what, &e),
                    retry_worthy: e
                        .code
                        .as_deref()
                        .is_some_and(|c| RETRY_WORTHY_CODES.contains(&c)),
                    status: e.status,
                }
            }
        }
    }
}

/// VBS codes saying a snapshot, temporary disk or backup made for the
/// request went to error: the job may succeed on a later attempt.
const RETRY_WORTHY_CODES: &[&str] = &[
    "VolumeBackup.0062",
    "VolumeBackup.0063",
    "VolumeBackup.0064",
];

fn retry_worthy(e: &ApiError) -> bool {
    matches!(
        e.class,
        ErrorClass::Retryable | ErrorClass::BadAnswer | ErrorClass::Busy
    )
}

fn refusal(what: &str, e: &ApiError) -> String {
    match e.class {
        ErrorClass::Quota => format!("quota exhausted, {what} not created: {e}"),
        ErrorClass::Auth => format!("authentication failed, {what} not created: {e}"),
        _ => format!("{what} refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    use super::*;

    fn poll() -> PollSettings {
        PollSettings {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            factor: 2.0,
        }
    }

    fn err(class: ErrorClass, not_processed: bool) -> ApiError {
        ApiError {
            class,
            call: "POST /v3/p/backups".into(),
            status: None,
            code: None,
            message: "boom".into(),
            not_processed,
            retry_after: None,
        }
    }

    /// The resource `id`, found by name (`adopted`) or created.
    fn id(id: &str, adopted: bool) -> Created {
        Created::Id {
            id: id.into(),
            adopted,
        }
    }

    /// A fake cloud: `make` results in order; `find` sees what `make` created.
    struct Fake {
        created: RefCell<Vec<String>>,
        answers: RefCell<Vec<Result<(), ApiError>>>,
        finds: Cell<u32>,
    }

    impl Fake {
        fn new(answers: Vec<Result<(), ApiError>>) -> Self {
            Self {
                created: RefCell::new(Vec::new()),
                answers: RefCell::new(answers),
                finds: Cell::new(0),
            }
        }

        async fn find(&self) -> Result<Option<String>, ApiError> {
            self.finds.set(self.finds.get() + 1);
            Ok(self.created.borrow().first().cloned())
        }

        /// Each answer: Ok = created and answered; Err(not_processed=false) =
        /// created but the answer was lost; Err(not_processed=true) = refused.
        async fn make(&self) -> Result<String, ApiError> {
            let answer = self.answers.borrow_mut().remove(0);
            match answer {
                Ok(()) => {
                    let id = format!("id-{}", self.created.borrow().len());
                    self.created.borrow_mut().push(id.clone());
                    Ok(id)
                }
                Err(e) => {
                    if !e.not_processed && e.class != ErrorClass::Busy {
                        let id = format!("id-{}", self.created.borrow().len());
                        self.created.borrow_mut().push(id);
                    }
                    Err(e)
                }
            }
        }
    }

    /// Create-or-adopt against the fake, with a deadline `secs` from now.
    async fn attempt(fake: &Fake, maybe_exists: bool, secs: u64) -> Created {
        let deadline = Instant::now() + Duration::from_secs(secs);
        create_or_adopt(
            "backup",
            &poll(),
            deadline,
            maybe_exists,
            || fake.find(),
            || fake.make(),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_answer_is_adopted_not_repeated() {
        let fake = Fake::new(vec![Err(err(ErrorClass::Retryable, false)), Ok(())]);
        let got = attempt(&fake, false, 60).await;
        assert_eq!(got, id("id-0", true));
        assert_eq!(fake.created.borrow().len(), 1, "created twice");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_is_simply_retried() {
        let fake = Fake::new(vec![Err(err(ErrorClass::Retryable, true)), Ok(())]);
        let got = attempt(&fake, false, 60).await;
        assert_eq!(got, id("id-0", false));
        assert_eq!(fake.finds.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_job_looks_before_creating() {
        let fake = Fake::new(vec![Ok(())]);
        fake.created.borrow_mut().push("before-crash".into());
        let got = attempt(&fake, true, 60).await;
        assert_eq!(got, id("before-crash", true));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_waits_then_creates_and_quota_refuses() {
        let fake = Fake::new(vec![
            Err(err(ErrorClass::Busy, false)),
            Err(err(ErrorClass::Busy, false)),
            Ok(()),
        ]);
        let got = attempt(&fake, false, 60).await;
        assert_eq!(got, id("id-0", false));

        let fake = Fake::new(vec![Err(err(ErrorClass::Quota, false))]);
        let got = attempt(&fake, false, 60).await;
        assert!(
            matches!(got, Created::Refused { ref reason, retry_worthy: false, .. } if reason.starts_with("quota exhausted")),
            "{got:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_resumed_job_past_its_deadline_still_adopts_what_exists() {
        let fake = Fake::new(vec![]);
        fake.created
            .borrow_mut()
            .push("made-before-the-crash".into());
        let got = attempt(&fake, true, 0).await;
        assert_eq!(got, id("made-before-the-crash", true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cloud_that_stays_busy_times_out() {
        let fake = Fake::new(
            (0..100)
                .map(|_| Err(err(ErrorClass::Busy, false)))
                .collect(),
        );
        let got = attempt(&fake, false, 30).await;
        assert!(
            matches!(got, Created::TimedOut(ref r) if r.contains("boom")),
            "{got:?}"
        );
    }
}
