//! Runs policies: one run per firing, one job per target, each job driven
//! through its persisted phases (see [`job`]). Also continues the jobs a
//! previous process left unfinished, and records slots that will not run
//! (overlaps, missed slots). Knows nothing of cron or the command line.

mod create;
mod job;
pub mod machine;
mod observer;
pub mod poll;
mod prune;
mod prune_server;
mod restore;
pub mod retention;
mod scope;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::api::{ApiError, ClientSettings, CloudClient};
use crate::config::{Config, Policy};
use crate::kind::PolicyKind;
use crate::metrics::Metrics;
use crate::naming::resource_name;
use crate::store::{
    Event, EventKind, JobRecord, JobStatus, JobUpdate, NewRunJob, Phase, RestoreColumns, Store,
    StoreError, Trigger,
};
use job::{JobRunner, RunCheckpoints};
pub use observer::{JobEvent, JobListener};
use observer::{JobObserver, Listeners};
pub use prune::{PruneLine, PruneOutcome, PruneReport};
pub use restore::RestoreRequest;
pub use scope::{labels_are, Query as ScopeQuery};

/// Errors that stop a run (job failures are outcomes, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cloud `{0}` is not configured")]
    UnknownCloud(String),
    #[error("cannot set up the client for cloud `{cloud}`: {source}")]
    Client { cloud: String, source: ApiError },
    #[error("a job task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// The outcome of one policy firing.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: i64,
    pub policy: String,
    pub slot: DateTime<Utc>,
    /// False when this (policy, slot) had already run: nothing was started.
    pub started: bool,
    pub jobs: Vec<JobRecord>,
}

impl RunReport {
    /// Whether every job succeeded (a drill's: was verified).
    pub fn succeeded(&self) -> bool {
        self.jobs.iter().all(|j| j.status.is_good())
    }
}

/// Runs jobs against the configured clouds, recording everything in the store.
#[derive(Clone)]
pub struct Engine {
    store: Arc<Store>,
    clients: Arc<BTreeMap<String, CloudClient>>,
    /// `max_concurrent_jobs`; tokio's semaphore is fair, so waiting jobs
    /// start in the order they asked.
    slots: Arc<Semaphore>,
    limit: usize,
    /// "Now" for retention decisions; the wall clock except in tests that
    /// play out days of slots.
    clock: Clock,
    /// Told what every job does (live views, notifications).
    listeners: Listeners,
    /// Where job outcomes and API calls are counted.
    metrics: Metrics,
    /// Jobs a task of this process drives now, shared with reconfigured
    /// engines, so that recovery never gives a job a second driver.
    driving: Arc<Mutex<HashSet<i64>>>,
    /// The policy file's `opt_out` labels.
    opt_out: Arc<BTreeMap<String, String>>,
    /// The cloud's answers to selector queries, shared by the policies
    /// that fire in the same minute.
    scopes: scope::ScopeCache,
    /// The CBR checkpoint of each run in flight, made once for its jobs.
    cbr_runs: Arc<RunCheckpoints>,
}

/// Jobs started less than this ago are left to the run that created them:
/// its tasks may not have registered them in `driving` yet.
const ORPHAN_AGE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// A job's entry in [`Engine::driving`], removed when its task ends, is
/// aborted or unwinds.
struct Driving {
    set: Arc<Mutex<HashSet<i64>>>,
    job: i64,
}

impl Driving {
    fn enter(set: &Arc<Mutex<HashSet<i64>>>, job: i64) -> Self {
        lock_set(set).insert(job);
        Self {
            set: Arc::clone(set),
            job,
        }
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        lock_set(&self.set).remove(&self.job);
    }
}

fn lock_set(set: &Mutex<HashSet<i64>>) -> std::sync::MutexGuard<'_, HashSet<i64>> {
    // The set is consistent after any panic: inserts and removes are single calls.
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

impl Engine {
    /// One API client per configured cloud.
    pub fn new(
        config: &Config,
        store: Arc<Store>,
        settings: ClientSettings,
    ) -> Result<Self, EngineError> {
        let mut clients = BTreeMap::new();
        for (name, cloud) in &config.clouds {
            let client = CloudClient::new(cloud, settings.clone()).map_err(|source| {
                EngineError::Client {
                    cloud: name.clone(),
                    source,
                }
            })?;
            clients.insert(name.clone(), client);
        }
        Ok(Self {
            store,
            clients: Arc::new(clients),
            slots: Arc::new(Semaphore::new(config.max_concurrent_jobs)),
            limit: config.max_concurrent_jobs,
            clock: Arc::new(Utc::now),
            listeners: Listeners::default(),
            metrics: Metrics::new(),
            driving: Arc::default(),
            opt_out: Arc::new(config.opt_out.clone()),
            scopes: scope::ScopeCache::default(),
            cbr_runs: Arc::default(),
        })
    }

