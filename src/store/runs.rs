//! `runs`: one row per policy firing.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{format_ts, Store, StoreError};

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The policy's schedule.
    Schedule,
    /// `vbs-agent trigger`.
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// Overall outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Every job succeeded.
    Succeeded,
    /// At least one job did not succeed.
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }
}

impl Store {
    /// Records a firing of `policy` for `slot`. Returns the run id and
    /// whether it is new; an existing (policy, slot) is never recorded twice.
    pub fn begin_run(
        &self,
        policy: &str,
        slot: DateTime<Utc>,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), StoreError> {
        let conn = self.conn();
        let slot = format_ts(slot);
        let inserted = conn.execute(
            "INSERT INTO runs (policy, slot, trigger, status, started_at)
             VALUES (?1, ?2, ?3, 'running', ?4)
             ON CONFLICT (policy, slot) DO NOTHING",
            params![policy, slot, trigger.as_str(), format_ts(now)],
        )?;
        let id: i64 = conn.query_row(
            "SELECT id FROM runs WHERE policy = ?1 AND slot = ?2",
            params![policy, slot],
            |r| r.get(0),
        )?;
        Ok((id, inserted == 1))
    }

    /// Closes a run with its overall status.
    pub fn finish_run(
        &self,
        run_id: i64,
        status: RunStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE runs SET status = ?1, finished_at = ?2 WHERE id = ?3",
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
