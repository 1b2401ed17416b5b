//! One job: snapshot → backup → sharing → snapshot cleanup (kind
//! `backup`), the snapshot alone (kind `snapshot`), or a CSBS server backup
//! (kind `server`, see [`server`]).
//!
//! Every transition is written to the history before the next API call, so
//! a job can be continued from its last phase after a restart:
//!
//! ```text
//! pending → snapshot_requested → snapshot_creating → backup_requested
//!         → backup_creating → sharing → cleanup → done
//! ```
//! Failures go through `cleanup` (which removes a snapshot if there is one)
//! and from there to `done`, or back to `pending` for another attempt.
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

use super::create::{create_or_adopt, Created};
use super::observer::{JobEvent, Listeners};
use super::poll::{poll_until, poll_with, Cadence, Expected, Look, PollEnd};
use crate::api::{ApiError, CloudClient, Deadline, ErrorClass, NewBackup, NewSnapshot};
use crate::bounded;
use crate::config::{BackupWork, Policy, PolicyKind, Work};
use crate::store::{Event, EventKind, JobRecord, JobStatus, JobUpdate, Phase, Store, StoreError};

mod server;

/// Rounds of sharing before a share is recorded as failed.
const SHARE_ATTEMPTS: u32 = 3;

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
    /// Status strings already reported as unknown (reported once each).
    unknown_statuses: Vec<String>,
    /// Told of every transition, poll and warning.
    listeners: Listeners,
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
    ) -> Self {
        let elapsed = (Utc::now() - job.started_at).to_std().unwrap_or_default();
        let remaining = policy.completion_timeout.saturating_sub(elapsed);
        Self {
            store,
            client,
            policy,
            job,
            deadline: Instant::now() + remaining,
            maybe_exists: resumed,
            unknown_statuses: Vec::new(),
            listeners,
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
            match self.job.phase {
                Phase::Pending => self.start_attempt().await?,
                Phase::SnapshotRequested => self.request_snapshot().await?,
                Phase::SnapshotCreating => self.await_snapshot().await?,
                Phase::BackupRequested if self.is_server() => self.request_protect().await?,
                Phase::BackupCreating if self.is_server() => self.await_checkpoint().await?,
                Phase::BackupRequested => self.request_backup().await?,
                Phase::BackupCreating => self.await_backup().await?,
                Phase::Sharing => self.share().await?,
                Phase::Cleanup => self.cleanup().await?,
                Phase::Done => {
                    self.listeners
                        .tell(&self.policy, &self.job, &JobEvent::Finished);
                    return Ok(self.job);
                }
            }
        }
    }

    /// Kind `server`: a CSBS backup instead of snapshot and VBS backup.
    fn is_server(&self) -> bool {
        self.policy.kind() == PolicyKind::Server
    }

    /// The settings only kind `backup` has; `None` for the other kinds.
    fn backup_work(&self) -> Option<&BackupWork> {
        match &self.policy.work {
            Work::Backup(w) => Some(w),
            _ => None,
        }
    }

    /// Whether attached volumes are snapshotted too.
    fn force(&self) -> bool {
        match &self.policy.work {
            Work::Backup(w) => w.force,
            Work::Snapshot(w) => w.force,
            Work::Server(_) => false,
        }
    }

    /// The projects each backup is shared with; none but for kind `backup`.
    fn share_to(&self) -> &[String] {
        self.backup_work().map_or(&[], |w| &w.share_to)
    }

    fn description(&self) -> String {
        self.policy
            .description
            .clone()
            .unwrap_or_else(|| format!("vbs-agent policy {}", self.policy.name))
    }

    async fn request_snapshot(&mut self) -> Result<(), StoreError> {
        let (name, volume, description) = (
            self.job.resource_name.clone(),
            self.job.target.clone(),
            self.description(),
        );
        let client = &self.client;
        let created = create_or_adopt(
            "snapshot",
            &self.policy.poll,
            self.deadline,
            self.maybe_exists,
            || async {
                Ok(client
                    .find_snapshots(&name, &volume)
                    .await?
                    .into_iter()
                    .next()
                    .map(|s| s.id))
            },
            || async {
                let s = NewSnapshot {
                    volume_id: &volume,
                    name: &name,
                    description: &description,
                    force: self.force(),
                };
                Ok(client.create_snapshot(&s).await?.id)
            },
        )
        .await;
        self.record_created(created, "snapshot", Phase::SnapshotCreating)
    }

    async fn await_snapshot(&mut self) -> Result<(), StoreError> {
        let Some(id) = self.job.snapshot_id.clone() else {
            return self.finish(
                JobStatus::Failed,
                "internal: snapshot phase without a snapshot id",
            );
        };
        let client = &self.client;
        let outcome = poll_until(&self.policy.poll, self.deadline, || async {
            let snapshot = client.snapshot(&id).await;
            if let Ok(s) = &snapshot {
                self.polled("snapshot", &id, &s.status);
            }
            match snapshot {
                Ok(s) if s.status == "available" => Look::Done(s.size),
                Ok(s) if s.status.starts_with("error") => {
                    Look::Fail(format!("snapshot {id} went to status `{}`", s.status))
                }
                Ok(_) => Look::Pending,
                Err(e) => look_error("snapshot", &id, e),
            }
        })
        .await;
        match outcome {
            // A snapshot policy is done when its snapshot is.
            Ok(size) if self.policy.kind() == PolicyKind::Snapshot => self.apply(
                JobUpdate {
                    phase: Some(Phase::Done),
                    status: Some(JobStatus::Succeeded),
                    size_gb: size.and_then(|s| i64::try_from(s).ok()),
                    finished_at: Some(Utc::now()),
                    ..Default::default()
                },
                &format!("snapshot {id} available"),
            ),
            Ok(_) => self.apply(
                JobUpdate {
                    phase: Some(Phase::BackupRequested),
                    ..Default::default()
                },
                &format!("snapshot {id} available"),
            ),
            Err(PollEnd::Failed(reason)) => {
                self.fail_then_cleanup(JobStatus::Failed, &reason, true)
            }
            Err(PollEnd::Deadline) => self.fail_then_cleanup(
                JobStatus::TimedOut,
                &format!("snapshot {id} not available within the completion timeout"),
                false,
            ),
        }
    }

    async fn request_backup(&mut self) -> Result<(), StoreError> {
        let Some(snapshot_id) = self.job.snapshot_id.clone() else {
            return self.finish(
                JobStatus::Failed,
                "internal: backup phase without a snapshot id",
            );
        };
        let (name, volume, description) = (
            self.job.resource_name.clone(),
            self.job.target.clone(),
            self.description(),
        );
        let client = &self.client;
        let full_due = self.full_backup_due()?;
        let created = create_or_adopt(
            "backup",
            &self.policy.poll,
            self.deadline,
            self.maybe_exists,
            || async {
                Ok(client
                    .find_backups(&name, &volume)
                    .await?
                    .into_iter()
                    .next()
                    .map(|b| b.id))
            },
            || async {
                // Cinder only makes an incremental backup when asked, and
                // refuses to without a parent; VBS decides by itself.
                let incremental = !full_due && client.has_available_backup(&volume).await?;
                let b = NewBackup {
                    volume_id: &volume,
                    snapshot_id: &snapshot_id,
                    name: &name,
                    description: &description,
                    force: self.force(),
                    incremental,
                };
                Ok(client.create_backup(&b).await?.id)
            },
        )
        .await;
        self.record_created(created, "backup", Phase::BackupCreating)
    }

    /// Records how a create-or-adopt ended: the resource's id and the next
    /// phase, or the failure.
    fn record_created(
        &mut self,
        created: Created,
        what: &str,
        next: Phase,
    ) -> Result<(), StoreError> {
        self.maybe_exists = false;
        match created {
            Created::Id { id, adopted } => {
                let how = if adopted {
                    "adopted by name"
                } else {
                    "created"
                };
                let mut update = JobUpdate {
                    phase: Some(next),
                    ..Default::default()
                };
                if next == Phase::SnapshotCreating {
                    update.snapshot_id = Some(&id);
                } else {
                    update.backup_id = Some(&id);
                }
                self.apply(update, &format!("{what} {id} {how}"))
            }
            Created::Refused {
                reason,
                retry_worthy,
            } => self.fail_then_cleanup(JobStatus::Failed, &reason, retry_worthy),
            Created::TimedOut(reason) => {
                self.fail_then_cleanup(JobStatus::TimedOut, &reason, false)
            }
        }
    }

    async fn await_backup(&mut self) -> Result<(), StoreError> {
        let Some(id) = self.job.backup_id.clone() else {
            return self.finish(
                JobStatus::Failed,
                "internal: backup phase without a backup id",
            );
        };
        let cadence = self.backup_cadence()?;
        let client = &self.client;
        let unknown = std::sync::Mutex::new(Vec::new());
        let outcome = poll_with(cadence, self.deadline, || async {
            let backup = client.backup(&id).await;
            if let Ok(b) = &backup {
                self.polled("backup", &id, &b.status);
            }
            match backup {
                Ok(b) => match b.status.as_str() {
                    // A backup being restored from was available.
                    "available" | "error" | "restoring" | "error_restoring" => Look::Done(b),
                    "deleting" | "error_deleting" | "deleted" => Look::Fail(format!(
                        "backup {id} is being deleted by someone else (status `{}`)",
                        b.status
                    )),
                    "creating" | "backing-up" => Look::Pending,
                    other => {
                        note_unknown(&unknown, other);
                        Look::Pending
                    }
                },
                Err(e) => look_error("backup", &id, e),
            }
        })
        .await;
        self.warn_unknown("backup", &id, unknown)?;
        match outcome {
            Ok(b) => {
                let size = b.size.and_then(|s| i64::try_from(s).ok());
                let succeeded = b.status != "error";
                let reason = match (succeeded, b.fail_reason.as_deref()) {
                    (true, _) => None,
                    (false, Some(r)) if !r.trim().is_empty() => Some(r.to_string()),
                    (false, _) => Some(format!(
                        "backup {id} went to status `error` without a fail_reason"
                    )),
                };
                let next = if succeeded && !self.share_to().is_empty() {
                    Phase::Sharing
                } else {
                    Phase::Cleanup
                };
                let update = JobUpdate {
                    phase: Some(next),
                    status: Some(if succeeded {
                        JobStatus::Succeeded
                    } else {
                        JobStatus::Failed
                    }),
                    size_gb: size,
                    is_incremental: b.is_incremental,
                    fail_reason: reason.as_deref(),
                    retry_at: if succeeded { None } else { self.retry_at() },
                    ..Default::default()
                };
                if succeeded {
                    let took = match (b.created_at, b.updated_at) {
                        (Some(c), Some(u)) if u > c => (u - c).to_std().ok(),
                        _ => None,
                    };
                    let took =
                        took.or_else(|| (Utc::now() - self.job.attempt_started_at).to_std().ok());
                    if let Some(took) = took {
                        self.store.record_backup_duration(self.job.id, took)?;
                    }
                }
                let note = match &reason {
                    None => format!("backup {id} available"),
                    Some(r) => format!("backup {id} failed: {r}"),
                };
                self.apply(update, &note)
            }
            Err(PollEnd::Failed(reason)) => {
                self.fail_then_cleanup(JobStatus::Failed, &reason, false)
            }
            Err(PollEnd::Deadline) => {
                // The snapshot is still being read by the backup and cannot be deleted.
                if let Some(snap) = self.job.snapshot_id.clone() {
                    self.warn(&format!(
                        "snapshot {snap} left in place: backup {id} is still running"
                    ))?;
                }
                self.finish(JobStatus::TimedOut, &format!("backup {id} did not reach a terminal status within the completion timeout ({})", humantime::format_duration(self.policy.completion_timeout)))
            }
        }
    }

    /// Whether `full_backup_every` asks for a full backup this time.
    fn full_backup_due(&self) -> Result<bool, StoreError> {
        Ok(match self.backup_work().and_then(|w| w.full_backup_every) {
            Some(n) => {
                self.store
                    .incrementals_since_full(&self.policy.name, &self.job.target)?
                    + 1
                    >= n
            }
            None => false,
        })
    }

    /// Polling waits for this job's backup: shaped by how long the volume's
    /// earlier backups of the same kind took, or the plain growing waits
    /// for its first backup.
    fn backup_cadence(&self) -> Result<Cadence, StoreError> {
        let earlier = self.store.backup_durations(
            &self.job.cloud,
            &self.job.target,
            Some(!self.full_backup_due()?),
        )?;
        Ok(match Expected::from_history(&earlier) {
            Some(expected) => {
                let since = (Utc::now() - self.job.attempt_started_at)
                    .to_std()
                    .unwrap_or_default();
                Cadence::expecting(&self.policy.poll, expected, since)
            }
            None => Cadence::new(&self.policy.poll),
        })
    }

    async fn cleanup(&mut self) -> Result<(), StoreError> {
        let snapshot = self
            .job
            .snapshot_id
            .clone()
            .filter(|_| !self.backup_work().is_some_and(|w| w.keep_snapshot));
        if let Some(id) = snapshot {
            if let Err(reason) = self.delete_snapshot(&id).await {
                self.warn(&format!("temporary snapshot {id} left behind: {reason}"))?;
            }
        }
        if let Some(start) = self.job.retry_at {
            return self.next_attempt(start);
        }
        self.apply(
            JobUpdate {
                phase: Some(Phase::Done),
                finished_at: Some(Utc::now()),
                ..Default::default()
            },
            "done",
        )
    }

    /// Shares the available backup with every `share_to` project that does
    /// not have it yet, confirmed by the share list. A share that keeps
    /// failing is recorded and warned about; the backup still counts as
    /// succeeded.
    async fn share(&mut self) -> Result<(), StoreError> {
        let Some(backup_id) = self.job.backup_id.clone() else {
            return self.apply(
                JobUpdate {
                    phase: Some(Phase::Cleanup),
                    ..Default::default()
                },
                "nothing to share",
            );
        };
        let mut cadence = Cadence::new(&self.policy.poll);
        let mut last_error = String::new();
        let client = self
            .client
            .until(Deadline::new(Instant::now() + CLEANUP_BUDGET));
        for attempt in 1..=SHARE_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(cadence.next_wait()).await;
            }
            match self.share_once(&client, &backup_id).await {
                Ok(shared) => {
                    for (project, share_id) in &shared {
                        self.store.record_share(
                            self.job.id,
                            &backup_id,
                            project,
                            Some(share_id),
                            None,
                            Utc::now(),
                        )?;
                    }
                    let note = format!(
                        "backup {backup_id} shared with {}",
                        self.share_to().join(", ")
                    );
                    return self.apply(
                        JobUpdate {
                            phase: Some(Phase::Cleanup),
                            ..Default::default()
                        },
                        &note,
                    );
                }
                Err(e) => {
                    last_error = e;
                    self.warn(&format!("sharing backup {backup_id} failed (try {attempt} of {SHARE_ATTEMPTS}): {last_error}"))?;
                }
            }
        }
        for project in self.share_to() {
            self.store.record_share(
                self.job.id,
                &backup_id,
                project,
                None,
                Some(&last_error),
                Utc::now(),
            )?;
        }
        self.apply(
            JobUpdate {
                phase: Some(Phase::Cleanup),
                ..Default::default()
            },
            &format!("backup {backup_id} not shared: {last_error}"),
        )
    }

    /// One round: list, share what is missing, list again to confirm.
    /// Returns (project, share id) for every `share_to` project.
    async fn share_once(
        &self,
        client: &CloudClient,
        backup_id: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let shared_with = |shares: &[crate::api::types::Share]| -> Vec<(String, String)> {
            shares
                .iter()
                .filter_map(|s| Some((s.to_project_id.clone()?, s.id.clone())))
                .collect()
        };
        let filter = [("backup_id", backup_id)];
        let before = client.shares(&filter).await.map_err(|e| e.to_string())?;
        let have = shared_with(&before);
        let missing: Vec<String> = self
            .share_to()
            .iter()
            .filter(|p| !have.iter().any(|(h, _)| h == *p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            client
                .share_backup(backup_id, &missing)
                .await
                .map_err(|e| e.to_string())?;
        }
        let after = shared_with(&client.shares(&filter).await.map_err(|e| e.to_string())?);
        self.share_to()
            .iter()
            .map(|p| {
                after
                    .iter()
                    .find(|(h, _)| h == p)
                    .map(|(h, id)| (h.clone(), id.clone()))
                    .ok_or_else(|| {
                        format!("the share list does not show project {p} after sharing")
                    })
            })
            .collect()
    }

    /// Starts the current attempt, at its scheduled time for a retry.
    async fn start_attempt(&mut self) -> Result<(), StoreError> {
        let wait = (self.job.attempt_started_at - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
        let note = format!("attempt {} as {}", self.job.attempt, self.job.resource_name);
        // A server backup has no snapshot step.
        let first = if self.is_server() {
            Phase::BackupRequested
        } else {
            Phase::SnapshotRequested
        };
        self.apply(
            JobUpdate {
                phase: Some(first),
                ..Default::default()
            },
            &note,
        )
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

    /// Deletes the snapshot and waits until it is gone.
    async fn delete_snapshot(&self, id: &str) -> Result<(), String> {
        let deadline = Instant::now() + CLEANUP_BUDGET;
        let client = &self.client.until(Deadline::new(deadline));
        // "Already deleting or gone" counts as done: a restarted agent may
        // have asked before, and Cinder refuses a second delete with a 400.
        let created = create_or_adopt(
            "snapshot deletion",
            &self.policy.poll,
            deadline,
            true,
            || async {
                match client.snapshot(id).await {
                    Err(e) if e.is_not_found() => Ok(Some(String::new())),
                    Ok(s) if s.status == "deleting" => Ok(Some(String::new())),
                    Ok(_) => Ok(None),
                    Err(e) => Err(e),
                }
            },
            || async {
                match client.delete_snapshot(id).await {
                    Ok(()) => Ok(String::new()),
                    Err(e) if e.is_not_found() => Ok(String::new()),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        match created {
            Created::Id { .. } => {}
            Created::Refused { reason, .. } | Created::TimedOut(reason) => return Err(reason),
        }
        poll_until(&self.policy.poll, deadline, || async {
            match client.snapshot(id).await {
                Err(e) if e.is_not_found() => Look::Done(()),
                Ok(s) if s.status == "error_deleting" => {
                    Look::Fail(format!("snapshot {id} went to `error_deleting`"))
                }
                Ok(_) => Look::Pending,
                Err(e) => match e.class {
                    ErrorClass::Retryable | ErrorClass::BadAnswer => Look::Pending,
                    _ => Look::Fail(e.to_string()),
                },
            }
        })
        .await
        .map_err(|end| match end {
            PollEnd::Deadline => format!(
                "snapshot {id} still present after {}",
                humantime::format_duration(CLEANUP_BUDGET)
            ),
            PollEnd::Failed(r) => r,
        })
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
        let retry_at = if retry_worthy { self.retry_at() } else { None };
        self.apply(
            JobUpdate {
                phase: Some(Phase::Cleanup),
                status: Some(status),
                fail_reason: Some(reason),
                retry_at,
                ..Default::default()
            },
            reason,
        )
    }

    /// Ends the job with `status` now, without cleanup.
    fn finish(&mut self, status: JobStatus, reason: &str) -> Result<(), StoreError> {
        self.apply(
            JobUpdate {
                phase: Some(Phase::Done),
                status: Some(status),
                fail_reason: Some(reason),
                finished_at: Some(Utc::now()),
                ..Default::default()
            },
            reason,
        )
    }

    /// Persists a transition, records it as an event and reloads the job.
    fn apply(&mut self, update: JobUpdate<'_>, note: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        // The note may quote the cloud (a `fail_reason`): bounded before it
        // is logged or told.
        let message = bounded::message_owned(format!(
            "{} ({}): {note}",
            update.phase.unwrap_or(self.job.phase).as_str(),
            update.status.unwrap_or(self.job.status).as_str()
        ));
        let note = &*bounded::message(note);
        self.store.update_job_noting(
            self.job.id,
            &update,
            EventKind::State,
            &self.event(&message),
            now,
        )?;
        update.apply_to(&mut self.job);
        tracing::info!(
            snapshot_id = self.job.snapshot_id,
            backup_id = self.job.backup_id,
            "{message}"
        );
        self.listeners
            .tell(&self.policy, &self.job, &JobEvent::Phase { note });
        Ok(())
    }

    /// Tells the listeners what one look at the job's resource found.
    fn polled(&self, resource: &str, id: &str, status: &str) {
        let event = JobEvent::Poll {
            resource,
            id,
            status,
        };
        self.listeners.tell(&self.policy, &self.job, &event);
    }

    /// Records, once per status string, that the cloud answered with a
    /// status the agent does not know (it keeps waiting until the deadline).
    fn warn_unknown(
        &mut self,
        what: &str,
        id: &str,
        seen: std::sync::Mutex<Vec<String>>,
    ) -> Result<(), StoreError> {
        let seen = seen.into_inner().unwrap_or_else(|p| p.into_inner());
        for status in seen {
            if !self.unknown_statuses.contains(&status) {
                self.warn(&format!(
                    "{what} {id} reported unknown status `{status}`; treated as still working"
                ))?;
                self.unknown_statuses.push(status);
            }
        }
        Ok(())
    }

    fn warn(&self, message: &str) -> Result<(), StoreError> {
        let message = &*bounded::message(message);
        tracing::warn!("{message}");
        self.listeners
            .tell(&self.policy, &self.job, &JobEvent::Warning { message });
        self.store
            .record_event(EventKind::Warning, &self.event(message), Utc::now())
    }

    fn event<'a>(&self, message: &'a str) -> Event<'a> {
        Event {
            run_id: Some(self.job.run_id),
            job_id: Some(self.job.id),
            message: Some(message),
            ..Default::default()
        }
    }
}

fn note_unknown(seen: &std::sync::Mutex<Vec<String>>, status: &str) {
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.iter().any(|s| s == status) {
        seen.push(status.to_string());
    }
}

/// A failed GET while polling: the job's own resource vanishing is a
/// failure; transient trouble means look again later.
fn look_error<T>(what: &str, id: &str, e: ApiError) -> Look<T, String> {
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