    /// The engine for a reloaded policy file: new clients, the same
    /// history and, while the limit is unchanged, the same job slots.
    pub fn reconfigured(
        &self,
        config: &Config,
        settings: ClientSettings,
    ) -> Result<Self, EngineError> {
        let mut next = Self::new(config, Arc::clone(&self.store), settings)?;
        if next.limit == self.limit {
            next.slots = Arc::clone(&self.slots);
        }
        next.clock = Arc::clone(&self.clock);
        next.listeners = self.listeners.clone();
        next.metrics = self.metrics.clone();
        next.driving = Arc::clone(&self.driving);
        next.scopes = self.scopes.clone();
        next.cbr_runs = Arc::clone(&self.cbr_runs);
        Ok(next)
    }

    /// The same engine, also telling `listener` what every job does.
    pub fn with_listener(mut self, listener: Arc<dyn JobListener>) -> Self {
        self.listeners.0.push(listener);
        self
    }

    /// The same engine deciding retention by `clock` instead of the wall clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same engine counting into `metrics` (the daemon's served set).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The history this engine writes.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The client of `cloud`, its calls recorded as events outside any
    /// job and counted in the metrics.
    pub fn observed_client(&self, cloud: &str) -> Result<CloudClient, EngineError> {
        let client = self
            .clients
            .get(cloud)
            .ok_or_else(|| EngineError::UnknownCloud(cloud.to_string()))?;
        Ok(client.with_observer(Arc::new(JobObserver {
            store: Arc::clone(&self.store),
            run_id: None,
            job_id: None,
            metrics: self.metrics.clone(),
        })))
    }

