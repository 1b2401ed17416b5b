//! The long-running agent: continues unfinished jobs, catches up a slot
//! missed while it was down, schedules every policy, runs each firing,
//! reloads the policy file on request and stops cleanly when the shutdown
//! future resolves. A library function so that tests run it in-process.

mod coverage_watch;
pub(crate) mod lease;
mod rpo_watch;
pub mod scheduler;
mod systemd;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use crate::api::ClientSettings;
use crate::config::{self, Config, Misfire, Policy};
use crate::engine::{Engine, EngineError, RunReport};
use crate::history_store;
use crate::lease::Lease;
use crate::metrics::{health, server, Heartbeat, Metrics};
use crate::notifier::Notifier;
use crate::store::{Store, StoreError, Trigger};
use coverage_watch::CoverageWatch;
use rpo_watch::RpoWatch;
use scheduler::Firing;

/// How long in-flight jobs may go on after shutdown was requested. Whatever
/// is still running then is stopped; its state is in the history and it is
/// continued on the next start.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Older missed slots recorded individually at start, at most.
const MAX_MISSED_RECORDED: usize = 1000;

/// How often the daemon retries recording what a failed history write
/// left out (a full disk), while anything is left out.
pub const RECOVER_EVERY: Duration = Duration::from_secs(15);

/// What runs that failed to write the history left behind, for the daemon
/// to record once the history can be written again.
#[derive(Default)]
struct Recovery {
    /// Slots whose run could not be recorded at all, with why.
    unrecorded: Vec<(String, DateTime<Utc>, String)>,
    /// A run stopped early: some of its jobs may be `running` with no driver.
    orphans: bool,
}

type SharedRecovery = Arc<std::sync::Mutex<Recovery>>;

fn lock(recovery: &SharedRecovery) -> std::sync::MutexGuard<'_, Recovery> {
    recovery
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot listen on metrics_listen {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where to reload the policy file from, and the requests to do so (SIGHUP).
pub struct Reload {
    pub path: PathBuf,
    pub requests: mpsc::Receiver<()>,
}

type Runs = JoinSet<Result<Option<RunReport>, EngineError>>;

/// Runs the agent until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    serve(config, shutdown, None, ClientSettings::default()).await
}

/// Runs the agent until `shutdown` resolves, reloading the policy file
/// whenever `reload` asks; an invalid file is rejected with its errors
/// logged, and the running policies stay.
pub async fn run_with_reload(
    config: Config,
    shutdown: impl Future<Output = ()>,
    reload: Reload,
) -> Result<(), DaemonError> {
    serve(config, shutdown, Some(reload), ClientSettings::default()).await
}

/// The daemon with explicit API client settings (tests use short retries).
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()>,
    reload: Option<Reload>,
    mut settings: ClientSettings,
) -> Result<(), DaemonError> {
    let history = history_store::open_writer(&config, "run")?;
    if let Some(lease) = &history.lease {
        settings.gate = Some(lease.held());
    }
    let store = history.store;
    // Group commit: API call events wait for the next transition's commit.
    store.defer_events(true)?;
    let notifier = Arc::new(Notifier::new(&config, Some(store.clone())));
    let (metrics, heartbeat, listener) = observe(&config, &store).await?;
    let engine = Engine::new(&config, store, settings.clone())?
        .with_listener(notifier.clone())
        .with_metrics(metrics.clone());
    let mut agent = Agent {
        config,
        engine,
        notifier,
        metrics,
        heartbeat,
        settings,
        reload,
    };
    tokio::pin!(shutdown);
    match history.lease {
        None => {
            agent.lead(&mut shutdown, None).await?;
        }
        Some(lease) => loop {
            let Some(epoch) = agent.follow(&lease, &mut shutdown).await? else {
                break;
            };
            agent.engine.store().set_epoch(epoch);
            match agent.lead(&mut shutdown, Some(&lease)).await? {
                Led::Stopped => {
                    lease::step_down(&lease).await;
                    break;
                }
                Led::Deposed => {
                    // Writes held back are the old epoch's: made now they
                    // could overwrite the next leader's.
                    let store = agent.engine.store();
                    if let Err(e) = store.flush() {
                        let dropped = store.discard_deferred();
                        tracing::warn!(error = %e, dropped, "writes held back were not made after the leader lease was lost");
                    }
                    store.set_epoch(0);
                }
            }
        },
    }
    if let Err(e) = agent.engine.store().defer_events(false) {
        tracing::warn!(error = %e, "events held back for the next commit could not be written");
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, agent.notifier.flush())
        .await
        .is_err()
    {
        tracing::warn!("notifications still in flight at shutdown were given up");
    }
    if let Some(listener) = listener {
        listener.abort();
    }
    tracing::info!("agent stopped");
    Ok(())
}

