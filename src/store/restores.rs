//! What restore jobs record besides the common job columns (the `restores`
//! table): whom the restore was for, the volume it went into, when the
//! cloud accepted and finished it, the backup's age and size, the verdict
//! of `verify`, and whether a scratch volume is gone again.

use std::collections::HashMap;

use super::db::{args, Sql, Value};
use chrono::{DateTime, Utc};

use super::{format_ts, parse_ts, LastSuccess, Store, StoreError};

/// A restore job's own row, written with the job.
#[derive(Debug, Clone)]
pub struct NewRestore<'a> {
    /// `schedule`, or the user who ran `vbs-agent restore`.
    pub requested_by: &'a str,
    /// `scratch`, `new` or `existing`.
    pub into_volume: &'a str,
    /// The volume restored into, when it exists already.
    pub volume_id: Option<&'a str>,
    /// `cinder` or `vendor`.
    pub restore_api: &'a str,
    /// The backup, when it was chosen before the job (`vbs-agent restore`).
    pub backup_id: Option<&'a str>,
}

/// A restore job's `restores` row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreColumns {
    pub requested_by: String,
    pub into_volume: String,
    pub volume_id: Option<String>,
    pub restore_api: String,
    pub restore_job_id: Option<String>,
    pub backup_created_at: Option<DateTime<Utc>>,
    pub backup_size_gb: Option<i64>,
    pub restore_started_at: Option<DateTime<Utc>>,
    pub restore_finished_at: Option<DateTime<Utc>>,
    pub verify: Option<String>,
    pub verify_detail: Option<String>,
    pub volume_deleted_at: Option<DateTime<Utc>>,
}

/// A scratch volume a finished drill could not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScratchLeft {
    pub job_id: i64,
    pub policy: String,
    pub cloud: String,
    pub volume_id: String,
}

/// Writes `restore`'s row for job `job_id` (and its backup on the job).
pub(super) fn insert(
    tx: &mut dyn Sql,
    job_id: i64,
    restore: &NewRestore<'_>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO restores (job_id, requested_by, into_volume, volume_id, restore_api)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            job_id,
            restore.requested_by,
            restore.into_volume,
            restore.volume_id,
            restore.restore_api
        ],
    )?;
    if let Some(backup) = restore.backup_id {
        tx.execute(
            "UPDATE jobs SET backup_id = ?2 WHERE id = ?1",
            args![job_id, backup],
        )?;
    }
    Ok(())
}

impl Store {
    /// The `restores` row of job `job_id`.
    pub fn restore_columns(&self, job_id: i64) -> Result<RestoreColumns, StoreError> {
        let Some(r) = self.db.query_opt(
            "SELECT requested_by, into_volume, volume_id, restore_api, restore_job_id,
                    backup_created_at, backup_size_gb, restore_started_at,
                    restore_finished_at, verify, verify_detail, volume_deleted_at
               FROM restores WHERE job_id = ?1",
            args![job_id],
        )?
        else {
            return Err(StoreError::Corrupt(format!(
                "restore job {job_id} has no restores row"
            )));
        };
        let time = |i: usize| -> Result<Option<DateTime<Utc>>, StoreError> {
            r.get::<Option<String>>(i)?
                .as_deref()
                .map(parse_ts)
                .transpose()
        };
        Ok(RestoreColumns {
            requested_by: r.get(0)?,
            into_volume: r.get(1)?,
            volume_id: r.get(2)?,
            restore_api: r.get(3)?,
            restore_job_id: r.get(4)?,
            backup_created_at: time(5)?,
            backup_size_gb: r.get(6)?,
            restore_started_at: time(7)?,
            restore_finished_at: time(8)?,
            verify: r.get(9)?,
            verify_detail: r.get(10)?,
            volume_deleted_at: time(11)?,
        })
    }