    /// Runs `policy` for `slot`: records the run with all its jobs, drives
    /// them concurrently (within `max_concurrent_jobs`) and waits for them.
    /// A target whose previous job is still running is recorded as
    /// `skipped_overlap`. A (policy, slot) already in the history is not
    /// run again.
    pub async fn run_policy(
        &self,
        policy: &Policy,
        slot: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<RunReport, EngineError> {
        if policy.kind() == PolicyKind::Restore {
            // Scratch volumes earlier drills could not delete go first.
            self.sweep_scratch().await?;
        }
        let scope = self.scope(policy, slot, &self.opt_out).await?;
        let service = self.service_of(policy).await;
        let now = Utc::now();
        let targets = self.run_targets(policy, &scope.run.targets)?;
        let names: Vec<String> = targets
            .iter()
            .chain(scope.departed.iter().map(|d| &d.target))
            .map(|v| resource_name(&policy.name, slot, v))
            .collect();
        let restore = self.new_restore(policy, "schedule", service);
        let restores = policy.kind() == PolicyKind::Restore;
        let mut specs = Vec::with_capacity(names.len());
        for (target, name) in targets.iter().zip(&names) {
            let blocked_by = self
                .store
                .running_job_for(&policy.cloud, target, restores)?;
            specs.push(NewRunJob {
                target,
                kind: policy.kind().as_str(),
                cloud: &policy.cloud,
                resource_name: name,
                status: if blocked_by.is_some() {
                    JobStatus::SkippedOverlap
                } else {
                    JobStatus::Running
                },
                blocked_by,
                note: None,
                restore: restore.clone(),
                service,
            });
        }
        for (departed, name) in scope.departed.iter().zip(&names[targets.len()..]) {
            specs.push(NewRunJob {
                target: &departed.target,
                kind: policy.kind().as_str(),
                cloud: &policy.cloud,
                resource_name: name,
                status: if departed.gone {
                    JobStatus::TargetGone
                } else {
                    JobStatus::LeftScope
                },
                blocked_by: None,
                note: Some(&departed.note),
                restore: None,
                service,
            });
        }
        let Some(run_id) =
            self.store
                .create_run(&policy.name, slot, trigger, &specs, Some(&scope.run), now)?
        else {
            tracing::info!(policy = %policy.name, %slot, "slot already recorded; not running it again");
            let run_id = self.store.run_for(&policy.name, slot)?.unwrap_or_default();
            let jobs = self.store.jobs_of_run(run_id)?;
            return Ok(RunReport {
                run_id,
                policy: policy.name.clone(),
                slot,
                started: false,
                jobs,
            });
        };
        tracing::info!(policy = %policy.name, %slot, trigger = trigger.as_str(), run_id, targets = targets.len(), resolution = scope.run.resolution.as_str(), "run started");
        if let Some(warning) = &scope.warning {
            tracing::warn!(policy = %policy.name, %slot, run_id, "{warning}");
            let event = Event {
                run_id: Some(run_id),
                message: Some(warning),
                ..Default::default()
            };
            self.store
                .record_event(EventKind::Warning, &event, Utc::now())?;
        }
        let records = self.store.jobs_of_run(run_id)?;
        for job in records
            .iter()
            .filter(|j| matches!(j.status, JobStatus::LeftScope | JobStatus::TargetGone))
        {
            let message = job.fail_reason.clone().unwrap_or_default();
            tracing::warn!(policy = %policy.name, target = %job.target, job_id = job.id, status = job.status.as_str(), "{message}");
            self.event(EventKind::Warning, job, &message)?;
            self.metrics.job_ended(job);
        }
        for job in records
            .iter()
            .filter(|j| j.status == JobStatus::SkippedOverlap)
        {
            let message = format!(
                "skipped: job {} of this {} is still running",
                job.blocked_by.unwrap_or_default(),
                job.kind.target_noun()
            );
            tracing::warn!(policy = %policy.name, target = %job.target, job_id = job.id, "{message}");
            self.event(EventKind::Warning, job, &message)?;
            self.metrics.job_ended(job);
        }
        let to_run = records
            .into_iter()
            .filter(|j| j.status == JobStatus::Running)
            .collect();
        let done = self.drive_all(policy, to_run, false).await?;
        self.store.settle_run(run_id, Utc::now())?;
        self.prune_after(policy, &done).await;
        self.prune_vanished(policy).await;
        let jobs = self.store.jobs_of_run(run_id)?;
        tracing::info!(policy = %policy.name, %slot, run_id, status = ?self.store.run_status(run_id)?, "run finished");
        Ok(RunReport {
            run_id,
            policy: policy.name.clone(),
            slot,
            started: true,
            jobs,
        })
    }

    /// Records `slot` of `policy` as missed, one `missed` job per target, so
    /// the gap is visible in the history. `why` becomes each job's
    /// `fail_reason`; `None` means the agent was down (`v_failures` says so).
    pub fn record_missed(
        &self,
        policy: &Policy,
        slot: DateTime<Utc>,
        why: Option<&str>,
    ) -> Result<(), EngineError> {
        // A selector's targets as last resolved: the cloud is not asked
        // for a slot that will not run.
        let targets: Vec<String> = match self.store.current_scope(&policy.name)? {
            Some(scope) => scope.into_iter().map(|t| t.id).collect(),
            None => policy.targets().to_vec(),
        };
        let names: Vec<String> = targets
            .iter()
            .map(|v| resource_name(&policy.name, slot, v))
            .collect();
        let specs: Vec<NewRunJob<'_>> = targets
            .iter()
            .zip(&names)
            .map(|(target, name)| NewRunJob {
                target,
                kind: policy.kind().as_str(),
                cloud: &policy.cloud,
                resource_name: name,
                status: JobStatus::Missed,
                blocked_by: None,
                note: None,
                restore: self.new_restore(policy, "schedule", None),
                service: None,
            })
            .collect();
        let now = Utc::now();
        if let Some(run_id) =
            self.store
                .create_run(&policy.name, slot, Trigger::Schedule, &specs, None, now)?
        {
            let why_text = why.unwrap_or("the agent was down");
            tracing::warn!(policy = %policy.name, %slot, "slot missed: {why_text}");
            for job in self.store.jobs_of_run(run_id)? {
                if why.is_some() {
                    let reason = JobUpdate {
                        fail_reason: why,
                        ..Default::default()
                    };
                    self.store.update_job(job.id, &reason, now)?;
                }
                self.metrics.job_ended(&job);
            }
        }
        Ok(())
    }

    /// Continues every job a previous process left unfinished, from its
    /// last recorded phase, and settles their runs.
    pub async fn resume(&self, config: &Config) -> Result<usize, EngineError> {
        self.continue_jobs(config, |_| true).await
    }

    /// Continues the unfinished jobs no task of this process drives: those
    /// whose run stopped when the history could not be written (a full
    /// disk), once it can be again. Jobs younger than [`ORPHAN_AGE`] are left
    /// to the run that is starting them.
    pub async fn recover(&self, config: &Config) -> Result<usize, EngineError> {
        let settled = Utc::now() - ORPHAN_AGE;
        self.continue_jobs(config, |job| job.started_at < settled)
            .await
    }

    async fn continue_jobs(
        &self,
        config: &Config,
        pick: impl Fn(&JobRecord) -> bool,
    ) -> Result<usize, EngineError> {
        let unfinished = self.store.unfinished_jobs()?;
        let unfinished: Vec<JobRecord> = {
            let driving = lock_set(&self.driving);
            unfinished
                .into_iter()
                .filter(|j| !driving.contains(&j.id) && pick(j))
                .collect()
        };
        let count = unfinished.len();
        let mut by_policy: BTreeMap<String, Vec<JobRecord>> = BTreeMap::new();
        for job in unfinished {
            by_policy.entry(job.policy.clone()).or_default().push(job);
        }
        let mut set = JoinSet::new();
        for (name, jobs) in by_policy {
            if name == crate::config::MANUAL_RESTORE_POLICY {
                let engine = self.clone();
                set.spawn(async move { engine.continue_manual_restores(jobs).await });
                continue;
            }
            let Some(policy) = config.policy(&name).cloned() else {
                self.abandon(&name, jobs)?;
                continue;
            };
            tracing::info!(policy = %name, jobs = jobs.len(), "continuing jobs left unfinished");
            let engine = self.clone();
            set.spawn(async move {
                let runs: Vec<i64> = jobs.iter().map(|j| j.run_id).collect();
                engine.drive_all(&policy, jobs, true).await?;
                for run in runs {
                    engine.store.settle_run(run, Utc::now())?;
                }
                Ok::<(), EngineError>(())
            });
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| EngineError::Task(e.to_string()))??;
        }
        Ok(count)
    }

