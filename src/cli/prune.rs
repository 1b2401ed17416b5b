//! `vbs-agent prune`: apply retention now, or show what it would do.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::SecondsFormat;

use super::{load_config, table, EXIT_INVALID};
use crate::engine::{Engine, PruneReport};
use crate::history_store;

/// A policy's targets are volumes or servers, and what it made backups or
/// snapshots: the table names them as `history` does.
const HEADER: &[&str] = &[
    "policy",
    "target",
    "backup/snapshot",
    "created",
    "decision",
    "reason",
];

pub async fn run(path: &Path, policy: Option<&str>, dry_run: bool) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let policies: Vec<_> = match policy {
        Some(name) => match config.policy(name) {
            Some(p) => vec![p.clone()],
            None => {
                errln!("error: no policy `{name}` in {}", path.display());
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        },
        None => config.policies.clone(),
    };
    let history = history_store::open_for_command(&config, "prune").await?;
    let engine = Engine::new(
        &config,
        Arc::clone(&history.store),
        history.settings.clone(),
    )?;
    let mut rows = Vec::new();
    let mut failed = false;
    for policy in &policies {
        if policy.retention.is_none() {
            outln!(
                "policy {}: no retention rules; it never deletes anything",
                policy.name
            );
            continue;
        }
        for report in engine.prune_policy(policy, dry_run).await? {
            failed |= report.has_failures();
            rows.extend(report_rows(&report, dry_run));
        }
    }
    if !rows.is_empty() {
        out!("{}", table::render(HEADER, &rows));
    }
    if dry_run {
        outln!("dry run: nothing was deleted");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn report_rows(report: &PruneReport, dry_run: bool) -> Vec<Vec<String>> {
    report
        .lines
        .iter()
        .map(|line| {
            let d = &line.decision;
            let decision = match (&line.outcome, dry_run) {
                (Some(outcome), _) => outcome.action().to_string(),
                (None, true) if d.verdict == crate::engine::retention::Verdict::Delete => {
                    "would delete".to_string()
                }
                (None, _) => d.verdict.as_str().to_string(),
            };
            vec![
                report.policy.clone(),
                report.target.clone(),
                d.name.clone().unwrap_or_else(|| d.id.clone()),
                d.created_at
                    .map_or("-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
                decision,
                d.reason.clone(),
            ]
        })
        .collect()
}
