//! `vbs-agent run`: the daemon, until SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;

use super::load_config;
use crate::daemon;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (tx, requests) = tokio::sync::mpsc::channel(4);
    tokio::spawn(forward_sighup(tx));
    let reload = daemon::Reload {
        path: path.to_path_buf(),
        requests,
    };
    daemon::run_with_reload(config, shutdown_signal(), reload).await?;
    Ok(ExitCode::SUCCESS)
}

/// Turns each SIGHUP into a reload request.
async fn forward_sighup(tx: tokio::sync::mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reload by restarting");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the policy file");
        if tx.send(()).await.is_err() {
            return;
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