    /// Ends jobs whose policy is gone from the policy file: without its
    /// settings they cannot be continued safely.
    fn abandon(&self, policy: &str, jobs: Vec<JobRecord>) -> Result<(), EngineError> {
        for job in jobs {
            let (snapshot, backup) = (
                job.snapshot_id.as_deref().unwrap_or("-"),
                job.backup_id.as_deref().unwrap_or("-"),
            );
            let leftovers = match job.kind {
                PolicyKind::Server => format!("server backup {backup}"),
                PolicyKind::Backup | PolicyKind::Snapshot => {
                    format!("snapshot {snapshot} and backup {backup}")
                }
                PolicyKind::Restore => format!("volume {}", job.resource_name),
            };
            let reason = format!(
                "policy {policy} was removed from the policy file while this job was running (phase {}); \
                 check {leftovers} by hand",
                job.phase.as_str(),
            );
            let now = Utc::now();
            let status = if job.status == JobStatus::Running {
                JobStatus::Failed
            } else {
                job.status
            };
            let update = JobUpdate {
                phase: Some(Phase::Done),
                status: Some(status),
                fail_reason: Some(&reason),
                finished_at: Some(now),
                ..Default::default()
            };
            self.store.update_job(job.id, &update, now)?;
            self.event(EventKind::Warning, &job, &reason)?;
            self.store.settle_run(job.run_id, now)?;
        }
        Ok(())
    }