    /// Records the backup a restore restores, with its age and size.
    pub fn set_restore_backup(
        &self,
        job_id: i64,
        backup_id: &str,
        created_at: Option<DateTime<Utc>>,
        size_gb: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE jobs SET backup_id = ?2, size_gb = ?3, updated_at = ?4 WHERE id = ?1",
                args![job_id, backup_id, size_gb, format_ts(now)],
            )?;
            tx.execute(
                "UPDATE restores SET backup_created_at = ?2, backup_size_gb = ?3
                  WHERE job_id = ?1",
                args![job_id, created_at.map(format_ts), size_gb],
            )?;
            Ok(())
        })
    }

    /// Records the volume a restore goes into (created, or adopted by name).
    pub fn set_restore_volume(&self, job_id: i64, volume_id: &str) -> Result<(), StoreError> {
        self.update_restore(job_id, "volume_id = ?2", args![job_id, volume_id])
    }

    /// Records that the cloud accepted the restore (with the vendor's job).
    pub fn restore_started(
        &self,
        job_id: i64,
        restore_job_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update_restore(
            job_id,
            "restore_job_id = ?2, restore_started_at = ?3",
            args![job_id, restore_job_id, format_ts(at)],
        )
    }

    /// Records that the restored volume is available.
    pub fn restore_finished(&self, job_id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_restore(
            job_id,
            "restore_finished_at = ?2",
            args![job_id, format_ts(at)],
        )
    }

    /// Records what `verify` said: `passed`, `failed`, `timed_out` or `none`.
    pub fn set_verify(
        &self,
        job_id: i64,
        verdict: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_restore(
            job_id,
            "verify = ?2, verify_detail = ?3",
            args![job_id, verdict, detail],
        )
    }

    /// Records that a scratch volume is gone.
    pub fn scratch_deleted(&self, job_id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update_restore(
            job_id,
            "volume_deleted_at = ?2",
            args![job_id, format_ts(at)],
        )
    }

    /// Scratch volumes of finished restores that are not known to be gone.
    pub fn scratch_left(&self) -> Result<Vec<ScratchLeft>, StoreError> {
        self.db.rows(
            "SELECT j.id, j.policy, j.cloud, r.volume_id
               FROM jobs j JOIN restores r ON r.job_id = j.id
              WHERE r.into_volume = 'scratch' AND r.volume_id IS NOT NULL
                AND r.volume_deleted_at IS NULL AND j.phase = 'done'
              ORDER BY j.id",
            args![],
            |r| {
                Ok(ScratchLeft {
                    job_id: r.get(0)?,
                    policy: r.get(1)?,
                    cloud: r.get(2)?,
                    volume_id: r.get(3)?,
                })
            },
        )
    }

    /// When each target of `policy` last had a restore job start (drills
    /// restore those drilled longest ago first).
    pub fn last_restores(
        &self,
        policy: &str,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows = self.db.rows(
            "SELECT target, max(started_at) FROM jobs
              WHERE policy = ?1 AND kind = 'restore' AND status <> 'skipped_overlap'
                AND status <> 'missed'
              GROUP BY target",
            args![policy],
            |r| Ok((r.get::<String>(0)?, parse_ts(&r.get::<String>(1)?)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// How long each verified restore of (policy, source volume) with its
    /// slot in `[since, until]` took (`v_restores.restore_s`, the measured
    /// RTO), shortest first.
    pub fn verified_restore_seconds(
        &self,
        policy: &str,
        target: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<f64>, StoreError> {
        self.db.rows(
            "SELECT v.restore_s FROM v_restores v JOIN jobs j ON j.id = v.job_id
              WHERE v.policy = ?1 AND v.source_volume = ?2 AND v.status = 'verified'
                AND v.restore_s IS NOT NULL AND j.slot >= ?3 AND j.slot <= ?4
              ORDER BY v.restore_s",
            args![policy, target, format_ts(since), format_ts(until)],
            |r| r.get(0),
        )
    }

    /// The newest verified restore of every (policy, source volume): when
    /// it ended (the `restore_last_verified_timestamp` gauge at start-up).
    pub fn last_verified_restores(&self) -> Result<Vec<LastSuccess>, StoreError> {
        self.last_ended_with("'verified'")
    }

    fn update_restore(&self, job_id: i64, set: &str, values: &[Value]) -> Result<(), StoreError> {
        let changed = self.db.execute(
            &format!("UPDATE restores SET {set} WHERE job_id = ?1"),
            values,
        )?;
        if changed == 0 {
            return Err(StoreError::Corrupt(format!(
                "restore job {job_id} has no restores row"
            )));
        }
        Ok(())
    }
}
