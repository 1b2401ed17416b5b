//! Writes each API attempt of a job to the event log.

use std::sync::Arc;

use chrono::Utc;

use crate::api::{CallObserver, CallRecord};
use crate::metrics::Metrics;
use crate::store::{Event, EventKind, Store};

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
}
