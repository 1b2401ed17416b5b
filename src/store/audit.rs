//! Read-side queries for audits: filtered job listings and the per-target
//! facts the compliance report is built from. They read the documented
//! views (`v_jobs`, `v_failures`) where those say what is wanted, so the
//! views auditors query are the ones the agent itself relies on.

use super::db::{args, Row, Value};
use super::jobs::JOB_COLUMNS;
use super::{format_ts, parse_ts, JobRecord, JobStatus, Store, StoreError};
use chrono::{DateTime, Utc};

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

/// How many succeeded jobs one service made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceCount {
    /// `vbs`, `cbr`, `evs` or `csbs`.
    pub service: String,
    pub succeeded: u64,
}

impl JobStatus {
    /// Every status, in the order a job can reach them.
    pub const ALL: [JobStatus; 9] = [
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Verified,
        JobStatus::Failed,
        JobStatus::TimedOut,
        JobStatus::SkippedOverlap,
        JobStatus::Missed,
        JobStatus::LeftScope,
        JobStatus::TargetGone,
    ];
}

/// How a target's jobs over a window ended, and the attempts they made:
/// one type for the store's totals and the compliance report, whose JSON
/// shows these fields under these names, in this order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    /// Jobs with slots in the window (any status).
    pub jobs: u64,
    /// Succeeded jobs (for a drill: verified restores).
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Slots not run because the target's previous job was still running.
    pub skipped_overlap: u64,
    /// Slots that fell while the agent was down and were not caught up.
    pub missed: u64,
    pub running: u64,
    /// Attempts made, retries included (skipped and missed slots make none).
    pub attempts: u64,
}

impl JobCounts {
    /// Jobs that ended (all but the running ones).
    pub fn finished(&self) -> u64 {
        self.jobs - self.running
    }

    /// Succeeded out of finished jobs.
    pub fn success_rate(&self) -> Option<f64> {
        let finished = self.finished();
        (finished > 0).then(|| self.succeeded as f64 / finished as f64)
    }

    /// Whether any job or earlier attempt in the window failed: a final
    /// failure, or more attempts than jobs that ran (each retry follows a
    /// failed attempt). When not, there are no failure reasons to look up.
    pub fn may_have_failures(&self) -> bool {
        let ran = self.jobs - self.skipped_overlap - self.missed;
        self.failed + self.timed_out > 0 || self.attempts > ran
    }
}

/// The totals of a target's jobs over a window (see [`Store::window_totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotals {
    pub counts: JobCounts,
    /// Sum and count of the durations of succeeded jobs (whole seconds, as
    /// `v_jobs.duration_seconds`).
    pub duration_sum_seconds: Option<i64>,
    pub durations: u64,
    pub worst_duration_seconds: Option<i64>,
    /// Sum of the succeeded jobs' sizes.
    pub size_gb: i64,
}

impl WindowTotals {
    /// Mean duration of the succeeded jobs.
    pub fn mean_duration(&self) -> Option<f64> {
        let sum = self.duration_sum_seconds?;
        (self.durations > 0).then(|| sum as f64 / self.durations as f64)
    }
}

impl JobFilter {
    /// The `WHERE … ORDER BY … LIMIT …` tail selecting these jobs, newest
    /// first, from `jobs` or `v_jobs` (whose id column is `id_column`).
    fn sql_tail(&self, id_column: &str) -> (String, Vec<Value>) {
        let mut clauses = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut bind = |clause: &str, value: Value| {
            values.push(value);
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
        };
        if let Some(policy) = &self.policy {
            bind("policy = ?", Value::Text(policy.clone()));
        }
        if let Some(target) = &self.target {
            bind("target = ?", Value::Text(target.clone()));
        }
        if let Some(since) = self.since {
            bind("slot >= ?", Value::Text(format_ts(since)));
        }
        if let Some(until) = self.until {
            bind("slot <= ?", Value::Text(format_ts(until)));
        }
        if !self.statuses.is_empty() {
            // Statuses are our own closed set of identifiers, safe to inline.
            let list: Vec<String> = self
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            clauses.push(format!("status IN ({})", list.join(", ")));
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY started_at DESC, {id_column} DESC"));
        if let Some(limit) = self.limit {
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        (sql, values)
    }
}

/// One row of the `v_jobs` view: every column, in the view's order, under
/// the view's names, times as stored (UTC RFC 3339 with milliseconds).
/// `history --format json|csv` prints these, so exports and SQL agree.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRow {
    pub job_id: i64,
    pub run_id: i64,
    pub policy: String,
    pub kind: String,
    pub cloud: String,
    pub target: String,
    pub slot: String,
    pub trigger: String,
    pub status: String,
    pub phase: String,
    pub attempts: i64,
    pub resource_name: String,
    pub snapshot_id: Option<String>,
    pub backup_id: Option<String>,
    pub size_gb: Option<i64>,
    pub is_incremental: Option<bool>,
    pub fail_reason: Option<String>,
    pub blocked_by: Option<i64>,
    pub started_at: String,
    pub attempt_started_at: String,
    pub finished_at: Option<String>,
    pub retry_at: Option<String>,
    pub duration_seconds: Option<i64>,
    pub updated_at: String,
}

impl Store {
    /// Jobs matching `filter`, newest first (by start, then id).
    pub fn jobs_matching(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let (tail, values) = filter.sql_tail("id");
        self.query_jobs(&format!("SELECT {JOB_COLUMNS} FROM jobs{tail}"), &values)
    }

