//! `schedule_marks`: the last slot fired per policy, so a restarted agent
//! knows which slots it has already handled.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{format_ts, parse_ts, Store, StoreError};

impl Store {
    /// Records that `policy` fired for `slot` (never moves backwards).
    pub fn mark_slot(
        &self,
        policy: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO schedule_marks (policy, last_slot, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (policy) DO UPDATE SET last_slot = excluded.last_slot,
                 updated_at = excluded.updated_at
             WHERE excluded.last_slot > schedule_marks.last_slot",
            params![policy, format_ts(slot), format_ts(now)],
        )?;
        Ok(())
    }

    /// The last slot fired for `policy`, if it ever fired.
    pub fn last_slot(&self, policy: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let raw: Option<String> = self
            .conn()
            .query_row(
                "SELECT last_slot FROM schedule_marks WHERE policy = ?1",
                [policy],
                |r| r.get(0),
            )
            .optional()?;
        raw.as_deref().map(parse_ts).transpose()
    }
}
