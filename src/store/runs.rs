//! `runs`: one row per policy firing.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

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
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let slot_text = format_ts(slot);
        let now_text = format_ts(now);
        let inserted = tx.execute(
            "INSERT INTO runs (policy, slot, trigger, status, started_at)
             VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT (policy, slot) DO NOTHING",
            params![policy, slot_text, trigger.as_str(), now_text],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let run_id = tx.last_insert_rowid();
        for job in jobs {
            let running = job.status == JobStatus::Running;
            tx.execute(
                "INSERT INTO jobs (run_id, policy, kind, cloud, target, slot, resource_name, status,
                                   phase, blocked_by, started_at, attempt_started_at, finished_at,
                                   updated_at, fail_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?11, ?13)",
                params![
                    run_id,
                    policy,
                    job.kind,
                    job.cloud,
                    job.target,
                    slot_text,
                    job.resource_name,
                    job.status.as_str(),
                    if running { "pending" } else { "done" },
                    job.blocked_by,
                    now_text,
                    (!running).then_some(&now_text),
                    job.note,
                ],
            )?;
            if let Some(restore) = &job.restore {
                super::restores::insert(&tx, tx.last_insert_rowid(), restore)?;
            }
        }
        if let Some(scope) = scope {
            super::scope::insert(&tx, run_id, scope)?;
        }
        tx.commit()?;
        drop(conn);
        self.settle_run(run_id, now)?;
        Ok(Some(run_id))
    }

    /// The run recorded for (policy, slot), if any.
    pub fn run_for(&self, policy: &str, slot: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM runs WHERE policy = ?1 AND slot = ?2",
                params![policy, format_ts(slot)],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Closes a run once none of its jobs is running: `succeeded` when all
    /// succeeded, `missed` or `skipped` when all were, `failed` otherwise.
    pub fn settle_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT status FROM jobs WHERE run_id = ?1")?;
        // A target that left or is gone is noted, not judged.
        let statuses: Vec<String> = stmt
            .query_map([run_id], |r| r.get::<_, String>(0))?
            .filter(|s| !matches!(s.as_deref(), Ok("left_scope" | "target_gone")))
            .collect::<Result<Vec<_>, _>>()?;
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
        conn.execute(
            "UPDATE runs SET status = ?1, finished_at = ?2 WHERE id = ?3 AND status = 'running'",
            params![status.as_str(), format_ts(now), run_id],
        )?;
        Ok(())
    }

    /// Status of a run, if it exists.
    pub fn run_status(&self, run_id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT status FROM runs WHERE id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()?)
    }
}
