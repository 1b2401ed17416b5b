//! What each run covered: its resolved target set and how it was found,
//! and the targets that left a policy or no longer exist. This is how the
//! history answers "what did policy P protect on night N" once a policy
//! names its targets by label.

use std::collections::{BTreeMap, HashMap};

use super::db::{args, Sql};
use super::{format_ts, parse_ts, Store, StoreError};
use chrono::{DateTime, Utc};

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
        let Some(found) = self.db.query_opt(
            "SELECT id, resolved_at FROM runs
              WHERE policy = ?1 AND resolution = 'resolved'
              ORDER BY slot DESC, id DESC LIMIT 1",
            args![policy],
        )?
        else {
            return Ok(None);
        };
        let at = parse_ts(&found.get::<String>(1)?)?;
        Ok(Some((at, self.run_scope(found.get(0)?)?)))
    }

    /// The targets of the newest run of `policy` that recorded its target
    /// set, or `None` before the first.
    pub fn current_scope(&self, policy: &str) -> Result<Option<Vec<ScopedTarget>>, StoreError> {
        let run_id: Option<i64> = self.db.value(
            "SELECT id FROM runs WHERE policy = ?1 AND resolution IS NOT NULL
              ORDER BY slot DESC, id DESC LIMIT 1",
            args![policy],
        )?;
        run_id.map(|id| self.run_scope(id)).transpose()
    }

    /// The targets recorded for one run, by ID.
    pub fn run_scope(&self, run_id: i64) -> Result<Vec<ScopedTarget>, StoreError> {
        self.db.rows(
            "SELECT target, name, reason FROM run_targets WHERE run_id = ?1 ORDER BY target",
            args![run_id],
            |r| {
                Ok(ScopedTarget {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    reason: r.get(2)?,
                })
            },
        )
    }

    /// The targets of `policy` whose newest job is `left_scope` or
    /// `target_gone`, with when it was recorded.
    pub fn vanished_targets(&self, policy: &str) -> Result<Vec<Vanished>, StoreError> {
        self.db.rows(
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
            args![policy],
            |r| {
                Ok(Vanished {
                    target: r.get(0)?,
                    gone: r.get::<String>(1)? == "target_gone",
                    at: parse_ts(&r.get::<String>(2)?)?,
                })
            },
        )
    }

    /// For each target of `cloud`, the newest good job of any policy: the
    /// policy and when it ended.
    pub fn last_good_by_target(
        &self,
        cloud: &str,
    ) -> Result<HashMap<String, (String, DateTime<Utc>)>, StoreError> {
        let rows = self.db.rows(
            "SELECT target, policy, finished_at FROM (
                 SELECT target, policy, finished_at,
                        row_number() OVER (PARTITION BY target
                                           ORDER BY finished_at DESC, id DESC) AS newest
                   FROM jobs
                  WHERE cloud = ?1 AND kind != 'restore'
                    AND status = 'succeeded' AND finished_at IS NOT NULL) AS good
              WHERE newest = 1",
            args![cloud],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    (r.get::<String>(1)?, parse_ts(&r.get::<String>(2)?)?),
                ))
            },
        )?;
        Ok(rows.into_iter().collect())
    }
}

/// Records a run's target set in the transaction that records the run.
pub(super) fn insert(tx: &mut dyn Sql, run_id: i64, scope: &RunScope) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE runs SET resolution = ?1, resolved_at = ?2 WHERE id = ?3",
        args![
            scope.resolution.as_str(),
            format_ts(scope.resolved_at),
            run_id
        ],
    )?;
    // One row per target even if the cloud listed one twice.
    let unique: BTreeMap<&str, &ScopedTarget> =
        scope.targets.iter().map(|t| (t.id.as_str(), t)).collect();
    for t in unique.values() {
        tx.execute(
            "INSERT INTO run_targets (run_id, target, name, reason) VALUES (?1, ?2, ?3, ?4)",
            args![run_id, &t.id, &t.name, &t.reason],
        )?;
    }
    Ok(())
}
