//! `vbs-agent history`: jobs from the history, filtered, as a table or as
//! complete, machine-stable JSON or CSV: the rows of the `v_jobs` view
//! ([`crate::store::JobRow`]).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};

use super::{load_config, table, EXIT_INVALID};
use crate::audit::{parse_time_bound, resource_id, AuditError};
use crate::store::{JobFilter, JobRecord, JobRow, JobStatus, Store};

/// Columns of the job table.
pub const HEADER: &[&str] = &[
    "policy",
    "target",
    "slot",
    "status",
    "attempts",
    "backup/snapshot",
    "duration",
    "failure reason",
];

/// Rows a table shows when no `--limit` is given.
const DEFAULT_TABLE_LIMIT: usize = 20;

/// How `history` prints jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// Aligned columns for reading.
    Table,
    /// An array of objects: every column of `v_jobs` for every job.
    Json,
    /// A header and one line per job: every column of `v_jobs` (RFC 4180).
    Csv,
}

/// Which jobs `history` shows and how.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryQuery {
    /// Only this policy.
    #[arg(long, short, value_name = "NAME")]
    pub policy: Option<String>,
    /// Only this target (volume or server id).
    #[arg(long, value_name = "ID")]
    pub target: Option<String>,
    /// Only these statuses, comma-separated: running, succeeded, failed,
    /// timed_out, skipped_overlap, missed, verified, left_scope, target_gone.
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<JobStatus>,
    /// Slots at or after this: a duration back from now (24h, 7d), a date
    /// (2026-11-20, midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Slots at or before this (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many jobs, newest first. Default: 20 for a table, all
    /// for json and csv.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    pub format: HistoryFormat,
}

fn parse_status(text: &str) -> Result<JobStatus, String> {
    JobStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
            format!("unknown status `{text}`; use one of {}", names.join(", "))
        })
}

/// The history named by `--db` (an SQLite file) or by the policy file;
/// `Err(code)` when the policy file is invalid.
fn history_db(
    config: Option<&Path>,
    db: Option<&Path>,
) -> anyhow::Result<Result<(Store, String), ExitCode>> {
    let missing =
        |path: &Path| anyhow::anyhow!("no history at {} (has the agent run yet?)", path.display());
    match (db, config) {
        (Some(db), _) if !db.exists() => Err(missing(db)),
        (Some(db), _) => Ok(Ok((Store::open_read_only(db)?, db.display().to_string()))),
        (None, Some(config)) => {
            let config = match load_config(config) {
                Ok(c) => c,
                Err(code) => return Ok(Err(code)),
            };
            match crate::history_store::open_existing_reader(&config)? {
                Some(store) => {
                    let described = crate::history_store::describe(&config, &store);
                    Ok(Ok((store, described)))
                }
                None => Err(missing(&config.history_path())),
            }
        }
        (None, None) => anyhow::bail!("give --config FILE or --db FILE"),
    }
}

pub fn run(
    config: Option<&Path>,
    db: Option<&Path>,
    query: &HistoryQuery,
) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let bound = |option: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| parse_time_bound(t, now).map_err(|e| format!("--{option}: {e}")))
            .transpose()
    };
    let (since, until) = match (bound("since", &query.since), bound("until", &query.until)) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(e), _) | (_, Err(e)) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let (store, path) = match history_db(config, db)? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let limit = query.limit.or(match query.format {
        HistoryFormat::Table => Some(DEFAULT_TABLE_LIMIT),
        HistoryFormat::Json | HistoryFormat::Csv => None,
    });
    let filter = JobFilter {
        policy: query.policy.clone(),
        target: query.target.clone(),
        statuses: query.status.clone(),
        since,
        until,
        limit,
    };
    if query.format == HistoryFormat::Table {
        let jobs = store.jobs_matching(&filter)?;
        if jobs.is_empty() {
            outln!("no matching jobs in {path}");
        } else {
            out!("{}", table::render(HEADER, &job_rows(&jobs)));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !store.has_audit_views()? {
        anyhow::bail!(AuditError::NotMigrated);
    }
    let rows = store.job_rows_matching(&filter)?;
    if query.format == HistoryFormat::Json {
        outln!("{}", super::escape::json(&rows)?);
    } else {
        out!("{}", csv_text(&store.job_row_columns()?, &rows)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// The rows as CSV under `header` (also when there are no rows).
fn csv_text(header: &[String], rows: &[JobRow]) -> anyhow::Result<String> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer.into_inner().context("cannot write CSV")?;
    Ok(String::from_utf8(bytes)?)
}

/// One table row per job.
pub fn job_rows(jobs: &[JobRecord]) -> Vec<Vec<String>> {
    jobs.iter()
        .map(|j| {
            let duration = j
                .finished_at
                .map(|f| {
                    let secs = (f - j.started_at).num_seconds().max(0).unsigned_abs();
                    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
                })
                .unwrap_or_else(|| "-".into());
            let reason = match (j.status, &j.fail_reason) {
                (_, Some(r)) => r.clone(),
                (JobStatus::SkippedOverlap, None) => format!(
                    "job {} of this target was still running",
                    j.blocked_by.unwrap_or_default()
                ),
                (JobStatus::Missed, None) => "slot missed while the agent was down".into(),
                _ => String::new(),
            };
            vec![
                j.policy.clone(),
                j.target.clone(),
                j.slot.to_rfc3339_opts(SecondsFormat::Secs, true),
                j.status.as_str().to_string(),
                j.attempt.to_string(),
                resource_id(j).unwrap_or_else(|| "-".into()),
                duration,
                reason,
            ]
        })
        .collect()
}
