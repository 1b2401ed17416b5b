//! Durations of earlier backups, the history that polling learns from.

use std::time::Duration;

use super::db::args;
use super::{Store, StoreError};

/// How many earlier backups shape the expectation for the next one.
pub const DURATION_SAMPLES: usize = 5;

impl Store {
    /// Records how long the job's backup took on the cloud.
    pub fn record_backup_duration(&self, job_id: i64, took: Duration) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET backup_seconds = ?2 WHERE id = ?1",
            args![job_id, took.as_secs_f64()],
        )?;
        Ok(())
    }

    /// The durations of the latest successful backups of `target` on
    /// `cloud` (any policy), newest first; of incremental or full ones only
    /// when `incremental` says so and there are any, else of all.
    pub fn backup_durations(
        &self,
        cloud: &str,
        target: &str,
        incremental: Option<bool>,
    ) -> Result<Vec<Duration>, StoreError> {
        if let Some(flag) = incremental {
            let of_kind = self.durations_where(cloud, target, Some(flag))?;
            if !of_kind.is_empty() {
                return Ok(of_kind);
            }
        }
        self.durations_where(cloud, target, None)
    }

    fn durations_where(
        &self,
        cloud: &str,
        target: &str,
        incremental: Option<bool>,
    ) -> Result<Vec<Duration>, StoreError> {
        let rows: Vec<f64> = self.db.rows(
            "SELECT backup_seconds FROM jobs
             WHERE cloud = ?1 AND target = ?2 AND status = 'succeeded'
               AND backup_seconds IS NOT NULL
               AND (CAST(?3 AS INTEGER) IS NULL OR is_incremental = ?3)
             ORDER BY id DESC LIMIT ?4",
            args![cloud, target, incremental, DURATION_SAMPLES],
            |r| r.get(0),
        )?;
        let mut out = Vec::new();
        for secs in rows {
            // A negative or absurd value (clock skew on the cloud) is no history.
            if let Ok(d) = Duration::try_from_secs_f64(secs) {
                out.push(d);
            }
        }
        Ok(out)
    }
}
