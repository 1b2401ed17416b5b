//! The long-running agent: schedules every policy, runs each firing, and
//! stops cleanly when the shutdown future resolves. A library function so
//! that tests run it in-process.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::api::ClientSettings;
use crate::config::Config;
use crate::engine::{Engine, EngineError, RunReport};
use crate::scheduler::{self, Firing};
use crate::store::{Store, StoreError, Trigger};

/// How long in-flight jobs may go on after shutdown was requested. Whatever
/// is still running then is stopped; its state is in the history and it is
/// continued on the next start.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let store = Arc::new(Store::open(&config.history_path())?);
    let engine = Engine::new(&config, store, ClientSettings::default())?;
    let (tx, mut rx) = mpsc::channel::<Firing>(64);
    let mut timers = scheduler::start(&config.policies, tx);
    let mut runs: JoinSet<Result<RunReport, EngineError>> = JoinSet::new();
    tracing::info!(policies = config.policies.len(), history = %config.history_path().display(), "agent started");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(firing) = rx.recv() => {
                let Some(policy) = config.policy(&firing.policy).cloned() else { continue };
                let engine = engine.clone();
                if let Err(e) = engine.store().mark_slot(&policy.name, firing.slot, chrono::Utc::now()) {
                    tracing::error!(policy = %policy.name, error = %e, "cannot record the slot");
                }
                runs.spawn(async move { engine.run_policy(&policy, firing.slot, Trigger::Schedule).await });
            }
            Some(done) = runs.join_next() => log_run(done),
        }
    }

    tracing::info!(in_flight = runs.len(), "shutting down");
    timers.abort_all();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while let Some(done) = runs.join_next().await {
            log_run(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            stopped = runs.len(),
            "runs still in flight after the grace period; they continue on the next start"
        );
        runs.abort_all();
    }
    tracing::info!("agent stopped");
    Ok(())
}

fn log_run(done: Result<Result<RunReport, EngineError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(report)) => {
            let failed = report
                .jobs
                .iter()
                .filter(|j| j.status != crate::store::JobStatus::Succeeded)
                .count();
            tracing::info!(policy = %report.policy, slot = %report.slot, jobs = report.jobs.len(), failed, "run complete");
        }
        Ok(Err(e)) => tracing::error!(error = %e, "run aborted"),
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "run task panicked"),
    }
}
