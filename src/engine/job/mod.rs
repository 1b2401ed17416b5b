//! One job, driven phase by phase along the transition table in
//! [`super::machine`]. This module holds what every kind shares: starting
//! an attempt, cleanup, retries and recording; each kind's own steps live
//! in a file of their own ([`backup`], [`snapshot`], [`server`],
//! [`restore`]).
//!
//! Every intent (a move after which the job's next step may create
//! something) is committed before that step, so a job can be continued
//! from its last intent after a restart and adopt what it made, by name.
//! The daemon commits the intents of many jobs at once (see
//! [`Store::durable`]).
//! The completion timeout runs from the job's first API call (time spent
//! waiting for a `max_concurrent_jobs` slot or jitter does not count) and
//! covers every attempt: each API call of the job ends by it, however the
//! server behaves, and calls at or past it share one last look of at most
//! [`crate::api::LAST_LOOK`]. Sharing and removing the temporary snapshot,
//! once the outcome is recorded, have [`CLEANUP_BUDGET`] each.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::machine::Outcome;
use super::observer::{JobEvent, Listeners};
use crate::api::{CloudClient, Deadline};
use crate::config::{Policy, Work};
use crate::kind::PolicyKind;
use crate::store::{EventKind, JobRecord, JobStatus, JobUpdate, Phase, Store, StoreError, Ticket};

mod backup;
mod cbr;
mod cbr_run;
mod record;
mod restore;
mod restore_cbr;
pub(super) mod scratch;
pub use cbr_run::RunCheckpoints;
mod server;
mod share;
mod snapshot;
mod verify;
mod watch;

/// How long sharing the backup, and removing the temporary snapshot, may
/// each take on top of the job.
const CLEANUP_BUDGET: Duration = Duration::from_secs(600);

/// Drives one job to `done`.
pub struct JobRunner {
    store: Arc<Store>,
    /// Bound to [`Self::deadline`] once the job runs.
    client: CloudClient,
    /// Shared by every job of the run: a queued job costs little memory.
    policy: Arc<Policy>,
    job: JobRecord,
    deadline: Instant,
    /// Whether a `*_requested` phase may already have created its resource
    /// (true when continuing a job recorded by an earlier process).
    maybe_exists: bool,
    /// Whether an earlier process may already have asked to delete the
    /// attempt's snapshot (a job continued in cleanup).
    deletion_maybe_asked: bool,
    /// Status strings already reported as unknown (reported once each).
    unknown_statuses: Vec<String>,
    /// Told of every transition, poll and warning.
    listeners: Listeners,
    /// The last intent written, until it is known to be committed.
    intent: Option<Ticket>,
    /// The CBR checkpoints of the runs in flight, shared by their jobs.
    cbr_runs: Arc<RunCheckpoints>,
}

impl JobRunner {
    /// Prepares to drive `job`; `resumed` marks a job picked up after a restart.
    pub fn new(
        store: Arc<Store>,
        client: CloudClient,
        policy: Arc<Policy>,
        job: JobRecord,
        resumed: bool,
        listeners: Listeners,
        cbr_runs: Arc<RunCheckpoints>,
    ) -> Self {
        let elapsed = (Utc::now() - job.started_at).to_std().unwrap_or_default();
        let remaining = policy.completion_timeout.saturating_sub(elapsed);
        let deletion_maybe_asked = resumed && job.phase == Phase::Cleanup;
        Self {
            store,
            client,
            policy,
            job,
            deadline: Instant::now() + remaining,
            maybe_exists: resumed,
            deletion_maybe_asked,
            unknown_statuses: Vec::new(),
            listeners,
            intent: None,
            cbr_runs,
        }
    }

    /// Runs the job to its end and returns the final record.
    pub async fn run(mut self) -> Result<JobRecord, StoreError> {
        if self.job.phase == Phase::Pending && self.job.attempt == 1 {
            // A fresh job's clock starts now, not when it was queued.
            self.deadline = Instant::now() + self.policy.completion_timeout;
        }
        self.client = self.client.until(Deadline::new(self.deadline));
        loop {
            if let Some(ticket) = self.intent.take() {
                self.store.durable(ticket).await?;
            }
            match self.job.phase {
                Phase::Pending => self.start_attempt().await?,
                Phase::Cleanup => self.cleanup().await?,
                Phase::Done => {
                    self.listeners
                        .tell(&self.policy, &self.job, &JobEvent::Finished);
                    return Ok(self.job);
                }
                phase => {
                    let policy = Arc::clone(&self.policy);
                    match (self.job.kind, &policy.work) {
                        (PolicyKind::Backup, Work::Backup(work)) if self.job.on_cbr() => {
                            cbr::step(&mut self, work, phase).await?
                        }
                        (PolicyKind::Backup, Work::Backup(work)) => {
                            backup::step(&mut self, work, phase).await?
                        }
                        (PolicyKind::Snapshot, Work::Snapshot(work)) => {
                            snapshot::step(&mut self, work, phase).await?
                        }
                        (PolicyKind::Server, Work::Server(work)) if self.job.on_cbr() => {
                            cbr::step_server(&mut self, work, phase).await?
                        }
                        (PolicyKind::Server, Work::Server(work)) => {
                            server::step(&mut self, work, phase).await?
                        }
                        (PolicyKind::Restore, Work::Restore(work)) if self.job.on_cbr() => {
                            restore_cbr::step(&mut self, work, phase).await?
                        }
                        (PolicyKind::Restore, Work::Restore(work)) => {
                            restore::step(&mut self, work, phase).await?
                        }
                        (was, _) => {
                            let reason = format!(
                                "policy {} was changed from kind {was} to {} while this job was running",
                                policy.name,
                                policy.kind()
                            );
                            self.give_up(JobStatus::Failed, &reason)?
                        }
                    }
                }
            }
        }
    }