    /// The `v_jobs` rows of the jobs matching `filter`, newest first.
    pub fn job_rows_matching(&self, filter: &JobFilter) -> Result<Vec<JobRow>, StoreError> {
        let (tail, values) = filter.sql_tail("job_id");
        // Columns by position: `JobRow` has the view's columns in its order
        // (a test holds the two together).
        self.db.rows(
            &format!("SELECT * FROM v_jobs{tail}"),
            &values,
            read_job_row,
        )
    }

    /// The column names of `v_jobs`, in order (the CSV header).
    pub fn job_row_columns(&self) -> Result<Vec<String>, StoreError> {
        self.db.with(|c| c.columns("SELECT * FROM v_jobs LIMIT 0"))
    }

    /// An auditor's own query, without parameters, on either backend: its
    /// column names and its rows. Both backends give the same values for
    /// the same history (render them with [`super::db::Value::render`]),
    /// which is how the views are held equal across them.
    pub fn select(&self, sql: &str) -> Result<(Vec<String>, Vec<Row>), StoreError> {
        self.db
            .with(|c| Ok((c.columns(sql)?, c.query(sql, args![])?)))
    }

    /// Whether the history has the audit views (a database last migrated
    /// by an older agent does not).
    pub fn has_audit_views(&self) -> Result<bool, StoreError> {
        let sql = self
            .dialect()
            .tables_named("'v_jobs', 'v_failures', 'v_compliance'");
        Ok(self.db.query(&sql, args![])?.len() == 3)
    }

    /// The distinct targets `policy` has jobs for, in order.
    pub fn targets_of_policy(&self, policy: &str) -> Result<Vec<String>, StoreError> {
        self.db.rows(
            "SELECT DISTINCT target FROM jobs WHERE policy = ?1 ORDER BY target",
            args![policy],
            |r| r.get(0),
        )
    }

    /// The newest succeeded job of (policy, target) whose attempt started
    /// at or before `at`: the target's latest recovery point as of `at`
    /// (for a drill, its latest verified restore).
    pub fn last_success(
        &self,
        policy: &str,
        target: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE policy = ?1 AND target = ?2 AND status IN ('succeeded', 'verified')
               AND COALESCE(attempt_started_at, started_at) <= ?3
             ORDER BY COALESCE(attempt_started_at, started_at) DESC, id DESC LIMIT 1"
        );
        Ok(self
            .query_jobs(&sql, args![policy, target, format_ts(at)])?
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
            .db
            .value(
                "SELECT min(slot) FROM jobs WHERE policy = ?1 AND target = ?2 AND slot <= ?3",
                args![policy, target, format_ts(at)],
            )?
            .flatten();
        slot.as_deref().map(parse_ts).transpose()
    }

    /// What the jobs of (policy, target) with slots in `[since, until]`
    /// add up to, computed by SQLite so that a report over a large fleet
    /// reads no job row into memory.
    pub fn window_totals(
        &self,
        policy: &str,
        target: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<WindowTotals, StoreError> {
        let round = self.dialect().round();
        let sql = format!(
            "SELECT count(*),
                    count(*) FILTER (WHERE status IN ('succeeded', 'verified')),
                    count(*) FILTER (WHERE status = 'failed'),
                    count(*) FILTER (WHERE status = 'timed_out'),
                    count(*) FILTER (WHERE status = 'skipped_overlap'),
                    count(*) FILTER (WHERE status = 'missed'),
                    count(*) FILTER (WHERE status = 'running'),
                    COALESCE(sum(attempt) FILTER (WHERE status NOT IN ('skipped_overlap', 'missed')), 0),
                    sum(d) FILTER (WHERE status IN ('succeeded', 'verified')),
                    count(d) FILTER (WHERE status IN ('succeeded', 'verified')),
                    max(d) FILTER (WHERE status IN ('succeeded', 'verified')),
                    COALESCE(sum(size_gb) FILTER (WHERE status IN ('succeeded', 'verified')), 0)
             FROM (SELECT status, attempt, size_gb,
                          CAST({round}((julianday(finished_at) - julianday(started_at)) * 86400)
                               AS BIGINT) AS d
                   FROM jobs
                   WHERE policy = ?1 AND target = ?2 AND slot >= ?3 AND slot <= ?4
                     -- a target that left or is gone is noted, not judged
                     AND status NOT IN ('left_scope', 'target_gone')) AS w"
        );
        let count = |r: &Row, i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(r.get::<i64>(i)?).unwrap_or(0))
        };
        let row = self
            .db
            .query_opt(
                &sql,
                args![policy, target, format_ts(since), format_ts(until)],
            )?
            .ok_or_else(|| StoreError::Corrupt("an aggregate without a row".into()))?;
        let r = &row;
        Ok(WindowTotals {
            counts: JobCounts {
                jobs: count(r, 0)?,
                succeeded: count(r, 1)?,
                failed: count(r, 2)?,
                timed_out: count(r, 3)?,
                skipped_overlap: count(r, 4)?,
                missed: count(r, 5)?,
                running: count(r, 6)?,
                attempts: count(r, 7)?,
            },
            duration_sum_seconds: r.get(8)?,
            durations: count(r, 9)?,
            worst_duration_seconds: r.get(10)?,
            size_gb: r.get(11)?,
        })
    }