/// How a spell of leading ended.
enum Led {
    /// Shutdown was asked for.
    Stopped,
    /// The lease ran out or was taken: the agent follows again.
    Deposed,
}

/// What the daemon keeps across its spells as leader and follower.
struct Agent {
    config: Config,
    engine: Engine,
    notifier: Arc<Notifier>,
    metrics: Metrics,
    heartbeat: Arc<Heartbeat>,
    settings: ClientSettings,
    reload: Option<Reload>,
}

impl Agent {
    /// Follows until this agent takes the lease (its epoch) or shutdown is
    /// asked for (`None`); reloads the policy file meanwhile.
    async fn follow(
        &mut self,
        lease: &Arc<Lease>,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<i64>, DaemonError> {
        let mut follower = lease::Follower::new(lease, &self.metrics, &self.heartbeat);
        systemd::ready("following: another agent leads");
        let mut campaign = tokio::time::interval(lease.settings().campaign_every());
        let mut beat = tokio::time::interval(health::BEAT_EVERY);
        // A follower is alive too: without its pings systemd would kill it
        // once WatchdogSec passed, and restart it.
        let watchdog = systemd::watchdog_interval();
        let mut ping = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        loop {
            self.heartbeat.beat();
            tokio::select! {
                () = shutdown.as_mut() => return Ok(None),
                _ = campaign.tick() => {
                    if let Some(epoch) = follower.campaign().await {
                        return Ok(Some(epoch));
                    }
                }
                Some(()) = next_reload(&mut self.reload) => {
                    self.reloaded()?;
                }
                _ = ping.tick(), if watchdog.is_some() => systemd::watchdog(),
                _ = beat.tick() => {}
            }
        }
    }

    /// Loads the policy file again when asked; `true` when the new one
    /// took effect (an invalid one is logged and the running one stays).
    fn reloaded(&mut self) -> Result<bool, DaemonError> {
        let Some(path) = self.reload.as_ref().map(|r| r.path.clone()) else {
            return Ok(false);
        };
        systemd::reloading();
        let taken = match config::load(&path) {
            Ok(new) => {
                if new.metrics_listen != self.config.metrics_listen {
                    tracing::warn!("a changed metrics_listen takes effect at the next start");
                }
                if new.history != self.config.history {
                    tracing::warn!("a changed history takes effect at the next start");
                }
                self.engine = self.engine.reconfigured(&new, self.settings.clone())?;
                self.notifier.reconfigure(&new);
                self.config = new;
                tracing::info!(
                    policies = self.config.policies.len(),
                    "policy file reloaded"
                );
                true
            }
            Err(errors) => {
                let (shown, more) = errors.shown();
                for e in shown {
                    tracing::error!("{e}");
                }
                if more > 0 {
                    tracing::error!("and {more} more errors");
                }
                tracing::error!(file = %path.display(), "policy file rejected; the running policies stay");
                false
            }
        };
        systemd::ready(&format!(
            "{} policies scheduled",
            self.config.policies.len()
        ));
        Ok(taken)
    }

    /// Acts as the only agent: continues unfinished jobs, catches up, and
    /// runs every firing until shutdown, or until `lease` (when shared) is
    /// lost, when every run in flight is stopped where it stands.
    async fn lead(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        lease: Option<&Arc<Lease>>,
    ) -> Result<Led, DaemonError> {
        let mut holding = lease.map(|l| lease::Holding::start(l, &self.metrics, &self.heartbeat));
        if lease.is_none() {
            // An agent alone acts: it leads itself.
            self.metrics.set_lease(true, 0, None);
        }
        let mut rpo = RpoWatch::default();
        let mut runs: Runs = JoinSet::new();
        let recovery = SharedRecovery::default();

        let resumer = self.engine.clone();
        let resumed_config = self.config.clone();
        runs.spawn(async move {
            let n = resumer.resume(&resumed_config).await?;
            if n > 0 {
                tracing::info!(jobs = n, "unfinished jobs continued");
            }
            // Scratch volumes earlier drills could not delete, now that their
            // jobs have ended.
            let gone = resumer.sweep_scratch().await?;
            if gone > 0 {
                tracing::info!(volumes = gone, "scratch volumes of earlier drills deleted");
            }
            Ok(None)
        });
        let now = Utc::now();
        catch_up(&self.engine, &self.config, now, &mut runs, &recovery)?;
        let (tx, mut rx) = mpsc::channel::<Firing>(256);
        let mut timers = scheduler::start(&self.config.policies, now, tx.clone());

        let watchdog = systemd::watchdog_interval();
        let mut ping = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        systemd::ready(&format!(
            "{} policies scheduled",
            self.config.policies.len()
        ));
        tracing::info!(policies = self.config.policies.len(), history = %history_store::describe(&self.config, self.engine.store()), "agent started");

        let mut beat = tokio::time::interval(health::BEAT_EVERY);
        let mut flush_tick = tokio::time::interval(crate::store::EVENT_DELAY);
        let mut rpo_tick = tokio::time::interval(rpo_watch::CHECK_EVERY);
        let mut recover_tick = tokio::time::interval(RECOVER_EVERY);
        let coverage = CoverageWatch::resumed(self.engine.store());
        let mut coverage_tick = coverage_interval(&self.config, self.engine.store())?;
        let mut coverage_task: Option<JoinHandle<()>> = None;
        let led = loop {
            self.heartbeat.beat();
            // Before anything else that is ready: a branch may have been
            // held up by the history (a slot marked while the database
            // does not answer) past the lease's end.
            if lease::has_lost(&mut holding) {
                break Led::Deposed;
            }
            tokio::select! {
                () = shutdown.as_mut() => break Led::Stopped,
                () = lease::lost(&mut holding) => break Led::Deposed,
                Some(firing) = rx.recv() => {
                    let Some(policy) = self.config.policy(&firing.policy).cloned() else { continue };
                    if let Err(e) = self.engine.store().mark_slot(&policy.name, &schedule_key(&policy), firing.slot, Utc::now()) {
                        tracing::error!(policy = %policy.name, error = %e, "cannot record the slot");
                    }
                    spawn_run(&mut runs, &self.engine, policy, firing.slot, Trigger::Schedule, &recovery);
                }
                Some(done) = runs.join_next() => {
                    if let Ok(Ok(Some(report))) = &done {
                        rpo.after_run(&self.config, report, &self.metrics, &self.notifier).await;
                    }
                    log_run(done);
                }
                _ = flush_tick.tick() => {
                    if let Err(e) = self.engine.store().flush() {
                        tracing::warn!(error = %e, "cannot write the events held back; trying again with the next write");
                    }
                }
                _ = rpo_tick.tick() => rpo.check(&self.config, &self.metrics, &self.notifier).await,
                _ = recover_tick.tick() => recover(&self.engine, &self.config, &recovery, &mut runs),
                _ = tick(&mut coverage_tick) => {
                    // One snapshot at a time: a slow cloud delays the next.
                    if coverage_task.as_ref().is_none_or(JoinHandle::is_finished) {
                        let (watch, config, engine) = (coverage.clone(), self.config.clone(), self.engine.clone());
                        let (metrics, notifier) = (self.metrics.clone(), Arc::clone(&self.notifier));
                        coverage_task = Some(tokio::spawn(async move {
                            watch.take(&config, &engine, &metrics, &notifier).await;
                        }));
                    }
                }
                Some(()) = next_reload(&mut self.reload) => {
                    let before = self.config.coverage_every;
                    if self.reloaded()? {
                        let now = Utc::now();
                        timers.abort_all();
                        if self.config.coverage_every != before {
                            coverage_tick = coverage_interval(&self.config, self.engine.store())?;
                        }
                        catch_up(&self.engine, &self.config, now, &mut runs, &recovery)?;
                        timers = scheduler::start(&self.config.policies, now, tx.clone());
                    }
                }
                _ = ping.tick(), if watchdog.is_some() => systemd::watchdog(),
                _ = beat.tick() => {}
            }
        };
        timers.abort_all();
        if let Some(task) = coverage_task {
            task.abort();
        }
        match led {
            Led::Stopped => {
                systemd::stopping();
                tracing::info!(in_flight = runs.len(), "shutting down");
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
            }
            Led::Deposed => {
                // Past the lease's deadline nothing may change the cloud:
                // the runs stop where they stand, as in a crash, and the
                // next leader continues their jobs from the history.
                tracing::error!(
                    stopped = runs.len(),
                    "lost the leader lease: runs in flight stopped; the next leader continues their jobs"
                );
                runs.abort_all();
                while runs.join_next().await.is_some() {}
            }
        }
        if let Some(holding) = holding.take() {
            holding.stop();
        }
        Ok(led)
    }
}

/// The metrics (last successes and verified restores filled in from the
/// history), the scheduler heartbeat, and their listener when
/// `metrics_listen` is set.
async fn observe(
    config: &Config,
    store: &Store,
) -> Result<(Metrics, Arc<Heartbeat>, Option<JoinHandle<()>>), DaemonError> {
    let metrics = Metrics::new();
    for last in store.last_successes()? {
        metrics.set_last_success(&last.policy, &last.target, last.finished_at.timestamp());
    }
    for last in store.last_verified_restores()? {
        metrics.set_last_verified(&last.policy, &last.target, last.finished_at.timestamp());
    }
    let heartbeat = Arc::new(Heartbeat::new());
    let Some(addr) = config.metrics_listen else {
        return Ok((metrics, heartbeat, None));
    };
    let routes = server::router(metrics.clone(), Arc::clone(&heartbeat));
    let listener = server::start(addr, routes)
        .await
        .map_err(|source| DaemonError::Metrics { addr, source })?;
    Ok((metrics, heartbeat, Some(listener)))
}

/// When coverage snapshots are due: one interval after the newest one
/// recorded (at once when that is long past or there is none), then every
/// interval; `None` when `coverage_every` is 0.
fn coverage_interval(
    config: &Config,
    store: &Store,
) -> Result<Option<tokio::time::Interval>, DaemonError> {
    let Some(every) = config.coverage_every else {
        return Ok(None);
    };
    let since_last = store
        .last_coverage_at()?
        .and_then(|at| (Utc::now() - at).to_std().ok());
    let wait = since_last.map_or(Duration::ZERO, |since| every.saturating_sub(since));
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + wait, every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Ok(Some(interval))
}

/// The next tick of `interval`, or never.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn next_reload(reload: &mut Option<Reload>) -> Option<()> {
    match reload {
        Some(r) => r.requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs `policy` for `slot` in a task. A run that fails (the history cannot
/// be written) is noted in `recovery`: its slot, if it was not recorded, and
/// that its jobs may need a driver.
fn spawn_run(
    runs: &mut Runs,
    engine: &Engine,
    policy: Policy,
    slot: DateTime<Utc>,
    trigger: Trigger,
    recovery: &SharedRecovery,
) {
    let engine = engine.clone();
    let recovery = Arc::clone(recovery);
    runs.spawn(async move {
        let result = engine.run_policy(&policy, slot, trigger).await;
        if let Err(e) = &result {
            let recorded = matches!(engine.store().run_for(&policy.name, slot), Ok(Some(_)));
            let mut pending = lock(&recovery);
            pending.orphans = true;
            if !recorded {
                let why = format!("the history could not be written when the slot fell: {e}");
                pending.unrecorded.push((policy.name.clone(), slot, why));
            }
        }
        result.map(Some)
    });
}

/// Once the history can be written again: records the slots failed runs
/// left out as `missed` with the reason, and continues the jobs they left
/// without a driver. Does nothing while nothing is left out.
fn recover(engine: &Engine, config: &Config, recovery: &SharedRecovery, runs: &mut Runs) {
    let mut pending = lock(recovery);
    while let Some((name, slot, why)) = pending.unrecorded.first().cloned() {
        if let Some(policy) = config.policy(&name) {
            if let Err(e) = engine.record_missed(policy, slot, Some(&why)) {
                tracing::warn!(policy = %name, %slot, error = %e, "cannot record a missed slot yet; trying again");
                return;
            }
        }
        pending.unrecorded.remove(0);
    }
    if !std::mem::take(&mut pending.orphans) {
        return;
    }
    drop(pending);
    let engine = engine.clone();
    let config = config.clone();
    let recovery = Arc::clone(recovery);
    runs.spawn(async move {
        match engine.recover(&config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                jobs = n,
                "continued jobs a failed history write had stopped"
            ),
            Err(e) => {
                lock(&recovery).orphans = true;
                return Err(e);
            }
        }
        Ok(None)
    });
}

/// What identifies a policy's schedule in its mark: a changed expression
/// or zone starts afresh instead of catching up under the new rules.
fn schedule_key(policy: &Policy) -> String {
    format!("{} {}", policy.schedule.as_str(), policy.timezone)
}

/// Handles the slots each policy missed since its last mark: the most
/// recent one runs now (`misfire: run_once`) or is recorded as missed
/// (`skip`); older ones are recorded as missed. A policy never fired
/// before, or whose schedule changed, starts from `now` with nothing to
/// catch up.
fn catch_up(
    engine: &Engine,
    config: &Config,
    now: DateTime<Utc>,
    runs: &mut Runs,
    recovery: &SharedRecovery,
) -> Result<(), DaemonError> {
    let store = engine.store();
    for policy in &config.policies {
        let key = schedule_key(policy);
        let last = match store.last_mark(&policy.name)? {
            Some((last, k)) if k == key => last,
            _ => {
                store.mark_slot(&policy.name, &key, now, now)?;
                continue;
            }
        };
        let missed = missed_slots(policy, last, now);
        let Some((&latest, older)) = missed.split_last() else {
            continue;
        };
        for &slot in older.iter().rev().take(MAX_MISSED_RECORDED) {
            engine.record_missed(policy, slot, None)?;
        }
        if older.len() > MAX_MISSED_RECORDED {
            tracing::warn!(policy = %policy.name, missed = older.len(), recorded = MAX_MISSED_RECORDED, "many slots missed; only the most recent are recorded");
        }
        match policy.misfire {
            Misfire::RunOnce => {
                tracing::info!(policy = %policy.name, slot = %latest, missed = missed.len(), "catching up the most recent missed slot");
                spawn_run(
                    runs,
                    engine,
                    policy.clone(),
                    latest,
                    Trigger::CatchUp,
                    recovery,
                );
            }
            Misfire::Skip => engine.record_missed(policy, latest, None)?,
        }
        store.mark_slot(&policy.name, &key, latest, now)?;
    }
    Ok(())
}

/// Slots in `(last, now]`.
fn missed_slots(policy: &Policy, last: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut cursor = last;
    while let Some(slot) = policy.schedule.next_after(cursor, policy.timezone) {
        if slot > now {
            break;
        }
        out.push(slot);
        cursor = slot;
        if out.len() > 100_000 {
            // Bounded even for a per-second schedule down for days.
            out.drain(..50_000);
        }
    }
    out
}

fn log_run(done: Result<Result<Option<RunReport>, EngineError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(Some(report))) => {
            let failed = report
                .jobs
                .iter()
                .filter(|j| j.status != crate::store::JobStatus::Succeeded)
                .count();
            tracing::info!(policy = %report.policy, slot = %report.slot, jobs = report.jobs.len(), failed, "run complete");
        }
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "run aborted"),
        Err(e) if e.is_cancelled() => {}
        Err(e) => tracing::error!(error = %e, "run task panicked"),
    }
}
