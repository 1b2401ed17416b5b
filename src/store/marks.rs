//! `schedule_marks`: the last slot fired per policy, so a restarted agent
//! knows which slots it has already handled.

use chrono::{DateTime, Utc};

use super::db::args;
use super::{format_ts, parse_ts, Store, StoreError};

impl Store {
    /// Records that `policy`, on `schedule` (expression and zone), has
    /// handled every slot up to `slot`. Never moves backwards for the same
    /// schedule; a changed schedule replaces the mark.
    pub fn mark_slot(
        &self,
        policy: &str,
        schedule: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO schedule_marks (policy, schedule, last_slot, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (policy) DO UPDATE SET last_slot = excluded.last_slot,
                 schedule = excluded.schedule, updated_at = excluded.updated_at
             WHERE excluded.last_slot > schedule_marks.last_slot
                OR excluded.schedule <> schedule_marks.schedule",
            args![policy, schedule, format_ts(slot), format_ts(now)],
        )?;
        Ok(())
    }

    /// The last slot handled for `policy` and the schedule it was computed
    /// with, if the policy ever fired.
    pub fn last_mark(&self, policy: &str) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        self.db
            .query_opt(
                "SELECT last_slot, schedule FROM schedule_marks WHERE policy = ?1",
                args![policy],
            )?
            .map(|r| Ok((parse_ts(&r.get::<String>(0)?)?, r.get(1)?)))
            .transpose()
    }
}
