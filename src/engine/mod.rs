//! Runs policies: one run per firing, one job per target, each job driven
//! through its persisted phases (see [`job`]). Knows nothing of cron or the
//! command line.

mod create;
mod job;
mod observer;
pub mod poll;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::api::{ApiError, ClientSettings, CloudClient};
use crate::config::{Config, Policy};
use crate::naming::resource_name;
use crate::store::{JobRecord, JobStatus, NewJob, RunStatus, Store, StoreError, Trigger};
use job::JobRunner;
use observer::JobObserver;

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
    /// Whether every job succeeded.
    pub fn succeeded(&self) -> bool {
        self.jobs.iter().all(|j| j.status == JobStatus::Succeeded)
    }
}

/// Runs jobs against the configured clouds, recording everything in the store.
#[derive(Clone)]
pub struct Engine {
    store: Arc<Store>,
    clients: Arc<BTreeMap<String, CloudClient>>,
}

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
        })
    }

    /// The history this engine writes.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Runs `policy` for `slot`: records the run and its jobs, drives all
    /// jobs concurrently and waits for them. A (policy, slot) already in the
    /// history is not run again.
    pub async fn run_policy(
        &self,
        policy: &Policy,
        slot: DateTime<Utc>,
        trigger: Trigger,
    ) -> Result<RunReport, EngineError> {
        let now = Utc::now();
        let (run_id, started) = self.store.begin_run(&policy.name, slot, trigger, now)?;
        if !started {
            tracing::info!(policy = %policy.name, %slot, "slot already recorded; not running it again");
            let jobs = self.store.jobs_of_run(run_id)?;
            return Ok(RunReport {
                run_id,
                policy: policy.name.clone(),
                slot,
                started,
                jobs,
            });
        }
        tracing::info!(policy = %policy.name, %slot, trigger = trigger.as_str(), run_id, targets = policy.volumes.len(), "run started");
        let mut records = Vec::with_capacity(policy.volumes.len());
        for volume in &policy.volumes {
            let name = resource_name(&policy.name, slot, volume);
            let job = NewJob {
                run_id,
                policy: &policy.name,
                kind: policy.kind.as_str(),
                cloud: &policy.cloud,
                target: volume,
                slot,
                resource_name: &name,
            };
            let id = self.store.insert_job(&job, now)?;
            records.push(self.store.job(id)?);
        }
        let jobs = self.drive_all(policy, records, false).await?;
        let status = if jobs.iter().all(|j| j.status == JobStatus::Succeeded) {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        self.store.finish_run(run_id, status, Utc::now())?;
        tracing::info!(policy = %policy.name, %slot, run_id, status = status.as_str(), "run finished");
        Ok(RunReport {
            run_id,
            policy: policy.name.clone(),
            slot,
            started,
            jobs,
        })
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
        for (index, job) in jobs.into_iter().enumerate() {
            let observer = Arc::new(JobObserver {
                store: Arc::clone(&self.store),
                run_id: job.run_id,
                job_id: Some(job.id),
            });
            let runner = JobRunner::new(
                Arc::clone(&self.store),
                client.with_observer(observer),
                policy.clone(),
                job,
                resumed,
            );
            set.spawn(async move { (index, runner.run().await) });
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (index, result) = joined.map_err(|e| EngineError::Task(e.to_string()))?;
            done.push((index, result?));
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, j)| j).collect())
    }
}
