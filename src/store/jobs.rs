//! `jobs`: one row per (run, target), updated as the job moves through its
//! phases. The row is written before each mutating API call (the intent) and
//! after it (the outcome), so a restarted agent knows where every job stands.

use chrono::{DateTime, SubsecRound, Utc};

use super::db::{arg_vec, args, Row, Ticket, Value};
use super::events::{event_args, INSERT_EVENT};
use super::{format_ts, parse_ts, Event, EventKind, Store, StoreError};
use crate::bounded;
use crate::kind::PolicyKind;

/// Where a job stands. Persisted as text; the legal moves between phases
/// are the engine's transition table (`engine::machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Backup available; sharing it with the policy's `share_to` projects.
    Sharing,
    /// Server: about to protect (or protecting) the server; the
    /// checkpoint's id may be unknown.
    ProtectRequested,
    /// Server: the checkpoint exists; finding its item and waiting for a
    /// terminal status.
    CheckpointCreating,
    /// Restore: about to create (or creating) the volume to restore into;
    /// its id may be unknown.
    VolumeRequested,
    /// Restore: the volume exists; waiting for `available`.
    VolumeCreating,
    /// Restore: about to ask for (or asking for) the restore.
    RestoreRequested,
    /// Restore: the cloud accepted it; waiting for the volume to be
    /// `available` again (or `error_restoring`).
    Restoring,
    /// Restore: the volume holds the backup; `verify` checks it.
    Verifying,
    /// Removing what the attempt leaves behind (a temporary snapshot, a
    /// scratch volume).
    Cleanup,
    /// Terminal: see the job's status.
    Done,
}

impl Phase {
    /// Every phase, for exhaustive checks.
    pub const ALL: [Phase; 15] = [
        Phase::Pending,
        Phase::SnapshotRequested,
        Phase::SnapshotCreating,
        Phase::BackupRequested,
        Phase::BackupCreating,
        Phase::Sharing,
        Phase::ProtectRequested,
        Phase::CheckpointCreating,
        Phase::VolumeRequested,
        Phase::VolumeCreating,
        Phase::RestoreRequested,
        Phase::Restoring,
        Phase::Verifying,
        Phase::Cleanup,
        Phase::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::SnapshotRequested => "snapshot_requested",
            Phase::SnapshotCreating => "snapshot_creating",
            Phase::BackupRequested => "backup_requested",
            Phase::BackupCreating => "backup_creating",
            Phase::Sharing => "sharing",
            Phase::ProtectRequested => "protect_requested",
            Phase::CheckpointCreating => "checkpoint_creating",
            Phase::VolumeRequested => "volume_requested",
            Phase::VolumeCreating => "volume_creating",
            Phase::RestoreRequested => "restore_requested",
            Phase::Restoring => "restoring",
            Phase::Verifying => "verifying",
            Phase::Cleanup => "cleanup",
            Phase::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("job phase `{s}`")))
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
    /// Not started: the target's previous job was still running (`blocked_by`).
    SkippedOverlap,
    /// The slot fell while the agent was down and was not caught up.
    Missed,
    /// A restore drill: the backup was restored and the restored volume
    /// passed `verify` (when one is configured).
    Verified,
    /// Not started: the target left the policy's selection (its label was
    /// removed). Recorded once, at the first run without it.
    LeftScope,
    /// Not started, or ended: the target no longer exists (the cloud
    /// answers 404). Recorded once; the policy makes no job for it again.
    TargetGone,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
            JobStatus::SkippedOverlap => "skipped_overlap",
            JobStatus::Missed => "missed",
            JobStatus::Verified => "verified",
            JobStatus::LeftScope => "left_scope",
            JobStatus::TargetGone => "target_gone",
        }
    }

    /// Whether the job did what it was for: succeeded, or for a drill,
    /// restored and verified.
    pub fn is_good(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Verified)
    }

    /// Whether a job in this status may still change.
    pub fn is_final(self) -> bool {
        self != JobStatus::Running
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            "timed_out" => JobStatus::TimedOut,
            "skipped_overlap" => JobStatus::SkippedOverlap,
            "missed" => JobStatus::Missed,
            "verified" => JobStatus::Verified,
            "left_scope" => JobStatus::LeftScope,
            "target_gone" => JobStatus::TargetGone,
            other => return Err(StoreError::Corrupt(format!("job status `{other}`"))),
        })
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: i64,
    pub run_id: i64,
    pub policy: String,
    pub kind: PolicyKind,
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
    /// 1 for the first attempt; earlier attempts are in `job_attempts`.
    pub attempt: u32,
    /// When the current attempt started.
    pub attempt_started_at: DateTime<Utc>,
    /// The running job that made this one `skipped_overlap`.
    pub blocked_by: Option<i64>,
    /// Set while a failed attempt is cleaned up: when the next one starts.
    pub retry_at: Option<DateTime<Utc>>,
    /// The service recorded as making the job's resource; `None` in a job
    /// recorded before CBR (see [`JobRecord::service`]).
    pub service: Option<String>,
}

