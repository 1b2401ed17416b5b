//! Every HTTP attempt is reported to an observer, so the engine can write it
//! to the event log without the API layer knowing about SQLite.

use std::time::Duration;

/// One HTTP attempt.
#[derive(Debug, Clone)]
pub struct CallRecord<'a> {
    pub method: &'a str,
    /// Path and query, without scheme and host; never contains a secret.
    pub path: &'a str,
    pub status: Option<u16>,
    pub latency: Duration,
    /// `ok` or an [`super::ErrorClass`] name.
    pub class: &'a str,
    /// What went wrong, when something did.
    pub message: Option<&'a str>,
}

/// The project a new Keystone token is scoped to: the configured ID, or the
/// ID Keystone found for a project given by name.
#[derive(Debug, Clone)]
pub struct ProjectScoped<'a> {
    pub cloud: &'a str,
    pub project_id: &'a str,
    /// The configured name and domain (name or ID), when given by name.
    pub name: Option<&'a str>,
    pub domain: Option<&'a str>,
}

/// Receives every attempt.
pub trait CallObserver: Send + Sync {
    fn on_call(&self, call: &CallRecord<'_>);

    /// A token was scoped to a project; nothing to do by default.
    fn on_project(&self, _project: &ProjectScoped<'_>) {}
}

/// Logs attempts through `tracing` only.
pub struct TraceObserver;

impl CallObserver for TraceObserver {
    fn on_call(&self, c: &CallRecord<'_>) {
        tracing::debug!(
            method = c.method,
            path = c.path,
            status = c.status,
            latency_ms = c.latency.as_millis() as u64,
            class = c.class,
            message = c.message,
            "api call"
        );
    }
}
