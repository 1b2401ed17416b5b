//! Writing down what a job does: each move of the transition table with
//! its event, warnings, and what the listeners are told.

use chrono::Utc;

use super::super::create::Created;
use super::super::machine::{self, Outcome};
use super::super::observer::JobEvent;
use super::JobRunner;
use crate::bounded;
use crate::store::{Event, EventKind, JobStatus, JobUpdate, Phase, StoreError};

/// Whether a move into `phase` is an intent, committed before the job's
/// next step: a create may follow, and the intent names what a restarted
/// agent (or the next leader) adopts. The other moves are followed only by
/// looking, deleting or nothing, and commit with whatever commits next:
/// lost in a crash, such a move is made again from the intent before it,
/// and a second delete finds nothing to delete.
fn is_intent(phase: Phase) -> bool {
    match phase {
        Phase::SnapshotCreating
        | Phase::BackupCreating
        | Phase::CheckpointCreating
        | Phase::VolumeCreating
        | Phase::Restoring
        | Phase::Cleanup
        | Phase::Done => false,
        Phase::Pending
        | Phase::SnapshotRequested
        | Phase::BackupRequested
        | Phase::Sharing
        | Phase::ProtectRequested
        | Phase::VolumeRequested
        | Phase::RestoreRequested
        | Phase::Verifying => true,
    }
}

impl JobRunner {
    /// Moves the job along the transition table: the phase that `outcome`
    /// leads to from the current one, with `update`'s other columns. A move
    /// the table does not allow is a defect of the agent: the job ends
    /// `failed` and says so, rather than running on in an unknown phase.
    pub(super) fn advance(
        &mut self,
        outcome: Outcome,
        mut update: JobUpdate<'_>,
        note: &str,
    ) -> Result<(), StoreError> {
        let Some(next) = machine::next(self.job.kind, self.job.phase, outcome) else {
            let reason = format!(
                "internal: a {} job cannot move from {} on `{}`",
                self.job.kind,
                self.job.phase.as_str(),
                outcome.as_str()
            );
            let update = JobUpdate {
                phase: Some(Phase::Done),
                status: Some(JobStatus::Failed),
                fail_reason: Some(&reason),
                finished_at: Some(Utc::now()),
                ..Default::default()
            };
            return self.apply(update, &reason);
        };
        update.phase = Some(next);
        if next == Phase::Done {
            update.finished_at = Some(Utc::now());
        }
        self.apply(update, note)
    }

    /// Records how a create-or-adopt ended. Returns the resource's id and
    /// how it was found; a refusal or timeout has then already moved the
    /// job to cleanup.
    pub(super) fn created(
        &mut self,
        created: Created,
    ) -> Result<Option<(String, &'static str)>, StoreError> {
        self.maybe_exists = false;
        match created {
            Created::Id { id, adopted } => {
                let how = if adopted {
                    "adopted by name"
                } else {
                    "created"
                };
                Ok(Some((id, how)))
            }
            Created::Refused {
                reason,
                retry_worthy,
                ..
            } => self
                .fail_then_cleanup(JobStatus::Failed, &reason, retry_worthy)
                .map(|()| None),
            Created::TimedOut(reason) => self
                .fail_then_cleanup(JobStatus::TimedOut, &reason, false)
                .map(|()| None),
        }
    }

    /// After a create the cloud refused as a bad or unknown request (400,
    /// 404): whether the target no longer exists (it answers 404). The job
    /// then ends `target_gone`, recorded once, instead of failing at every
    /// slot from now on. Returns whether it ended so.
    pub(super) async fn ended_gone(&mut self, created: &Created) -> Result<bool, StoreError> {
        if !matches!(
            created,
            Created::Refused {
                status: Some(400 | 404),
                ..
            }
        ) {
            return Ok(false);
        }
        let (kind, target) = (self.job.kind, self.job.target.clone());
        match super::super::scope::exists(&self.client, kind, &target).await {
            Ok(false) => {
                let reason = format!(
                    "{} {target} no longer exists (HTTP 404); no job is made for it again",
                    kind.target_noun()
                );
                self.maybe_exists = false;
                self.give_up(JobStatus::TargetGone, &reason)?;
                Ok(true)
            }
            // It exists, or cannot be told: the refusal stands.
            Ok(true) | Err(_) => Ok(false),
        }
    }

    /// Persists a change, records it as an event and tells the listeners.
    pub(super) fn apply(&mut self, update: JobUpdate<'_>, note: &str) -> Result<(), StoreError> {
        let now = Utc::now();
        // The note may quote the cloud (a `fail_reason`): bounded before it
        // is logged or told.
        let message = bounded::message_owned(format!(
            "{} ({}): {note}",
            update.phase.unwrap_or(self.job.phase).as_str(),
            update.status.unwrap_or(self.job.status).as_str()
        ));
        let note = &*bounded::message(note);
        let ticket =
            self.store
                .update_job_noting(self.job.id, &update, &self.event(&message), now)?;
        if is_intent(update.phase.unwrap_or(self.job.phase)) {
            self.intent = Some(ticket);
        }
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
    pub(super) fn polled(&self, resource: &str, id: &str, status: &str) {
        let event = JobEvent::Poll {
            resource,
            id,
            status,
        };
        self.listeners.tell(&self.policy, &self.job, &event);
    }

    /// Records, once per status string, that the cloud answered with a
    /// status the agent does not know (it keeps waiting until the deadline).
    pub(super) fn warn_unknown(
        &mut self,
        what: &str,
        id: &str,
        seen: Vec<String>,
    ) -> Result<(), StoreError> {
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

    pub(super) fn warn(&self, message: &str) -> Result<(), StoreError> {
        let message = &*bounded::message(message);
        tracing::warn!("{message}");
        self.listeners
            .tell(&self.policy, &self.job, &JobEvent::Warning { message });
        self.store
            .record_event(EventKind::Warning, &self.event(message), Utc::now())
    }

    /// Records something the job did besides its own steps.
    pub(super) fn note(&self, message: &str) -> Result<(), StoreError> {
        let message = &*bounded::message(message);
        tracing::info!("{message}");
        self.store
            .record_event(EventKind::State, &self.event(message), Utc::now())
    }

    /// When the job entered its current phase (its last recorded move),
    /// else when its attempt started.
    pub(super) fn phase_entered_at(&self) -> Result<chrono::DateTime<Utc>, StoreError> {
        Ok(self
            .store
            .job_events(self.job.id)?
            .iter()
            .rev()
            .find(|e| e.kind == "state")
            .and_then(|e| crate::store::parse_ts(&e.at).ok())
            .unwrap_or(self.job.attempt_started_at))
    }

    pub(super) fn event<'a>(&self, message: &'a str) -> Event<'a> {
        Event {
            run_id: Some(self.job.run_id),
            job_id: Some(self.job.id),
            message: Some(message),
            ..Default::default()
        }
    }
}