    /// The description sent with every resource the job creates.
    fn description(&self) -> String {
        self.policy
            .description
            .clone()
            .unwrap_or_else(|| format!("vbs-agent policy {}", self.policy.name))
    }

    /// Starts the current attempt, at its scheduled time for a retry.
    async fn start_attempt(&mut self) -> Result<(), StoreError> {
        let wait = (self.job.attempt_started_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        let note = format!("attempt {} as {}", self.job.attempt, self.job.resource_name);
        let outcome = if self.job.kind == PolicyKind::Backup && self.job.on_cbr() {
            Outcome::StartedAtBackup
        } else {
            Outcome::Started
        };
        self.advance(outcome, JobUpdate::default(), &note)
    }

    /// Removes the temporary snapshot (unless the policy keeps it) or the
    /// restore's scratch volume, then
    /// starts the next attempt when one is due, or ends the job.
    async fn cleanup(&mut self) -> Result<(), StoreError> {
        let snapshot = self
            .job
            .snapshot_id
            .clone()
            .filter(|_| !self.keeps_snapshot());
        if let Some(id) = snapshot {
            let asked_before = std::mem::take(&mut self.deletion_maybe_asked);
            if let Err(reason) = snapshot::delete(self, &id, asked_before).await {
                self.warn(&format!("temporary snapshot {id} left behind: {reason}"))?;
            }
        }
        if self.job.kind == PolicyKind::Restore {
            scratch::clean_up(self).await?;
        }
        if let Some(start) = self.job.retry_at {
            return self.next_attempt(start);
        }
        self.advance(Outcome::Finished, JobUpdate::default(), "done")
    }

    /// When the next attempt should start, if the policy allows one more
    /// and it can start before the completion deadline.
    fn retry_at(&self) -> Option<chrono::DateTime<Utc>> {
        let retries = self.policy.retries;
        if self.job.attempt >= retries.max_attempts {
            return None;
        }
        let start = Utc::now() + chrono::TimeDelta::from_std(retries.delay).ok()?;
        let deadline = self.job.started_at
            + chrono::TimeDelta::from_std(self.policy.completion_timeout).ok()?;
        (start < deadline).then_some(start)
    }

    /// Archives the failed attempt and schedules the next one under its own name.
    fn next_attempt(&mut self, start: chrono::DateTime<Utc>) -> Result<(), StoreError> {
        let attempt = self.job.attempt + 1;
        let name = crate::naming::attempt_name(&self.job.resource_name, attempt);
        self.store.begin_next_attempt(self.job.id, &name, start)?;
        self.job = self.store.job(self.job.id)?;
        let message = format!(
            "attempt {} failed; attempt {attempt} as {name} at {start}",
            attempt - 1
        );
        tracing::info!("{message}");
        self.store
            .record_event(EventKind::State, &self.event(&message), Utc::now())?;
        let note = JobEvent::Phase { note: &message };
        self.listeners.tell(&self.policy, &self.job, &note);
        Ok(())
    }

    /// Ends the attempt with `status` through cleanup, which removes the
    /// snapshot (if any), then starts the next attempt when the failure is
    /// worth retrying and the policy allows one.
    fn fail_then_cleanup(
        &mut self,
        status: JobStatus,
        reason: &str,
        retry_worthy: bool,
    ) -> Result<(), StoreError> {
        let update = JobUpdate {
            status: Some(status),
            fail_reason: Some(reason),
            retry_at: if retry_worthy { self.retry_at() } else { None },
            ..Default::default()
        };
        self.advance(Outcome::Failed, update, reason)
    }

    /// Ends the job with `status` now, without cleanup.
    fn give_up(&mut self, status: JobStatus, reason: &str) -> Result<(), StoreError> {
        let update = JobUpdate {
            status: Some(status),
            fail_reason: Some(reason),
            ..Default::default()
        };
        self.advance(Outcome::GaveUp, update, reason)
    }

    /// A phase that is not one of this kind's steps: a defect, or a
    /// history written by a different agent. Ends the job rather than
    /// guess.
    fn misplaced(&mut self, phase: Phase) -> Result<(), StoreError> {
        let reason = format!(
            "internal: a {} job has no step for phase {}",
            self.job.kind,
            phase.as_str()
        );
        self.give_up(JobStatus::Failed, &reason)
    }

    /// Whether cleanup leaves the attempt's snapshot in place.
    fn keeps_snapshot(&self) -> bool {
        matches!(&self.policy.work, Work::Backup(w) if w.keep_snapshot)
    }

    /// The completion timeout, for messages.
    fn timeout_text(&self) -> humantime::FormattedDuration {
        humantime::format_duration(self.policy.completion_timeout)
    }
}