    async fn drive_all(
        &self,
        policy: &Policy,
        jobs: Vec<JobRecord>,
        resumed: bool,
    ) -> Result<Vec<JobRecord>, EngineError> {
        let client = self
            .clients
            .get(&policy.cloud)
            .ok_or_else(|| EngineError::UnknownCloud(policy.cloud.clone()))?;
        let mut set = JoinSet::new();
        let shared = Arc::new(policy.clone());
        // A drill's own limit, on top of `max_concurrent_jobs`.
        let own_limit = match &policy.work {
            crate::config::Work::Restore(w) => Some(Arc::new(Semaphore::new(w.max_concurrent))),
            _ => None,
        };
        for (index, job) in jobs.into_iter().enumerate() {
            let driving = Driving::enter(&self.driving, job.id);
            let observer = Arc::new(JobObserver {
                store: Arc::clone(&self.store),
                run_id: Some(job.run_id),
                job_id: Some(job.id),
                metrics: self.metrics.clone(),
            });
            let jitter = if resumed || job.phase != Phase::Pending {
                Duration::ZERO
            } else {
                random_below(policy.jitter)
            };
            // Every log line of the job carries these fields.
            let span = tracing::info_span!("job", policy = %job.policy, target = %job.target, job_id = job.id);
            let runner = JobRunner::new(
                Arc::clone(&self.store),
                client.with_observer(observer),
                Arc::clone(&shared),
                job,
                resumed,
                self.listeners.clone(),
                Arc::clone(&self.cbr_runs),
            );
            let slots = Arc::clone(&self.slots);
            let own_limit = own_limit.clone();
            let metrics = self.metrics.clone();
            let store = Arc::clone(&self.store);
            set.spawn(
                async move {
                    let _driving = driving;
                    tokio::time::sleep(jitter).await;
                    let _own = match own_limit {
                        Some(limit) => limit.acquire_owned().await.ok(),
                        None => None,
                    };
                    // Closed only if the engine is dropped, and then nobody waits.
                    let _permit = slots.acquire_owned().await;
                    let _working = metrics.job_in_flight();
                    // Boxed: the job's large state exists only once it runs,
                    // not for every job still queued for a slot.
                    let result = Box::pin(runner.run()).await;
                    if let Ok(record) = &result {
                        metrics.job_ended(record);
                        restore_ended(&store, &metrics, record);
                    }
                    (index, result)
                }
                .instrument(span),
            );
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (index, result) = joined.map_err(|e| EngineError::Task(e.to_string()))?;
            done.push((index, result?));
        }
        for (_, job) in &done {
            self.cbr_runs.forget_run(job.run_id);
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, j)| j).collect())
    }

    /// The service a run of `policy` backs up through (or a drill restores
    /// from), recorded with each job so that a job continues on it even if
    /// the file changes: `cbr` on a CBR cloud, else the kind's usual one.
    async fn service_of(&self, policy: &Policy) -> Option<&'static str> {
        let usual = match policy.kind() {
            PolicyKind::Backup | PolicyKind::Restore => "vbs",
            PolicyKind::Server => "csbs",
            PolicyKind::Snapshot => return None,
        };
        let client = self.clients.get(&policy.cloud)?;
        match client.backs_up_on_cbr().await {
            Ok(true) => Some("cbr"),
            Ok(false) => Some(usual),
            Err(e) => {
                // Only `auto` asks; the run's jobs meet the same trouble and
                // record it.
                tracing::warn!(policy = %policy.name, error = %e, "cannot tell from the service catalog whether the cloud uses CBR; backing up through {usual}");
                Some(usual)
            }
        }
    }

    fn event(&self, kind: EventKind, job: &JobRecord, message: &str) -> Result<(), StoreError> {
        let event = Event {
            run_id: Some(job.run_id),
            job_id: Some(job.id),
            message: Some(message),
            ..Default::default()
        };
        self.store.record_event(kind, &event, Utc::now())
    }
}

/// A uniformly random duration in `[0, max)`.
fn random_below(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..nanos))
}

/// Records how long a finished restore job's restore took (the cloud
/// accepting it to the volume available), when it got that far.
fn restore_ended(store: &Store, metrics: &Metrics, job: &JobRecord) {
    if job.kind != crate::kind::PolicyKind::Restore || job.finished_at.is_none() {
        return;
    }
    match store.restore_columns(job.id) {
        Ok(RestoreColumns {
            restore_started_at: Some(started),
            restore_finished_at: Some(finished),
            ..
        }) => {
            let seconds = (finished - started).num_milliseconds().max(0) as f64 / 1000.0;
            metrics.restore_took(&job.policy, seconds);
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(job_id = job.id, error = %e, "restore time not recorded in the metrics")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_inside_its_window() {
        assert_eq!(random_below(Duration::ZERO), Duration::ZERO);
        let window = Duration::from_secs(300);
        let draws: Vec<Duration> = (0..1000).map(|_| random_below(window)).collect();
        assert!(draws.iter().all(|d| *d < window));
        // Spread over the window, not bunched at one end.
        assert!(draws.iter().any(|d| *d < window / 4) && draws.iter().any(|d| *d > window * 3 / 4));
    }
}
