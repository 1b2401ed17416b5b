//! Notifications to operators (`notify:` in the policy file): a JSON POST
//! to a webhook and/or a command run with the same JSON on its standard
//! input, on job failure, on success, on an RPO breach and on a failed
//! restore drill.
//!
//! Deliveries run in their own tasks, each bounded by the block's
//! `timeout`: a notifier that fails, answers 500 or hangs is logged and
//! recorded as a `notification` event, and never delays or fails a job.

mod deliver;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::config::secret::SecretSource;
use crate::config::{AuthConfig, Config, Notify, NotifyOn, Policy, DRILL_SUFFIX};
use crate::engine::{JobEvent, JobListener};
use crate::kind::PolicyKind;
use crate::store::{JobRecord, JobStatus, RestoreColumns, Store};

/// What every notification carries. Every key is always present (`null`
/// when it does not apply), so receivers can rely on the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// `failure`, `success`, `rpo_breach`, `drill_failure` or `unprotected`.
    pub event: &'static str,
    pub policy: String,
    pub target: String,
    /// The job's status (`succeeded`, `failed`, `timed_out`), or `rpo_breach`.
    pub status: String,
    /// Why it failed (the cloud's `fail_reason` or the refused call), or
    /// how old the newest good backup is.
    pub reason: Option<String>,
    pub backup_id: Option<String>,
    pub snapshot_id: Option<String>,
    /// The slot the job ran for (UTC, RFC 3339).
    pub slot: Option<String>,
    pub job_id: Option<i64>,
    /// When the notification was made (UTC, RFC 3339).
    pub time: String,
    /// RPO breach: age of the newest good backup and the policy's RPO, in seconds.
    pub age_seconds: Option<u64>,
    pub rpo_seconds: Option<u64>,
    /// Drill failure: the scratch volume restored into, once created.
    pub volume_id: Option<String>,
    /// Drill failure: what `verify` said (`passed`, `failed`, `timed_out`,
    /// `none`), or `null` when the drill ended before it ran.
    pub verify: Option<String>,
    /// Unprotected: the cloud (policy file name) the target is in.
    pub cloud: Option<String>,
}

impl Payload {
    /// The payload for a finished job, if its status is one notifications
    /// are about.
    /// A drill's restore that failed is a `drill_failure`.
    pub fn for_job(job: &JobRecord, now: DateTime<Utc>) -> Option<(NotifyOn, Self)> {
        let drill = job.kind == PolicyKind::Restore && job.policy.ends_with(DRILL_SUFFIX);
        let outcome = match job.status {
            JobStatus::Succeeded => NotifyOn::Success,
            JobStatus::Failed | JobStatus::TimedOut if drill => NotifyOn::DrillFailure,
            JobStatus::Failed | JobStatus::TimedOut => NotifyOn::Failure,
            _ => return None,
        };
        Some((
            outcome,
            Self {
                event: outcome.as_str(),
                policy: job.policy.clone(),
                target: job.target.clone(),
                status: job.status.as_str().to_string(),
                reason: job.fail_reason.clone(),
                backup_id: job.backup_id.clone(),
                snapshot_id: job.snapshot_id.clone(),
                slot: Some(rfc3339(job.slot)),
                job_id: Some(job.id),
                time: rfc3339(now),
                age_seconds: None,
                rpo_seconds: None,
                volume_id: None,
                verify: None,
                cloud: None,
            },
        ))
    }

    /// Adds what a restore's own row says: the volume restored into and
    /// the verdict of `verify`.
    pub fn with_restore(mut self, restore: &RestoreColumns) -> Self {
        self.volume_id = restore.volume_id.clone();
        self.verify = restore.verify.clone();
        self
    }

