//! `vbs-agent report`: per policy and target, the newest good backup, its
//! age against the RPO, and the window's statistics ([`crate::audit`]).
//! Exit 3 when a target is out of its RPO, so the report can drive an alert.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{escape, load_config, table, EXIT_INVALID};
use crate::audit::{compliance_report, parse_time_bound, ComplianceReport, TargetCompliance};

/// Exit code when at least one target is out of its RPO.
pub const EXIT_RPO_BREACH: u8 = 3;

const HEADER: &[&str] = &[
    "policy",
    "target",
    "last success",
    "service",
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
    let Some(store) = crate::history_store::open_existing_reader(&config)? else {
        anyhow::bail!(
            "no history at {} (has the agent run yet?)",
            config.history_path().display()
        );
    };
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

/// The table of drilled volumes (drill policies, kind `restore`).
const RESTORES_HEADER: &[&str] = &[
    "policy",
    "target",
    "last verified",
    "age",
    "restore rpo",
    "state",
    "verified",
    "median restore",
    "worst restore",
];

/// The report as text: one line per target (backups, then drilled volumes
/// in a table of their own), then the failure reasons.
fn render(report: &ComplianceReport) -> String {
    let mut out = format!(
        "compliance from {} to {}\n\n",
        time(report.since),
        time(report.at)
    );
    let (drilled, backed_up): (Vec<&TargetCompliance>, Vec<&TargetCompliance>) =
        report.targets.iter().partition(|t| t.restores.is_some());
    if !backed_up.is_empty() || drilled.is_empty() {
        let rows: Vec<Vec<String>> = backed_up.iter().map(|t| row(t)).collect();
        out.push_str(&table::render(HEADER, &rows));
    }
    if !drilled.is_empty() {
        if !backed_up.is_empty() {
            out.push('\n');
        }
        out.push_str("restores (drills: a verified restore within the restore RPO)\n\n");
        let rows: Vec<Vec<String>> = drilled.iter().map(|t| restore_row(t)).collect();
        out.push_str(&table::render(RESTORES_HEADER, &rows));
    }
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
    out.push('\n');
    if !backed_up.is_empty() || drilled.is_empty() {
        let breaches = backed_up.iter().filter(|t| t.rpo_breached).count();
        out.push_str(&format!(
            "{breaches} of {} target(s) out of RPO\n",
            backed_up.len()
        ));
    }
    if !drilled.is_empty() {
        out.push_str(&format!(
            "{} of {} drilled volume(s) out of restore RPO\n",
            report.restore_breaches().count(),
            drilled.len()
        ));
    }
    out
}

/// How a target stands against its RPO; `breach` and `no_success` say it
/// in the words of its table.
fn state(t: &TargetCompliance, breach: &'static str, no_success: &'static str) -> &'static str {
    if t.rpo_breached {
        breach
    } else if let Some(vanished) = t.vanished {
        vanished.as_str()
    } else if !t.in_config {
        "not configured"
    } else if t.rpo_seconds.is_none() {
        "no rpo"
    } else if t.last_success_at.is_none() && t.first_slot.is_none() {
        "not yet due"
    } else if t.last_success_at.is_none() {
        no_success
    } else {
        "ok"
    }
}

fn dash() -> String {
    "-".to_string()
}

fn secs(s: u64) -> String {
    human(Duration::from_secs(s))
}

/// `succeeded/finished (rate%)`.
fn rate(t: &TargetCompliance) -> String {
    let counts = &t.counts;
    t.success_rate
        .map(|r| {
            let finished = counts.finished();
            format!("{}/{finished} ({:.0}%)", counts.succeeded, r * 100.0)
        })
        .unwrap_or_else(dash)
}

/// The columns both tables start with: policy, target, the newest good
/// job, its age and the RPO.
fn leading(t: &TargetCompliance) -> Vec<String> {
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
    ]
}

fn restore_row(t: &TargetCompliance) -> Vec<String> {
    let restore_time = |s: Option<f64>| s.map(|s| secs(s.round() as u64)).unwrap_or_else(dash);
    let mut row = leading(t);
    row.extend([
        state(t, "OUT OF RESTORE RPO", "ok (none verified yet)").into(),
        rate(t),
        restore_time(t.restores.as_ref().and_then(|r| r.median_restore_seconds)),
        restore_time(t.restores.as_ref().and_then(|r| r.worst_restore_seconds)),
    ]);
    row
}

/// The service of the newest good backup; when the window's successes
/// came from more than one service (a move from VBS to CBR), each one's
/// count follows: `cbr (cbr 4, vbs 3)`.
fn service(t: &TargetCompliance) -> String {
    let counts = || {
        t.succeeded_by_service
            .iter()
            .map(|(service, n)| format!("{service} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mixed = t.succeeded_by_service.len() > 1
        || t.last_success_service
            .as_ref()
            .is_some_and(|last| t.succeeded_by_service.keys().any(|service| service != last));
    match (&t.last_success_service, mixed) {
        (Some(last), false) => last.clone(),
        (Some(last), true) => format!("{last} ({})", counts()),
        (None, _) if t.succeeded_by_service.is_empty() => dash(),
        (None, _) => counts(),
    }
}

fn row(t: &TargetCompliance) -> Vec<String> {
    let counts = &t.counts;
    let mut row = leading(t);
    row.insert(3, service(t));
    row.extend([
        state(t, "OUT OF RPO", "ok (no success yet)").into(),
        rate(t),
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
    ]);
    row
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
