//! `runs`: one row per policy firing.

use chrono::{DateTime, Utc};

use super::db::args;
use super::{format_ts, JobStatus, Store, StoreError};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The policy's schedule.
    Schedule,
    /// `vbs-agent trigger`.
    Manual,
    /// A slot missed while the agent was down, run at start (`misfire: run_once`).
    CatchUp,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::CatchUp => "catch_up",
        }
    }
}

/// Overall outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Every job succeeded (a drill's: was verified).
    Succeeded,
    /// At least one job did not succeed.
    Failed,
    /// Every job was skipped because the previous one was still running.
    Skipped,
    /// The slot was missed while the agent was down.
    Missed,
    /// The run had no target to back up: its selector matched nothing
    /// (recorded with a warning), or its targets left or are gone.
    Empty,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Missed => "missed",
            RunStatus::Empty => "empty",
        }
    }
}

/// A job recorded together with its run.
#[derive(Debug, Clone)]
pub struct NewRunJob<'a> {
    pub target: &'a str,
    pub kind: &'a str,
    pub cloud: &'a str,
    pub resource_name: &'a str,
    /// `Running` for a job to drive; `SkippedOverlap` or `Missed` for a
    /// record of a job that will not run.
    pub status: JobStatus,
    pub blocked_by: Option<i64>,
    /// Why a job recorded as not running does not run (its `fail_reason`).
    pub note: Option<&'a str>,
    /// For a job of kind `restore`: what it restores into.
    pub restore: Option<super::NewRestore<'a>>,
    /// The service that makes the job's resource (see
    /// [`super::JobRecord::service`]); `None` for the kind's usual one.
    pub service: Option<&'a str>,
}

impl Store {
    /// Records a firing of `policy` for `slot` with all its jobs, in one
    /// transaction, so a crash never leaves a run with some of its jobs
    /// missing. Returns `None` when (policy, slot) was already recorded:
    /// a slot is never run twice.
    pub fn create_run(
        &self,
        policy: &str,
        slot: DateTime<Utc>,
        trigger: Trigger,
        jobs: &[NewRunJob<'_>],
        scope: Option<&super::RunScope>,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let slot_text = format_ts(slot);
        let now_text = format_ts(now);
        let created = self.db.tx(|tx| {
            let Some(run_id) = tx.value::<i64>(
                "INSERT INTO runs (policy, slot, trigger, status, started_at)
                 VALUES (?1, ?2, ?3, 'running', ?4)
                 ON CONFLICT (policy, slot) DO NOTHING
                 RETURNING id",
                args![policy, &slot_text, trigger.as_str(), &now_text],
            )?
            else {
                return Ok(None);
            };
            for job in jobs {
                let running = job.status == JobStatus::Running;
                let job_id = tx.value::<i64>(
                    "INSERT INTO jobs (run_id, policy, kind, cloud, target, slot, resource_name,
                                       status, phase, blocked_by, started_at, attempt_started_at,
                                       finished_at, updated_at, fail_reason, service)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?11, ?13, ?14)
                     RETURNING id",
                    args![
                        run_id,
                        policy,
                        job.kind,
                        job.cloud,
                        job.target,
                        &slot_text,
                        job.resource_name,
                        job.status.as_str(),
                        if running { "pending" } else { "done" },
                        job.blocked_by,
                        &now_text,
                        (!running).then_some(&now_text),
                        job.note,
                        job.service,
                    ],
                )?;
                if let Some(restore) = &job.restore {
                    let job_id = job_id.ok_or_else(|| {
                        StoreError::Corrupt("a job inserted without an id".into())
                    })?;
                    super::restores::insert(tx, job_id, restore)?;
                }
            }
            if let Some(scope) = scope {
                super::scope::insert(tx, run_id, scope)?;
            }
            Ok(Some(run_id))
        })?;
        if let Some(run_id) = created {
            self.settle_run(run_id, now)?;
        }
        Ok(created)
    }

    /// The run recorded for (policy, slot), if any.
    pub fn run_for(&self, policy: &str, slot: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
        self.db.value(
            "SELECT id FROM runs WHERE policy = ?1 AND slot = ?2",
            args![policy, format_ts(slot)],
        )
    }

    /// Closes a run once none of its jobs is running: `succeeded` when all
    /// succeeded, `missed` or `skipped` when all were, `failed` otherwise.
    pub fn settle_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        // A target that left or is gone is noted, not judged.
        let statuses: Vec<String> = self
            .db
            .rows(
                "SELECT status FROM jobs WHERE run_id = ?1",
                args![run_id],
                |r| r.get::<String>(0),
            )?
            .into_iter()
            .filter(|s| !matches!(s.as_str(), "left_scope" | "target_gone"))
            .collect();
        let all = |s: &str| !statuses.is_empty() && statuses.iter().all(|x| x == s);
        let status = if statuses.iter().any(|s| s == "running") {
            return Ok(());
        } else if statuses.is_empty() {
            RunStatus::Empty
        } else if !statuses.is_empty()
            && statuses.iter().all(|x| x == "succeeded" || x == "verified")
        {
            RunStatus::Succeeded
        } else if all("missed") {
            RunStatus::Missed
        } else if all("skipped_overlap") {
            RunStatus::Skipped
        } else {
            RunStatus::Failed
        };
        self.db.execute(
            "UPDATE runs SET status = ?1, finished_at = ?2 WHERE id = ?3 AND status = 'running'",
            args![status.as_str(), format_ts(now), run_id],
        )?;
        Ok(())
    }

    /// Status of a run, if it exists.
    pub fn run_status(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        self.db
            .value("SELECT status FROM runs WHERE id = ?1", args![run_id])
    }
}