impl JobRecord {
    /// Which service makes (made) the job's backup or snapshot: `vbs` or
    /// `cbr` for a backup, `evs` for a snapshot, `csbs` for a server
    /// backup, and for a restore the service its backup came from.
    pub fn service(&self) -> &str {
        match (&self.service, self.kind) {
            (Some(s), _) => s,
            (None, PolicyKind::Snapshot) => "evs",
            (None, PolicyKind::Server) => "csbs",
            (None, PolicyKind::Backup | PolicyKind::Restore) => "vbs",
        }
    }

    /// Whether the job's backup is (was) made by CBR.
    pub fn on_cbr(&self) -> bool {
        self.service() == "cbr"
    }
}

/// An earlier attempt of a retried job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub backup_id: Option<String>,
    /// `failed` or `timed_out`.
    pub status: JobStatus,
    pub fail_reason: Option<String>,
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
    pub retry_at: Option<DateTime<Utc>>,
    /// How long the job's backup took on the cloud: what polling learns
    /// from (see [`Store::backup_durations`]).
    pub backup_took: Option<std::time::Duration>,
}

impl JobUpdate<'_> {
    /// What [`Store::update_job`] makes of `job`, without reading it back:
    /// the set columns replace the old values, times at the store's
    /// millisecond precision.
    pub fn apply_to(&self, job: &mut JobRecord) {
        let ms = |t: DateTime<Utc>| t.trunc_subsecs(3);
        job.phase = self.phase.unwrap_or(job.phase);
        job.status = self.status.unwrap_or(job.status);
        if let Some(id) = self.snapshot_id {
            job.snapshot_id = Some(id.to_string());
        }
        if let Some(id) = self.backup_id {
            job.backup_id = Some(id.to_string());
        }
        job.size_gb = self.size_gb.or(job.size_gb);
        job.is_incremental = self.is_incremental.or(job.is_incremental);
        if let Some(reason) = self.fail_reason {
            job.fail_reason = Some(bounded::message(reason).into_owned());
        }
        job.finished_at = self.finished_at.map(ms).or(job.finished_at);
        job.retry_at = self.retry_at.map(ms).or(job.retry_at);
    }
}

pub(super) const JOB_COLUMNS: &str =
    "id, run_id, policy, kind, cloud, target, slot, resource_name, status,
    phase, snapshot_id, backup_id, size_gb, is_incremental, fail_reason, started_at, finished_at,
    attempt, attempt_started_at, blocked_by, retry_at, service";

impl Store {
    /// Applies `update` to a job.
    pub fn update_job(
        &self,
        job_id: i64,
        update: &JobUpdate<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db
            .execute(UPDATE_JOB, &update_args(job_id, update, now))?;
        Ok(())
    }

    /// Applies `update` to a job and appends the event that tells of it, in
    /// one transaction: never a state without its event. While the daemon
    /// holds writes back (see [`Store::defer_events`]) the two wait for the
    /// next commit; [`Store::durable`] with the ticket waits for that.
    pub fn update_job_noting(
        &self,
        job_id: i64,
        update: &JobUpdate<'_>,
        event: &Event<'_>,
        now: DateTime<Utc>,
    ) -> Result<Ticket, StoreError> {
        self.db.defer(vec![
            (UPDATE_JOB, update_args(job_id, update, now)),
            (INSERT_EVENT, event_args(EventKind::State, event, now)),
        ])
    }

