//! Prometheus metrics and the health check, served on `metrics_listen`
//! (see [`server`]). The engine records into a [`Metrics`] handle; without a
//! listener the handle still counts, and nobody reads it.
//!
//! Series (all prefixed `vbs_agent_`):
//!
//! | series | type | labels |
//! | --- | --- | --- |
//! | `jobs_total` | counter | `policy`, `status` |
//! | `job_duration_seconds` | histogram | `policy`, `status` |
//! | `last_success_timestamp_seconds` | gauge | `policy`, `target` |
//! | `api_requests_total` | counter | `method`, `endpoint`, `code` |
//! | `jobs_in_flight` | gauge | |
//! | `rpo_breach` | gauge (1 = out of its RPO) | `policy`, `target` |
//! | `restore_last_verified_timestamp_seconds` | gauge | `policy`, `target` |
//! | `restore_duration_seconds` | histogram | `policy` |
//! | `unprotected_targets` | gauge | `cloud` |

mod endpoint;
pub mod health;
pub mod server;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::api::CallRecord;
use crate::store::{JobRecord, JobStatus};

pub use endpoint::endpoint_label;
pub use health::Heartbeat;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    policy: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    policy: String,
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloudLabels {
    cloud: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    method: String,
    endpoint: String,
    /// The HTTP status, or `none` when no answer came (connection error, timeout).
    code: String,
}

type HistogramFamily = Family<JobLabels, Histogram, fn() -> Histogram>;

