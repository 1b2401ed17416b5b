//! Durations of earlier backups, the history that polling learns from.

use std::time::Duration;

use super::db::args;
use super::{Store, StoreError};

/// How many earlier backups shape the expectation for the next one (the
/// `LIMIT` of the queries below).
pub const DURATION_SAMPLES: usize = 5;
const _: () = assert!(DURATION_SAMPLES == 5, "update the LIMIT of durations_where");

impl Store {
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
        // Two statements with a literal LIMIT (DURATION_SAMPLES) rather than
        // one with `?3 IS NULL OR …` and `LIMIT ?4`, which SQLite prepares
        // anew at every use. Read without the writes held
        // back, at no commit: they are of jobs running now, and the last
        // backup of the target ended a slot ago.
        let rows: Vec<f64> = self.db.with_committed(|c| match incremental {
            Some(flag) => c.rows(
                "SELECT backup_seconds FROM jobs
                 WHERE cloud = ?1 AND target = ?2 AND status = 'succeeded'
                   AND backup_seconds IS NOT NULL AND is_incremental = ?3
                 ORDER BY id DESC LIMIT 5",
                args![cloud, target, flag],
                |r| r.get(0),
            ),
            None => c.rows(
                "SELECT backup_seconds FROM jobs
                 WHERE cloud = ?1 AND target = ?2 AND status = 'succeeded'
                   AND backup_seconds IS NOT NULL
                 ORDER BY id DESC LIMIT 5",
                args![cloud, target],
                |r| r.get(0),
            ),
        })?;
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
