//! `vbs-agent report`: per policy and target, the newest good backup, its
//! age against the RPO, and the window's statistics ([`crate::audit`]).
//! Exit 3 when a target is out of its RPO, so the report can drive an alert.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{escape, load_config, table, EXIT_INVALID};
use crate::audit::{compliance_report, parse_time_bound, ComplianceReport, TargetCompliance};
use crate::store::Store;

/// Exit code when at least one target is out of its RPO.
pub const EXIT_RPO_BREACH: u8 = 3;

const HEADER: &[&str] = &[
    "policy",
    "target",
    "last success",
    "age",
    "rpo",
    "state",
    "succeeded",
    "attempts",
    "mean",
    "worst",
    "size",
    "skipped",
    "missed",
];

pub fn run(config: &Path, since: &str, at: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let at = match at.map(|t| parse_time_bound(t, now)).transpose() {
        Ok(at) => at.unwrap_or(now),
        Err(e) => return Ok(usage(&format!("--at: {e}"))),
    };
    let since = match parse_time_bound(since, at) {
        Ok(since) => since,
        Err(e) => return Ok(usage(&format!("--since: {e}"))),
    };
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let path = config.history_path();
    if !path.exists() {
        anyhow::bail!("no history at {} (has the agent run yet?)", path.display());
    }
    let store = Store::open_read_only(&path)?;
    let report = compliance_report(&config, &store, since, at)?;
    if json {
        outln!("{}", super::escape::json(&report)?);
    } else {
        out!("{}", render(&report));
    }
    Ok(if report.breaches().next().is_some() {
        ExitCode::from(EXIT_RPO_BREACH)
    } else {
        ExitCode::SUCCESS
    })
}

fn usage(message: &str) -> ExitCode {
    errln!("error: {message}");
    ExitCode::from(EXIT_INVALID)
}

/// The report as text: one line per target, then the failure reasons.
fn render(report: &ComplianceReport) -> String {
    let mut out = format!(
        "compliance from {} to {}\n\n",
        time(report.since),
        time(report.at)
    );
    let rows: Vec<Vec<String>> = report.targets.iter().map(row).collect();
    out.push_str(&table::render(HEADER, &rows));
    let failing: Vec<&TargetCompliance> = report
        .targets
        .iter()
        .filter(|t| !t.failures.is_empty())
        .collect();
    if !failing.is_empty() {
        out.push_str("\nfailures by reason:\n");
        for t in failing {
            let (policy, target) = (escape::one_line(&t.policy), escape::one_line(&t.target));
            out.push_str(&format!("  {policy} {target}\n"));
            for f in &t.failures {
                let reason = escape::one_line(&f.reason);
                out.push_str(&format!("    {}× {reason}\n", f.count));
            }
        }
    }
    let breaches = report.breaches().count();
    out.push_str(&format!(
        "\n{breaches} of {} target(s) out of RPO\n",
        report.targets.len()
    ));
    out
}

fn row(t: &TargetCompliance) -> Vec<String> {
    let dash = || "-".to_string();
    let secs = |s: u64| human(Duration::from_secs(s));
    let state = if t.rpo_breached {
        "OUT OF RPO"
    } else if !t.in_config {
        "not configured"
    } else if t.rpo_seconds.is_none() {
        "no rpo"
    } else if t.last_success_at.is_none() && t.first_slot.is_none() {
        "not yet due"
    } else if t.last_success_at.is_none() {
        "ok (no success yet)"
    } else {
        "ok"
    };
    let counts = &t.counts;
    let rate = t
        .success_rate
        .map(|r| {
            let finished = counts.finished();
            format!("{}/{finished} ({:.0}%)", counts.succeeded, r * 100.0)
        })
        .unwrap_or_else(dash);
    vec![
        t.policy.clone(),
        t.target.clone(),
        t.last_success_at
            .map(time)
            .unwrap_or_else(|| "never".into()),
        t.last_success_age_seconds
            .map(|s| secs(s.max(0).unsigned_abs()))
            .unwrap_or_else(dash),
        t.rpo_seconds.map(secs).unwrap_or_else(dash),
        state.into(),
        rate,
        counts.attempts.to_string(),
        t.mean_duration_seconds
            .map(|s| secs(s.round() as u64))
            .unwrap_or_else(dash),
        t.worst_duration_seconds
            .map(|s| secs(s.max(0).unsigned_abs()))
            .unwrap_or_else(dash),
        format!("{} GB", t.total_size_gb),
        counts.skipped_overlap.to_string(),
        counts.missed.to_string(),
    ]
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration to the minute (to the second below an hour).
fn human(d: Duration) -> String {
    let rounded = if d.as_secs() >= 3600 {
        Duration::from_secs(d.as_secs() / 60 * 60)
    } else {
        d
    };
    humantime::format_duration(rounded).to_string()
}
