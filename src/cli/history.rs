//! `vbs-agent history`: the most recent jobs as a table.

use std::path::Path;
use std::process::ExitCode;

use chrono::SecondsFormat;

use super::{load_config, table};
use crate::store::{JobRecord, JobStatus, Store};

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

pub fn run(config: Option<&Path>, db: Option<&Path>, limit: usize) -> anyhow::Result<ExitCode> {
    let path = match (db, config) {
        (Some(db), _) => db.to_path_buf(),
        (None, Some(config)) => match load_config(config) {
            Ok(c) => c.history_path(),
            Err(code) => return Ok(code),
        },
        (None, None) => anyhow::bail!("give --config FILE or --db FILE"),
    };
    if !path.exists() {
        anyhow::bail!("no history at {} (has the agent run yet?)", path.display());
    }
    let store = Store::open_read_only(&path)?;
    let jobs = store.recent_jobs(limit)?;
    if jobs.is_empty() {
        outln!("no jobs recorded yet in {}", path.display());
    } else {
        out!("{}", table::render(HEADER, &job_rows(&jobs)));
    }
    Ok(ExitCode::SUCCESS)
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
                    "job {} of this volume was still running",
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
                j.backup_id
                    .clone()
                    .or_else(|| {
                        (j.kind == "snapshot")
                            .then(|| j.snapshot_id.clone())
                            .flatten()
                    })
                    .unwrap_or_else(|| "-".into()),
                duration,
                reason,
            ]
        })
        .collect()
}