    /// One job by id.
    pub fn job(&self, job_id: i64) -> Result<JobRecord, StoreError> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            args![job_id],
        )?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt(format!("no job {job_id}")))
    }

    /// The jobs of a run, in insertion order.
    pub fn jobs_of_run(&self, run_id: i64) -> Result<Vec<JobRecord>, StoreError> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ?1 ORDER BY id"),
            args![run_id],
        )
    }

    /// Jobs not yet in phase `done`, oldest first: what a restarted agent
    /// continues.
    pub fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE phase <> 'done' ORDER BY id"),
            args![],
        )
    }

    /// How many incremental backups `policy` made of `target` since its
    /// last full one (its succeeded jobs, newest first). Read without the
    /// writes held back, at no commit: they are of jobs running now, and
    /// the job before this one of the target ended a slot ago.
    pub fn incrementals_since_full(&self, policy: &str, target: &str) -> Result<u32, StoreError> {
        let flags = self.db.with_committed(|c| {
            c.rows(
                "SELECT is_incremental FROM jobs
                 WHERE policy = ?1 AND target = ?2 AND status = 'succeeded' AND backup_id IS NOT NULL
                 ORDER BY slot DESC",
                args![policy, target],
                |r| r.get::<Option<bool>>(0),
            )
        })?;
        let mut count = 0;
        for flag in flags {
            if flag != Some(true) {
                break;
            }
            count += 1;
        }
        Ok(count)
    }

    /// Whether the history knows a VBS backup of `target` on `cloud` that
    /// succeeded and that retention has not deleted: the parent Cinder
    /// needs before it makes an incremental backup. Asked instead of the
    /// cloud (one request a job fewer), so a volume's first backup by the
    /// agent is full and its chains never start at a backup it did not
    /// make; a parent deleted behind the agent's back costs a refused
    /// request and a full backup (see `engine::job::backup`).
    pub fn has_backup_to_build_on(&self, cloud: &str, target: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .with_committed(|c| {
                c.value::<i64>(
                    "SELECT 1 FROM jobs j
                     WHERE j.cloud = ?1 AND j.target = ?2 AND j.kind = 'backup'
                       AND j.status = 'succeeded' AND j.backup_id IS NOT NULL
                       AND (j.service IS NULL OR j.service = 'vbs')
                       AND NOT EXISTS (SELECT 1 FROM retention_actions r
                                        WHERE r.backup_id = j.backup_id AND r.action = 'deleted')
                     LIMIT 1",
                    args![cloud, target],
                )
            })?
            .is_some())
    }

    /// The running job of `target` on `cloud`, if any (for the overlap
    /// guard): a restore job when `restores`, a job making a backup or
    /// snapshot otherwise. Restoring an earlier backup of a volume and
    /// backing the volume up do not get in each other's way.
    pub fn running_job_for(
        &self,
        cloud: &str,
        target: &str,
        restores: bool,
    ) -> Result<Option<i64>, StoreError> {
        self.db.value(
            "SELECT id FROM jobs WHERE cloud = ?1 AND target = ?2 AND status = 'running'
               AND (kind = 'restore') = ?3
             ORDER BY id LIMIT 1",
            args![cloud, target, restores],
        )
    }

    /// Archives the job's current attempt in `job_attempts` and resets the
    /// job for attempt `attempt + 1` under `resource_name`, starting at `start`.
    pub fn begin_next_attempt(
        &self,
        job_id: i64,
        resource_name: &str,
        start: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = format_ts(start);
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO job_attempts (job_id, attempt, resource_name, snapshot_id, backup_id,
                                       status, fail_reason, started_at, finished_at)
             SELECT id, attempt, resource_name, snapshot_id, backup_id, status, fail_reason,
                    COALESCE(attempt_started_at, started_at), ?2
             FROM jobs WHERE id = ?1",
                args![job_id, &now],
            )?;
            tx.execute(
                "UPDATE jobs SET attempt = attempt + 1, attempt_started_at = ?2, resource_name = ?3,
                     status = 'running', phase = 'pending', snapshot_id = NULL, backup_id = NULL,
                     size_gb = NULL, is_incremental = NULL, fail_reason = NULL, finished_at = NULL,
                     retry_at = NULL, updated_at = ?2
                 WHERE id = ?1",
                args![job_id, &now, resource_name],
            )?;
            Ok(())
        })
    }

    /// Earlier attempts of a job, oldest first.
    pub fn earlier_attempts(&self, job_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        self.db.rows(
            "SELECT attempt, backup_id, status, fail_reason FROM job_attempts
             WHERE job_id = ?1 ORDER BY attempt",
            args![job_id],
            |r| {
                Ok(AttemptRecord {
                    attempt: r.get(0)?,
                    backup_id: r.get(1)?,
                    status: JobStatus::parse(&r.get::<String>(2)?)?,
                    fail_reason: r.get(3)?,
                })
            },
        )
    }

    /// The most recent jobs, newest first.
    pub fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY started_at DESC, id DESC LIMIT ?1"),
            args![limit],
        )
    }

    pub(super) fn query_jobs(
        &self,
        sql: &str,
        args: &[Value],
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.db.rows(sql, args, read_job)
    }
}

