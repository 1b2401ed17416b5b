//! `vbs-agent run`: the daemon, until SIGTERM or SIGINT.

use std::path::Path;
use std::process::ExitCode;

use tokio::signal::unix::{signal, Signal, SignalKind};

use super::load_config;
use crate::daemon;

pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    // Listen before anything else, so that a SIGTERM during start-up is a
    // clean stop rather than the default death by signal.
    let shutdown = shutdown_signal()?;
    let (tx, requests) = tokio::sync::mpsc::channel(4);
    let hup = signal(SignalKind::hangup())?;
    tokio::spawn(forward_sighup(hup, tx));
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let reload = daemon::Reload {
        path: path.to_path_buf(),
        requests,
    };
    daemon::run_with_reload(config, shutdown, reload).await?;
    Ok(ExitCode::SUCCESS)
}

/// Turns each SIGHUP into a reload request.
async fn forward_sighup(mut hup: Signal, tx: tokio::sync::mpsc::Sender<()>) {
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading the policy file");
        if tx.send(()).await.is_err() {
            return;
        }
    }
}

/// A future that resolves on SIGTERM or SIGINT; the handlers are in place
/// when this returns.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    })
}
