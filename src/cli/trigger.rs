//! `vbs-agent trigger`: run one policy now and wait for it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{SubsecRound, Utc};

use super::history::job_rows;
use super::progress::LiveView;
use super::{load_config, table, EXIT_INVALID};
use crate::engine::Engine;
use crate::history_store;
use crate::notifier::Notifier;
use crate::store::Trigger;

/// Whether progress is shown as live status lines (stdout is a terminal);
/// log lines would break them, so `trigger` then logs errors only.
pub fn live() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

pub async fn run(path: &Path, policy_name: &str) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let Some(policy) = config.policy(policy_name).cloned() else {
        let known: Vec<&str> = config.policies.iter().map(|p| p.name.as_str()).collect();
        errln!(
            "error: no policy `{policy_name}` in {} (policies: {})",
            path.display(),
            known.join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    };
    let history = history_store::open_for_command(&config, "trigger").await?;
    let store = Arc::clone(&history.store);
    let notifier = Arc::new(Notifier::new(&config, Some(Arc::clone(&store))));
    let view = Arc::new(LiveView::new(live()));
    let engine = Engine::new(&config, store, history.settings.clone())?
        .with_listener(view)
        .with_listener(notifier.clone());
    let slot = Utc::now().trunc_subsecs(0);
    let report = engine
        .run_policy(&policy, slot, Trigger::Manual)
        .await
        .with_context(|| format!("running policy {policy_name}"));
    // Sent whatever happened; each delivery ends within its timeout.
    notifier.flush().await;
    history.finish().await;
    let report = report?;
    out!(
        "{}",
        table::render(super::history::HEADER, &job_rows(&report.jobs))
    );
    let ok = report.jobs.iter().filter(|j| j.status.is_good()).count();
    outln!("{ok} of {} job(s) succeeded", report.jobs.len());
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
