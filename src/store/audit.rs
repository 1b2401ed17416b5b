//! Read-side queries for audits: filtered job listings and the per-target
//! facts the compliance report is built from. They read the documented
//! views (`v_jobs`, `v_failures`) where those say what is wanted, so the
//! views auditors query are the ones the agent itself relies on.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension};

use super::jobs::JOB_COLUMNS;
use super::{format_ts, parse_ts, JobRecord, JobStatus, Store, StoreError};

/// Which jobs to list; every `None` or empty field matches all.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub policy: Option<String>,
    pub target: Option<String>,
    /// Any of these statuses.
    pub statuses: Vec<JobStatus>,
    /// Jobs whose slot is at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Jobs whose slot is at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

/// How often one failure reason occurred.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailureCount {
    pub reason: String,
    pub count: u32,
}

impl JobStatus {
    /// Every status, in the order a job can reach them.
    pub const ALL: [JobStatus; 6] = [
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::TimedOut,
        JobStatus::SkippedOverlap,
        JobStatus::Missed,
    ];
}

impl Store {
    /// Jobs matching `filter`, newest first (by start, then id).
    pub fn jobs_matching(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let mut clauses = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut bind = |clause: &str, value: Value| {
            values.push(value);
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
        };
        if let Some(policy) = &filter.policy {
            bind("policy = ?", Value::Text(policy.clone()));
        }
        if let Some(target) = &filter.target {
            bind("target = ?", Value::Text(target.clone()));
        }
        if let Some(since) = filter.since {
            bind("slot >= ?", Value::Text(format_ts(since)));
        }
        if let Some(until) = filter.until {
            bind("slot <= ?", Value::Text(format_ts(until)));
        }
        if !filter.statuses.is_empty() {
            // Statuses are our own closed set of identifiers, safe to inline.
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            clauses.push(format!("status IN ({})", list.join(", ")));
        }
        let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY started_at DESC, id DESC");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        self.query_jobs(&sql, rusqlite::params_from_iter(values))
    }

    /// Whether the history has the audit views (a database last migrated
    /// by an older agent does not).
    pub fn has_audit_views(&self) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM sqlite_master
             WHERE type = 'view' AND name IN ('v_jobs', 'v_failures', 'v_compliance')",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 3)
    }

    /// The distinct targets `policy` has jobs for, in order.
    pub fn targets_of_policy(&self, policy: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT DISTINCT target FROM jobs WHERE policy = ?1 ORDER BY target")?;
        let rows = stmt.query_map([policy], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest succeeded job of (policy, target) whose attempt started
    /// at or before `at`: the target's latest recovery point as of `at`.
    pub fn last_success(
        &self,
        policy: &str,
        target: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE id = (
                 SELECT job_id FROM v_jobs
                 WHERE policy = ?1 AND target = ?2 AND status = 'succeeded'
                   AND attempt_started_at <= ?3
                 ORDER BY attempt_started_at DESC, job_id DESC LIMIT 1)"
        );
        Ok(self
            .query_jobs(&sql, params![policy, target, format_ts(at)])?
            .into_iter()
            .next())
    }

    /// The earliest slot recorded for (policy, target) at or before `at`:
    /// when it first became due.
    pub fn first_slot(
        &self,
        policy: &str,
        target: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let slot: Option<String> = self
            .conn()
            .query_row(
                "SELECT min(slot) FROM jobs WHERE policy = ?1 AND target = ?2 AND slot <= ?3",
                params![policy, target, format_ts(at)],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        slot.as_deref().map(parse_ts).transpose()
    }

    /// Failed and timed-out attempts (final ones and retried ones) of
    /// (policy, target) with slots in `[since, until]`, grouped by reason,
    /// most frequent first.
    pub fn failure_counts(
        &self,
        policy: &str,
        target: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT reason, count(*) AS n FROM v_failures
             WHERE policy = ?1 AND target = ?2 AND slot >= ?3 AND slot <= ?4
               AND status IN ('failed', 'timed_out')
             GROUP BY reason ORDER BY n DESC, reason",
        )?;
        let rows = stmt.query_map(
            params![policy, target, format_ts(since), format_ts(until)],
            |r| {
                Ok(FailureCount {
                    reason: r.get(0)?,
                    count: r.get(1)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
