//! `events`: the append-only log of every API attempt and state change.
//! SQLite triggers refuse updates and deletes.

use chrono::{DateTime, Utc};

use super::db::{arg_vec, args, Value};
use super::{format_ts, Store, StoreError};
use crate::bounded;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// One HTTP attempt.
    ApiCall,
    /// A job or run changed state.
    State,
    /// Something an operator should look at that did not fail the job.
    Warning,
    /// One delivery of a notification (webhook or command) and how it went.
    Notification,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ApiCall => "api_call",
            EventKind::State => "state",
            EventKind::Warning => "warning",
            EventKind::Notification => "notification",
        }
    }
}

/// One event row.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub run_id: Option<i64>,
    pub job_id: Option<i64>,
    pub method: Option<&'a str>,
    pub path: Option<&'a str>,
    pub http_status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub class: Option<&'a str>,
    pub message: Option<&'a str>,
}

/// An event as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub at: String,
    pub job_id: Option<i64>,
    pub kind: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub http_status: Option<u16>,
    pub class: Option<String>,
    pub message: Option<String>,
}

impl Store {
    /// Appends an event: at once, or, while [`Store::defer_events`] is on,
    /// with the next write of any caller (within [`super::EVENT_DELAY`]).
    pub fn record_event(
        &self,
        kind: EventKind,
        event: &Event<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db
            .defer(vec![(INSERT_EVENT, event_args(kind, event, at))])
            .map(drop)
    }

    /// The events of a job, oldest first.
    pub fn job_events(&self, job_id: i64) -> Result<Vec<EventRecord>, StoreError> {
        self.db.rows(
            "SELECT at, job_id, kind, method, path, http_status, class, message
             FROM events WHERE job_id = ?1 ORDER BY id",
            args![job_id],
            |r| {
                Ok(EventRecord {
                    at: r.get(0)?,
                    job_id: r.get(1)?,
                    kind: r.get(2)?,
                    method: r.get(3)?,
                    path: r.get(4)?,
                    http_status: r.get(5)?,
                    class: r.get(6)?,
                    message: r.get(7)?,
                })
            },
        )
    }
}

/// The `INSERT` behind [`Store::record_event`].
pub(super) const INSERT_EVENT: &str = "INSERT INTO events (at, run_id, job_id, kind, method, path,
                                               http_status, latency_ms, class, message)
                            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

pub(super) fn event_args(kind: EventKind, event: &Event<'_>, at: DateTime<Utc>) -> Vec<Value> {
    arg_vec![
        format_ts(at),
        event.run_id,
        event.job_id,
        kind.as_str(),
        event.method,
        event.path,
        event.http_status,
        event.latency_ms,
        event.class,
        event.message.map(bounded::message)
    ]
}