    /// The payload for a target out of its RPO.
    /// For a drill policy (`restore`) the age is that of the newest
    /// verified restore, against the restore RPO.
    pub fn for_rpo_breach(
        policy: &str,
        target: &str,
        age: Duration,
        rpo: Duration,
        now: DateTime<Utc>,
    ) -> Self {
        let round = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        let (newest, limit) = if policy.ends_with(DRILL_SUFFIX) {
            ("verified restore", "restore RPO")
        } else {
            ("good backup", "RPO")
        };
        Self {
            event: NotifyOn::RpoBreach.as_str(),
            policy: policy.to_string(),
            target: target.to_string(),
            status: NotifyOn::RpoBreach.as_str().to_string(),
            reason: Some(format!(
                "the newest {newest} is {} old; the {limit} is {}",
                round(age),
                round(rpo)
            )),
            backup_id: None,
            snapshot_id: None,
            slot: None,
            job_id: None,
            time: rfc3339(now),
            age_seconds: Some(age.as_secs()),
            rpo_seconds: Some(rpo.as_secs()),
            volume_id: None,
            verify: None,
            cloud: None,
        }
    }

    /// The payload for a volume or server no policy covers; `policy` is
    /// empty, as no policy is about it.
    pub fn for_unprotected(
        cloud: &str,
        kind: &str,
        target: &str,
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let named = name.map_or(String::new(), |n| format!(" ({n})"));
        Self {
            event: NotifyOn::Unprotected.as_str(),
            policy: String::new(),
            target: target.to_string(),
            status: NotifyOn::Unprotected.as_str().to_string(),
            reason: Some(format!(
                "{kind} {target}{named} of cloud {cloud} is covered by no policy and not opted out"
            )),
            backup_id: None,
            snapshot_id: None,
            slot: None,
            job_id: None,
            time: rfc3339(now),
            age_seconds: None,
            rpo_seconds: None,
            volume_id: None,
            verify: None,
            cloud: Some(cloud.to_string()),
        }
    }

    /// The fields as `VBS_*` environment variables for a command notifier
    /// (absent fields are not set).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let optional = [
            ("VBS_REASON", self.reason.clone()),
            ("VBS_BACKUP_ID", self.backup_id.clone()),
            ("VBS_SNAPSHOT_ID", self.snapshot_id.clone()),
            ("VBS_SLOT", self.slot.clone()),
            ("VBS_JOB_ID", self.job_id.map(|j| j.to_string())),
            ("VBS_AGE_SECONDS", self.age_seconds.map(|s| s.to_string())),
            ("VBS_RPO_SECONDS", self.rpo_seconds.map(|s| s.to_string())),
            ("VBS_VOLUME_ID", self.volume_id.clone()),
            ("VBS_VERIFY", self.verify.clone()),
            ("VBS_CLOUD", self.cloud.clone()),
        ];
        let mut env = vec![
            ("VBS_EVENT", self.event.to_string()),
            ("VBS_POLICY", self.policy.clone()),
            ("VBS_TARGET", self.target.clone()),
            ("VBS_STATUS", self.status.clone()),
            ("VBS_TIME", self.time.clone()),
        ];
        env.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        env
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Sends the notifications of one agent. Cheap to share; deliveries in
/// flight can be awaited with [`Notifier::flush`].
pub struct Notifier {
    store: Option<Arc<Store>>,
    http: Option<reqwest::Client>,
    /// Environment variables holding the clouds' secrets: never passed on
    /// to a command notifier.
    hidden_env: Mutex<Vec<String>>,
    in_flight: Mutex<JoinSet<()>>,
}

impl Notifier {
    /// A notifier recording its deliveries in `store` when given.
    pub fn new(config: &Config, store: Option<Arc<Store>>) -> Self {
        let http = crate::http::client_builder()
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot set up webhook notifications"))
            .ok();
        Self {
            store,
            http,
            hidden_env: Mutex::new(secret_env_names(config)),
            in_flight: Mutex::new(JoinSet::new()),
        }
    }

    /// Also keeps the secret variables of a reloaded policy file from
    /// commands (those of the old one stay hidden too).
    pub fn reconfigure(&self, config: &Config) {
        let mut hidden = lock(&self.hidden_env);
        for name in secret_env_names(config) {
            if !hidden.contains(&name) {
                hidden.push(name);
            }
        }
    }

