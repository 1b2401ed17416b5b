//! The last successful job per policy and target, so the metrics show it
//! from the first scrape after a restart.

use chrono::{DateTime, Utc};

use super::{parse_ts, Store, StoreError};

/// When a target's last successful job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSuccess {
    pub policy: String,
    pub target: String,
    pub finished_at: DateTime<Utc>,
}

impl Store {
    /// The end of the newest successful job of each (policy, target).
    pub fn last_successes(&self) -> Result<Vec<LastSuccess>, StoreError> {
        self.last_ended_with("'succeeded', 'verified'")
    }

    /// The end of the newest job of each (policy, target) whose status is
    /// in `statuses` (a list of quoted status names, our own constants).
    pub(super) fn last_ended_with(&self, statuses: &str) -> Result<Vec<LastSuccess>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT policy, target, MAX(finished_at) FROM jobs \
             WHERE status IN ({statuses}) AND finished_at IS NOT NULL \
             GROUP BY policy, target ORDER BY policy, target"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (policy, target, finished) = row?;
            out.push(LastSuccess {
                policy,
                target,
                finished_at: parse_ts(&finished)?,
            });
        }
        Ok(out)
    }
}
