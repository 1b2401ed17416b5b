//! What each run covered: its resolved target set and how it was found,
//! and the targets that left a policy or no longer exist. This is how the
//! history answers "what did policy P protect on night N" once a policy
//! names its targets by label.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{format_ts, parse_ts, Store, StoreError};

/// How a run's target set was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The policy names its targets by ID only.
    Listed,
    /// The selector was resolved against the cloud for this run.
    Resolved,
    /// The cloud could not be asked: the last set resolved is used.
    LastGood,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Listed => "listed",
            Resolution::Resolved => "resolved",
            Resolution::LastGood => "last_good",
        }
    }
}

/// One target in scope, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedTarget {
    pub id: String,
    pub name: Option<String>,
    /// `listed`, or the selector rule that matched.
    pub reason: String,
}

/// A run's target set, recorded with the run.
#[derive(Debug, Clone)]
pub struct RunScope {
    pub resolution: Resolution,
    /// When the set was resolved (for `LastGood`, the earlier resolution).
    pub resolved_at: DateTime<Utc>,
    pub targets: Vec<ScopedTarget>,
}

/// A set resolved earlier: when, and the targets.
pub type Resolved = (DateTime<Utc>, Vec<ScopedTarget>);

/// A target whose newest job says it left the policy or is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vanished {
    pub target: String,
    /// `true`: the target no longer exists; `false`: it left the selection.
    pub gone: bool,
    /// When that was recorded.
    pub at: DateTime<Utc>,
}

impl Store {
    /// The set the newest run of `policy` that resolved its selector
    /// against the cloud found, with when: what a run uses when the cloud
    /// cannot be asked.
    pub fn last_resolved_scope(&self, policy: &str) -> Result<Option<Resolved>, StoreError> {
        let conn = self.conn();
        let found: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, resolved_at FROM runs
                  WHERE policy = ?1 AND resolution = 'resolved'
                  ORDER BY slot DESC, id DESC LIMIT 1",
                [policy],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        drop(conn);
        let Some((run_id, at)) = found else {
            return Ok(None);
        };
        Ok(Some((parse_ts(&at)?, self.run_scope(run_id)?)))
    }

    /// The targets of the newest run of `policy` that recorded its target
    /// set, or `None` before the first.
    pub fn current_scope(&self, policy: &str) -> Result<Option<Vec<ScopedTarget>>, StoreError> {
        let run_id: Option<i64> = self
            .conn()
            .query_row(
                "SELECT id FROM runs WHERE policy = ?1 AND resolution IS NOT NULL
                  ORDER BY slot DESC, id DESC LIMIT 1",
                [policy],
                |r| r.get(0),
            )
            .optional()?;
        run_id.map(|id| self.run_scope(id)).transpose()
    }

    /// The targets recorded for one run, by ID.
    pub fn run_scope(&self, run_id: i64) -> Result<Vec<ScopedTarget>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT target, name, reason FROM run_targets WHERE run_id = ?1 ORDER BY target",
        )?;
        let rows = stmt.query_map([run_id], |r| {
            Ok(ScopedTarget {
                id: r.get(0)?,
                name: r.get(1)?,
                reason: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The targets of `policy` whose newest job is `left_scope` or
    /// `target_gone`, with when it was recorded.
    pub fn vanished_targets(&self, policy: &str) -> Result<Vec<Vanished>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            // The few left and gone jobs by the status index, each kept
            // when no later job of its target follows (the unique index on
            // policy, target, slot answers that): no scan of the policy's
            // jobs, however long its history.
            "SELECT target, status, finished_at FROM jobs j
              WHERE status IN ('left_scope', 'target_gone') AND policy = ?1
                AND finished_at IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM jobs k
                                 WHERE k.policy = j.policy AND k.target = j.target
                                   AND k.slot > j.slot)
              ORDER BY target",
        )?;
        let rows = stmt.query_map([policy], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (target, status, at) = row?;
            out.push(Vanished {
                target,
                gone: status == "target_gone",
                at: parse_ts(&at)?,
            });
        }
        Ok(out)
    }

    /// For each target of `cloud`, the newest good job of any policy: the
    /// policy and when it ended.
    pub fn last_good_by_target(
        &self,
        cloud: &str,
    ) -> Result<HashMap<String, (String, DateTime<Utc>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            // SQLite takes `policy` from the row holding the max().
            "SELECT target, policy, MAX(finished_at) FROM jobs
              WHERE cloud = ?1 AND kind != 'restore'
                AND status = 'succeeded' AND finished_at IS NOT NULL
              GROUP BY target",
        )?;
        let rows = stmt.query_map([cloud], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (target, policy, at) = row?;
            out.insert(target, (policy, parse_ts(&at)?));
        }
        Ok(out)
    }
}

/// Records a run's target set in the transaction that records the run.
pub(super) fn insert(
    tx: &Transaction<'_>,
    run_id: i64,
    scope: &RunScope,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE runs SET resolution = ?1, resolved_at = ?2 WHERE id = ?3",
        params![
            scope.resolution.as_str(),
            format_ts(scope.resolved_at),
            run_id
        ],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT INTO run_targets (run_id, target, name, reason) VALUES (?1, ?2, ?3, ?4)",
    )?;
    // One row per target even if the cloud listed one twice.
    let unique: BTreeMap<&str, &ScopedTarget> =
        scope.targets.iter().map(|t| (t.id.as_str(), t)).collect();
    for t in unique.values() {
        stmt.execute(params![run_id, t.id, t.name, t.reason])?;
    }
    Ok(())
}