/// Reads one row of [`JOB_COLUMNS`].
fn read_job(r: &Row) -> Result<JobRecord, StoreError> {
    let slot: String = r.get(6)?;
    let status: String = r.get(8)?;
    let phase: String = r.get(9)?;
    let started: String = r.get(15)?;
    let finished: Option<String> = r.get(16)?;
    let attempt: u32 = r.get(17)?;
    let attempt_started: Option<String> = r.get(18)?;
    let blocked_by: Option<i64> = r.get(19)?;
    let retry_at: Option<String> = r.get(20)?;
    let service: Option<String> = r.get(21)?;
    let (id, run_id) = (r.get(0)?, r.get(1)?);
    let kind: String = r.get(3)?;
    let (policy, cloud, target, resource_name) = (r.get(2)?, r.get(4)?, r.get(5)?, r.get(7)?);
    let (snapshot_id, backup_id, size_gb, is_incremental, fail_reason) =
        (r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?);
    Ok(JobRecord {
        id,
        run_id,
        policy,
        kind: kind
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("job kind: {e}")))?,
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
        attempt,
        attempt_started_at: parse_ts(attempt_started.as_deref().unwrap_or(&started))?,
        blocked_by,
        retry_at: retry_at.as_deref().map(parse_ts).transpose()?,
        service,
    })
}

/// The `UPDATE` behind [`Store::update_job`], with [`update_args`].
const UPDATE_JOB: &str = "UPDATE jobs SET
            phase = COALESCE(?2, phase),
            status = COALESCE(?3, status),
            snapshot_id = COALESCE(?4, snapshot_id),
            backup_id = COALESCE(?5, backup_id),
            size_gb = COALESCE(?6, size_gb),
            is_incremental = COALESCE(?7, is_incremental),
            fail_reason = COALESCE(?8, fail_reason),
            finished_at = COALESCE(?9, finished_at),
            retry_at = COALESCE(?11, retry_at),
            backup_seconds = COALESCE(?12, backup_seconds),
            updated_at = ?10
         WHERE id = ?1";

fn update_args(job_id: i64, update: &JobUpdate<'_>, now: DateTime<Utc>) -> Vec<Value> {
    arg_vec![
        job_id,
        update.phase.map(Phase::as_str),
        update.status.map(JobStatus::as_str),
        update.snapshot_id,
        update.backup_id,
        update.size_gb,
        update.is_incremental,
        update.fail_reason.map(bounded::message),
        update.finished_at.map(format_ts),
        format_ts(now),
        update.retry_at.map(format_ts),
        update.backup_took.map(|d| d.as_secs_f64())
    ]
}