    /// Notifies the end of `job` when `policy` asks for its outcome.
    pub fn job_finished(&self, policy: &Policy, job: &JobRecord) {
        let Some((outcome, mut payload)) = Payload::for_job(job, Utc::now()) else {
            return;
        };
        if outcome == NotifyOn::DrillFailure {
            match self.store.as_deref().map(|s| s.restore_columns(job.id)) {
                Some(Ok(restore)) => payload = payload.with_restore(&restore),
                Some(Err(e)) => {
                    tracing::warn!(job_id = job.id, error = %e, "drill notification without its volume and verdict")
                }
                None => {}
            }
        }
        self.send(policy, outcome, payload);
    }

    /// Notifies that `target`'s newest good backup is `age` old, beyond the
    /// policy's `rpo` (for whatever computes compliance).
    pub fn rpo_breach(&self, policy: &Policy, target: &str, age: Duration, rpo: Duration) {
        let payload = Payload::for_rpo_breach(&policy.name, target, age, rpo, Utc::now());
        self.send(policy, NotifyOn::RpoBreach, payload);
    }

    /// Notifies that a target of `cloud` is unprotected, once per notify
    /// block that asks for `unprotected` among the policies of that cloud.
    pub fn unprotected(&self, config: &Config, cloud: &str, payload: Payload) {
        let mut told: Vec<&Notify> = Vec::new();
        for policy in config.policies.iter().filter(|p| p.cloud == cloud) {
            let Some(notify) = policy
                .notify
                .as_ref()
                .filter(|n| n.wants(NotifyOn::Unprotected))
            else {
                continue;
            };
            if told.contains(&notify) {
                continue;
            }
            told.push(notify);
            self.deliver(&policy.name, notify, payload.clone());
        }
    }

    /// Waits for every delivery in flight (each ends within its timeout).
    pub async fn flush(&self) {
        let mut set = std::mem::take(&mut *lock(&self.in_flight));
        while set.join_next().await.is_some() {}
    }

    fn send(&self, policy: &Policy, outcome: NotifyOn, payload: Payload) {
        if let Some(notify) = policy.notify.as_ref().filter(|n| n.wants(outcome)) {
            self.deliver(&policy.name, notify, payload);
        }
    }

    /// Starts `payload`'s deliveries to `notify` (of policy `policy`).
    fn deliver(&self, policy: &str, notify: &Notify, payload: Payload) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::error!(policy, "notification not sent: no async runtime");
            return;
        };
        let payload = Arc::new(payload);
        let mut set = lock(&self.in_flight);
        // Forget deliveries that are over.
        while set.try_join_next().is_some() {}
        for delivery in self.deliveries(notify) {
            let (payload, store) = (Arc::clone(&payload), self.store.clone());
            set.spawn_on(
                async move { delivery.run(&payload, store.as_deref()).await },
                &handle,
            );
        }
    }

    fn deliveries(&self, notify: &Notify) -> Vec<deliver::Delivery> {
        let mut out = Vec::new();
        if let (Some(url), Some(http)) = (&notify.webhook, &self.http) {
            out.push(deliver::Delivery::Webhook {
                http: http.clone(),
                url: url.clone(),
                timeout: notify.timeout,
            });
        }
        if let Some(argv) = &notify.command {
            out.push(deliver::Delivery::Command {
                argv: argv.clone(),
                hidden_env: lock(&self.hidden_env).clone(),
                timeout: notify.timeout,
            });
        }
        out
    }
}

/// The environment variables the clouds' secrets are read from.
fn secret_env_names(config: &Config) -> Vec<String> {
    config
        .clouds
        .values()
        .flat_map(|c| match &c.auth {
            AuthConfig::Token { token, .. } => vec![token],
            AuthConfig::Password { password, .. } => vec![password],
            AuthConfig::AkSk {
                access_key,
                secret_key,
            } => vec![access_key, secret_key],
        })
        .filter_map(|source| match source {
            SecretSource::Env(name) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JobListener for Notifier {
    fn on_job(&self, policy: &Policy, job: &JobRecord, event: &JobEvent<'_>) {
        if *event == JobEvent::Finished {
            self.job_finished(policy, job);
        }
    }
}

#[cfg(test)]
mod tests;
