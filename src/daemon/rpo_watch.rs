//! The daemon's eye on recovery points: every few minutes it judges every
//! target against its policy's RPO (the same
//! [`crate::audit::compliance_report`] that `vbs-agent report` prints),
//! sets the `rpo_breach` gauge and notifies once when a target falls out
//! of its RPO — again only after it has come back within it. After a run,
//! a target whose job just succeeded is within its RPO without a look at
//! the history; only the others are judged again.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use crate::audit::{compliance_report_of, effective_rpo, exceeds, AuditError};
use crate::config::Config;
use crate::engine::RunReport;
use crate::metrics::Metrics;
use crate::notifier::Notifier;

/// How often the daemon looks even when nothing ran: a target also falls
/// out of its RPO when its policy does not fire at all.
pub const CHECK_EVERY: Duration = Duration::from_secs(300);

/// The targets out of their RPO at the last look, by (policy, target).
#[derive(Debug, Default)]
pub struct RpoWatch {
    breached: HashSet<(String, String)>,
}

impl RpoWatch {
    /// Judges every target of every policy now.
    pub async fn check(&mut self, config: &Config, metrics: &Metrics, notifier: &Notifier) {
        self.judge(config, None, metrics, notifier).await;
    }

    /// Judges the targets of a run's policy after the run: a target whose
    /// job succeeded, and started recently enough, is within its RPO now;
    /// the others are judged from the history.
    pub async fn after_run(
        &mut self,
        config: &Config,
        run: &RunReport,
        metrics: &Metrics,
        notifier: &Notifier,
    ) {
        let Some(policy) = config.policy(&run.policy) else {
            return;
        };
        let now = Utc::now();
        let rpo = effective_rpo(policy, now);
        let mut doubtful = HashSet::new();
        for job in &run.jobs {
            let fresh = rpo.is_none_or(|r| !exceeds(now - job.attempt_started_at, r.max_age));
            if job.status.is_good() && fresh {
                metrics.set_rpo_breach(&policy.name, &job.target, false);
                self.breached
                    .remove(&(policy.name.clone(), job.target.clone()));
            } else {
                doubtful.insert(job.target.clone());
            }
        }
        if !doubtful.is_empty() {
            let only = Only {
                policy: policy.name.clone(),
                targets: doubtful,
            };
            self.judge(config, Some(only), metrics, notifier).await;
        }
    }

    /// Judges the targets `only` names, or all, now, on a read-only
    /// connection of its own off the async threads, so the daemon's writes
    /// and timers are not held up.
    async fn judge(
        &mut self,
        config: &Config,
        only: Option<Only>,
        metrics: &Metrics,
        notifier: &Notifier,
    ) {
        let mut cfg = config.clone();
        if let Some(only) = &only {
            cfg.policies.retain(|p| p.name == only.policy);
        }
        let picked = only.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let store = crate::history_store::open_reader(&cfg)?;
            let now = Utc::now();
            compliance_report_of(&cfg, &store, now, now, |_, target| {
                picked.as_ref().is_none_or(|o| o.targets.contains(target))
            })
        })
        .await;
        let report = match judged {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return log_failure(&e),
            Err(e) => return tracing::warn!(error = %e, "RPO check stopped"),
        };
        // Keys of the targets not judged this time stay as they were.
        let mut now_breached: HashSet<(String, String)> = self
            .breached
            .iter()
            .filter(|key| only.as_ref().is_some_and(|o| !o.covers(key)))
            .cloned()
            .collect();
        for t in report.targets.iter().filter(|t| t.in_config) {
            metrics.set_rpo_breach(&t.policy, &t.target, t.rpo_breached);
            if !t.rpo_breached {
                continue;
            }
            let key = (t.policy.clone(), t.target.clone());
            if !self.breached.contains(&key) {
                if let (Some(policy), Some(rpo)) = (config.policy(&t.policy), t.rpo_seconds) {
                    let age = t
                        .last_success_age_seconds
                        .or_else(|| t.first_slot.map(|f| (report.at - f).num_seconds()))
                        .and_then(|s| u64::try_from(s).ok())
                        .unwrap_or(0);
                    tracing::warn!(policy = %t.policy, target = %t.target, age_s = age, rpo_s = rpo, "target out of its RPO");
                    notifier.rpo_breach(
                        policy,
                        &t.target,
                        Duration::from_secs(age),
                        Duration::from_secs(rpo),
                    );
                }
            }
            now_breached.insert(key);
        }
        self.breached = now_breached;
    }
}

/// The targets of one policy a look is about.
#[derive(Debug, Clone)]
struct Only {
    policy: String,
    targets: HashSet<String>,
}

impl Only {
    fn covers(&self, (policy, target): &(String, String)) -> bool {
        *policy == self.policy && self.targets.contains(target)
    }
}

fn log_failure(e: &AuditError) {
    tracing::warn!(error = %e, "cannot judge the targets against their RPO");
}
