//! Writes each API attempt of a job to the event log, and tells
//! [`JobListener`]s (live views, notifiers) what each job is doing.

use std::sync::Arc;

use chrono::Utc;

use crate::api::{CallObserver, CallRecord, ProjectScoped};
use crate::config::Policy;
use crate::metrics::Metrics;
use crate::store::{Event, EventKind, JobRecord, Store};

/// Records the API attempts of one job (or of a run, or of a prune, with
/// neither).
pub struct JobObserver {
    pub store: Arc<Store>,
    pub run_id: Option<i64>,
    pub job_id: Option<i64>,
    /// Counts the attempt in `api_requests_total`.
    pub metrics: Metrics,
}

impl CallObserver for JobObserver {
    fn on_call(&self, c: &CallRecord<'_>) {
        self.metrics.api_call(c);
        let latency_ms = u64::try_from(c.latency.as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(
            run_id = self.run_id,
            job_id = self.job_id,
            method = c.method,
            path = c.path,
            status = c.status,
            latency_ms,
            class = c.class,
            "api call"
        );
        let event = Event {
            run_id: self.run_id,
            job_id: self.job_id,
            method: Some(c.method),
            path: Some(c.path),
            http_status: c.status,
            latency_ms: Some(latency_ms),
            class: Some(c.class),
            message: c.message,
        };
        if let Err(e) = self
            .store
            .record_event(EventKind::ApiCall, &event, Utc::now())
        {
            tracing::error!(error = %e, "cannot record API call in the history");
        }
    }

    fn on_project(&self, p: &ProjectScoped<'_>) {
        tracing::info!(
            cloud = p.cloud,
            project_id = p.project_id,
            project_name = p.name,
            "token scoped to project"
        );
        if let Err(e) =
            self.store
                .record_cloud_project(p.cloud, p.project_id, p.name, p.domain, Utc::now())
        {
            tracing::error!(error = %e, "cannot record the cloud's project in the history");
        }
    }
}

/// What a job is doing, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent<'a> {
    /// A transition was persisted; the record shows the new phase and status.
    Phase { note: &'a str },
    /// One look at the job's snapshot or backup while the cloud makes it.
    Poll {
        resource: &'a str,
        id: &'a str,
        status: &'a str,
    },
    /// Something to look at that does not fail the job.
    Warning { message: &'a str },
    /// The job is done; the record is final.
    Finished,
}

/// Receives every [`JobEvent`] of every job an engine drives. Called from
/// the job's task: it must return quickly and never block (spawn slow work).
pub trait JobListener: Send + Sync {
    fn on_job(&self, policy: &Policy, job: &JobRecord, event: &JobEvent<'_>);
}

/// The listeners of one engine, told in order.
#[derive(Clone, Default)]
pub struct Listeners(pub Vec<Arc<dyn JobListener>>);

impl Listeners {
    /// Tells every listener.
    pub fn tell(&self, policy: &Policy, job: &JobRecord, event: &JobEvent<'_>) {
        for l in &self.0 {
            l.on_job(policy, job, event);
        }
    }
}