/// Job durations from 1 s to about 9 h, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// The agent's metrics; cheap to clone, all clones share the series.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    jobs: Family<JobLabels, Counter>,
    job_duration: HistogramFamily,
    last_success: Family<TargetLabels, Gauge>,
    api_requests: Family<ApiLabels, Counter>,
    in_flight: Gauge,
    rpo_breach: Family<TargetLabels, Gauge>,
    last_verified: Family<TargetLabels, Gauge>,
    restore_duration: Family<PolicyLabels, Histogram, fn() -> Histogram>,
    unprotected: Family<CloudLabels, Gauge>,
    leader: Gauge,
    lease_epoch: Gauge,
    lease_age: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of series, all empty.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vbs_agent");
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs that reached an end, by policy and final status",
            jobs.clone(),
        );
        let job_duration: HistogramFamily =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "job_duration",
            "Time from a job's start to its end, retries included",
            Unit::Seconds,
            job_duration.clone(),
        );
        let last_success = Family::<TargetLabels, Gauge>::default();
        registry.register_with_unit(
            "last_success_timestamp",
            "Unix time at which the last successful job of each policy and target ended",
            Unit::Seconds,
            last_success.clone(),
        );
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Cloud API requests (every attempt), by endpoint and HTTP status",
            api_requests.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "jobs_in_flight",
            "Jobs currently working (holding a max_concurrent_jobs slot)",
            in_flight.clone(),
        );
        let rpo_breach = Family::<TargetLabels, Gauge>::default();
        registry.register(
            "rpo_breach",
            "1 when the target's last good backup is older than its policy's RPO, else 0",
            rpo_breach.clone(),
        );
        let last_verified = Family::<TargetLabels, Gauge>::default();
        registry.register_with_unit(
            "restore_last_verified_timestamp",
            "Unix time at which the last verified restore of each drill policy and volume ended",
            Unit::Seconds,
            last_verified.clone(),
        );
        let restore_duration: Family<PolicyLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "restore_duration",
            "Time from the cloud accepting a restore to the volume available (the measured RTO)",
            Unit::Seconds,
            restore_duration.clone(),
        );
        let unprotected = Family::<CloudLabels, Gauge>::default();
        registry.register(
            "unprotected_targets",
            "Volumes and servers of the cloud that no policy covers and none opted out, at the last coverage snapshot",
            unprotected.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this agent acts: it holds the leader lease of its HA pair, or it is alone; 0 while it follows",
            leader.clone(),
        );
        let lease_epoch = Gauge::default();
        registry.register(
            "lease_epoch",
            "The leader lease's epoch: one more at every takeover",
            lease_epoch.clone(),
        );
        let lease_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "lease_age",
            "Time since this leader last renewed its lease",
            Unit::Seconds,
            lease_age.clone(),
        );
        Self {
            registry: Arc::new(registry),
            leader,
            lease_epoch,
            lease_age,
            jobs,
            job_duration,
            last_success,
            api_requests,
            in_flight,
            rpo_breach,
            last_verified,
            restore_duration,
            unprotected,
        }
    }

    /// Records this agent's part in an HA pair: whether it leads, the
    /// lease's epoch, and (leading) the time since its last renewal.
    pub fn set_lease(&self, leader: bool, epoch: i64, age: Option<std::time::Duration>) {
        self.leader.set(i64::from(leader));
        self.lease_epoch.set(epoch);
        self.lease_age.set(age.map_or(0.0, |a| a.as_secs_f64()));
    }

    /// Records a job that reached its end (including `skipped_overlap` and
    /// `missed` jobs, which never ran and so have no duration).
    pub fn job_ended(&self, job: &JobRecord) {
        let labels = JobLabels {
            policy: job.policy.clone(),
            status: job.status.as_str().to_string(),
        };
        self.jobs.get_or_create(&labels).inc();
        if matches!(job.status, JobStatus::SkippedOverlap | JobStatus::Missed) {
            return;
        }
        if let Some(finished) = job.finished_at {
            let seconds = (finished - job.started_at).num_milliseconds().max(0) as f64 / 1000.0;
            self.job_duration.get_or_create(&labels).observe(seconds);
            if matches!(job.status, JobStatus::Succeeded | JobStatus::Verified) {
                self.set_last_success(&job.policy, &job.target, finished.timestamp());
            }
            if job.status == JobStatus::Verified {
                self.set_last_verified(&job.policy, &job.target, finished.timestamp());
            }
        }
    }

    /// Sets the last-success gauge (also from the history at start-up).
    pub fn set_last_success(&self, policy: &str, target: &str, unix_seconds: i64) {
        let labels = TargetLabels {
            policy: policy.to_string(),
            target: target.to_string(),
        };
        self.last_success.get_or_create(&labels).set(unix_seconds);
    }

    /// Sets the last-verified-restore gauge (also from the history at
    /// start-up).
    pub fn set_last_verified(&self, policy: &str, target: &str, unix_seconds: i64) {
        let labels = TargetLabels {
            policy: policy.to_string(),
            target: target.to_string(),
        };
        self.last_verified.get_or_create(&labels).set(unix_seconds);
    }

    /// Records how long a finished restore of `policy` took, from the cloud
    /// accepting it to the volume available.
    pub fn restore_took(&self, policy: &str, seconds: f64) {
        let labels = PolicyLabels {
            policy: policy.to_string(),
        };
        self.restore_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// Counts one API attempt.
    pub fn api_call(&self, call: &CallRecord<'_>) {
        let labels = ApiLabels {
            method: call.method.to_string(),
            endpoint: endpoint_label(call.path),
            code: call
                .status
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
        };
        self.api_requests.get_or_create(&labels).inc();
    }

    /// Marks a job as working until the guard is dropped.
    pub fn job_in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Sets whether `target` of `policy` is out of its RPO.
    pub fn set_rpo_breach(&self, policy: &str, target: &str, breached: bool) {
        let labels = TargetLabels {
            policy: policy.to_string(),
            target: target.to_string(),
        };
        self.rpo_breach
            .get_or_create(&labels)
            .set(i64::from(breached));
    }

    /// Sets how many targets of `cloud` the last coverage snapshot found
    /// unprotected.
    pub fn set_unprotected(&self, cloud: &str, count: usize) {
        let labels = CloudLabels {
            cloud: cloud.to_string(),
        };
        self.unprotected
            .get_or_create(&labels)
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The series in the OpenMetrics text format (which Prometheus scrapes).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Counts a job in `jobs_in_flight` while alive.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
