//! `jobs`: one row per (run, target), updated as the job moves through its
//! phases. The row is written before each mutating API call (the intent) and
//! after it (the outcome), so a restarted agent knows where every job stands.

use chrono::{DateTime, Utc};
use rusqlite::{params, Row};

use super::{format_ts, parse_ts, Store, StoreError};

/// Where a job stands. Persisted as text; see `engine` for the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Nothing created yet.
    Pending,
    /// About to create (or creating) the snapshot; its id may be unknown.
    SnapshotRequested,
    /// Snapshot exists; waiting for `available`.
    SnapshotCreating,
    /// About to create (or creating) the backup; its id may be unknown.
    BackupRequested,
    /// Backup exists; waiting for a terminal status.
    BackupCreating,
    /// Deleting the temporary snapshot.
    Cleanup,
    /// Terminal: see the job's status.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::SnapshotRequested => "snapshot_requested",
            Phase::SnapshotCreating => "snapshot_creating",
            Phase::BackupRequested => "backup_requested",
            Phase::BackupCreating => "backup_creating",
            Phase::Cleanup => "cleanup",
            Phase::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => Phase::Pending,
            "snapshot_requested" => Phase::SnapshotRequested,
            "snapshot_creating" => Phase::SnapshotCreating,
            "backup_requested" => Phase::BackupRequested,
            "backup_creating" => Phase::BackupCreating,
            "cleanup" => Phase::Cleanup,
            "done" => Phase::Done,
            other => return Err(StoreError::Corrupt(format!("job phase `{other}`"))),
        })
    }
}

/// Outcome of a job as an auditor reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    /// The backup reached `available`.
    Succeeded,
    /// The backup (or a step before it) failed; `fail_reason` says why.
    Failed,
    /// No terminal status within the policy's completion timeout.
    TimedOut,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "timed_out" => JobStatus::TimedOut,
            other => return Err(StoreError::Corrupt(format!("job status `{other}`"))),
        })
    }
}

/// A job to record at the start of a run.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub run_id: i64,
    pub policy: &'a str,
    pub kind: &'a str,
    pub cloud: &'a str,
    pub target: &'a str,
    pub slot: DateTime<Utc>,
    pub resource_name: &'a str,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    pub run_id: i64,
    pub policy: String,
    pub kind: String,
    pub cloud: String,
    pub target: String,
    pub slot: DateTime<Utc>,
    pub resource_name: String,
    pub status: JobStatus,
    pub phase: Phase,
    pub snapshot_id: Option<String>,
    pub backup_id: Option<String>,
    pub size_gb: Option<i64>,
    pub is_incremental: Option<bool>,
    pub fail_reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Columns to change; `None` leaves a column as it is.
#[derive(Debug, Clone, Default)]
pub struct JobUpdate<'a> {
    pub phase: Option<Phase>,
    pub status: Option<JobStatus>,
    pub snapshot_id: Option<&'a str>,
    pub backup_id: Option<&'a str>,
    pub size_gb: Option<i64>,
    pub is_incremental: Option<bool>,
    pub fail_reason: Option<&'a str>,
    pub finished_at: Option<DateTime<Utc>>,
}

const JOB_COLUMNS: &str = "id, run_id, policy, kind, cloud, target, slot, resource_name, status,
    phase, snapshot_id, backup_id, size_gb, is_incremental, fail_reason, started_at, finished_at";

impl Store {
    /// Records a new job in phase `pending`. Returns its id, or the id of
    /// the job already recorded for the same (policy, target, slot).
    pub fn insert_job(&self, job: &NewJob<'_>, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let conn = self.conn();
        let slot = format_ts(job.slot);
        conn.execute(
            "INSERT INTO jobs (run_id, policy, kind, cloud, target, slot, resource_name,
                               status, phase, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', 'pending', ?8, ?8)
             ON CONFLICT (policy, target, slot) DO NOTHING",
            params![
                job.run_id,
                job.policy,
                job.kind,
                job.cloud,
                job.target,
                slot,
                job.resource_name,
                format_ts(now)
            ],
        )?;
        Ok(conn.query_row(
            "SELECT id FROM jobs WHERE policy = ?1 AND target = ?2 AND slot = ?3",
            params![job.policy, job.target, slot],
            |r| r.get(0),
        )?)
    }

    /// Applies `update` to a job.
    pub fn update_job(
        &self,
        job_id: i64,
        update: &JobUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE jobs SET
                phase = COALESCE(?2, phase),
                status = COALESCE(?3, status),
                snapshot_id = COALESCE(?4, snapshot_id),
                backup_id = COALESCE(?5, backup_id),
                size_gb = COALESCE(?6, size_gb),
                is_incremental = COALESCE(?7, is_incremental),
                fail_reason = COALESCE(?8, fail_reason),
                finished_at = COALESCE(?9, finished_at),
                updated_at = ?10
             WHERE id = ?1",
            params![
                job_id,
                update.phase.map(Phase::as_str),
                update.status.map(JobStatus::as_str),
                update.snapshot_id,
                update.backup_id,
                update.size_gb,
                update.is_incremental,
                update.fail_reason,
                update.finished_at.map(format_ts),
                format_ts(now)
            ],
        )?;
        Ok(())
    }

    /// One job by id.
    pub fn job(&self, job_id: i64) -> Result<JobRecord, StoreError> {
        let conn = self.conn();
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1");
        conn.query_row(&sql, [job_id], read_job)?
    }

    /// The jobs of a run, in insertion order.
    pub fn jobs_of_run(&self, run_id: i64) -> Result<Vec<JobRecord>, StoreError> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ?1 ORDER BY id"),
            [run_id],
        )
    }

    /// The most recent jobs, newest first.
    pub fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY started_at DESC, id DESC LIMIT ?1"),
            [limit],
        )
    }

    fn query_jobs<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(params, read_job)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

/// Reads one row; the outer result is SQLite's, the inner one ours.
fn read_job(r: &Row<'_>) -> rusqlite::Result<Result<JobRecord, StoreError>> {
    let slot: String = r.get(6)?;
    let status: String = r.get(8)?;
    let phase: String = r.get(9)?;
    let started: String = r.get(15)?;
    let finished: Option<String> = r.get(16)?;
    let (id, run_id) = (r.get(0)?, r.get(1)?);
    let (policy, kind, cloud, target, resource_name) =
        (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(7)?);
    let (snapshot_id, backup_id, size_gb, is_incremental, fail_reason) =
        (r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?);
    Ok((|| {
        Ok(JobRecord {
            id,
            run_id,
            policy,
            kind,
            cloud,
            target,
            slot: parse_ts(&slot)?,
            resource_name,
            status: JobStatus::parse(&status)?,
            phase: Phase::parse(&phase)?,
            snapshot_id,
            backup_id,
            size_gb,
            is_incremental,
            fail_reason,
            started_at: parse_ts(&started)?,
            finished_at: finished.as_deref().map(parse_ts).transpose()?,
        })
    })())
}
