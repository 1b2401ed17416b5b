//! The last successful job per policy and target, so the metrics show it
//! from the first scrape after a restart.

use chrono::{DateTime, Utc};

use super::db::args;
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
        self.db.rows(
            &format!(
                "SELECT policy, target, MAX(finished_at) FROM jobs \
                 WHERE status IN ({statuses}) AND finished_at IS NOT NULL \
                 GROUP BY policy, target ORDER BY policy, target"
            ),
            args![],
            |r| {
                Ok(LastSuccess {
                    policy: r.get(0)?,
                    target: r.get(1)?,
                    finished_at: parse_ts(&r.get::<String>(2)?)?,
                })
            },
        )
    }
}