    /// The succeeded jobs of (policy, target) with slots in `[since,
    /// until]`, counted by the service that made their backup or snapshot
    /// (as [`JobRecord::service`] names it: a job recorded before CBR by
    /// its kind's usual service), in service order.
    pub fn successes_by_service(
        &self,
        policy: &str,
        target: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<ServiceCount>, StoreError> {
        self.db.rows(
            "SELECT s, count(*) FROM
               (SELECT COALESCE(service, CASE kind WHEN 'snapshot' THEN 'evs'
                                                   WHEN 'server' THEN 'csbs'
                                                   ELSE 'vbs' END) AS s
                FROM jobs
                WHERE policy = ?1 AND target = ?2 AND slot >= ?3 AND slot <= ?4
                  AND status IN ('succeeded', 'verified')) AS w
             GROUP BY s ORDER BY s",
            args![policy, target, format_ts(since), format_ts(until)],
            |r| {
                Ok(ServiceCount {
                    service: r.get(0)?,
                    succeeded: u64::try_from(r.get::<i64>(1)?).unwrap_or(0),
                })
            },
        )
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
        self.db.rows(
            "SELECT reason, count(*) AS n FROM v_failures
             WHERE policy = ?1 AND target = ?2 AND slot >= ?3 AND slot <= ?4
               AND status IN ('failed', 'timed_out')
             GROUP BY reason ORDER BY n DESC, reason",
            args![policy, target, format_ts(since), format_ts(until)],
            |r| {
                Ok(FailureCount {
                    reason: r.get(0)?,
                    count: r.get(1)?,
                })
            },
        )
    }
}

/// Reads one `v_jobs` row, its columns in the view's order.
fn read_job_row(r: &Row) -> Result<JobRow, StoreError> {
    Ok(JobRow {
        job_id: r.get(0)?,
        run_id: r.get(1)?,
        policy: r.get(2)?,
        kind: r.get(3)?,
        cloud: r.get(4)?,
        target: r.get(5)?,
        slot: r.get(6)?,
        trigger: r.get(7)?,
        status: r.get(8)?,
        phase: r.get(9)?,
        attempts: r.get(10)?,
        resource_name: r.get(11)?,
        snapshot_id: r.get(12)?,
        backup_id: r.get(13)?,
        size_gb: r.get(14)?,
        is_incremental: r.get(15)?,
        fail_reason: r.get(16)?,
        blocked_by: r.get(17)?,
        started_at: r.get(18)?,
        attempt_started_at: r.get(19)?,
        finished_at: r.get(20)?,
        retry_at: r.get(21)?,
        duration_seconds: r.get(22)?,
        updated_at: r.get(23)?,
    })
}

#[cfg(test)]
mod tests {
    use super::JobRow;
    use crate::store::test_support::temp_store;

    #[test]
    fn a_job_row_serializes_its_fields_in_the_order_of_the_view() {
        let (_dir, store) = temp_store();
        let row = JobRow {
            job_id: 1,
            run_id: 1,
            policy: "p".into(),
            kind: "backup".into(),
            cloud: "c".into(),
            target: "t".into(),
            slot: "2026-11-22T01:30:00.000Z".into(),
            trigger: "schedule".into(),
            status: "succeeded".into(),
            phase: "done".into(),
            attempts: 1,
            resource_name: "p-x".into(),
            snapshot_id: None,
            backup_id: Some("b".into()),
            size_gb: Some(8),
            is_incremental: Some(false),
            fail_reason: None,
            blocked_by: None,
            started_at: "2026-11-22T01:30:00.000Z".into(),
            attempt_started_at: "2026-11-22T01:30:00.000Z".into(),
            finished_at: Some("2026-11-22T01:32:00.000Z".into()),
            retry_at: None,
            duration_seconds: Some(120),
            updated_at: "2026-11-22T01:32:00.000Z".into(),
        };
        // csv derives its header from the struct's field order.
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&row).unwrap();
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let header = text.lines().next().unwrap().to_string();
        assert_eq!(header, store.job_row_columns().unwrap().join(","));
    }
}
