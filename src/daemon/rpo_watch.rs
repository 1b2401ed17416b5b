//! The daemon's eye on recovery points: every few minutes and after each
//! run it judges every target against its policy's RPO (the same
//! [`crate::audit::compliance_report`] that `vbs-agent report` prints),
//! sets the `rpo_breach` gauge and notifies once when a target falls out
//! of its RPO — again only after it has come back within it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;

use crate::audit::{compliance_report, AuditError};
use crate::config::Config;
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
    /// Judges the targets of policy `only` (after its run), or of every
    /// policy, now, on a read-only connection of its own off the async
    /// threads, so the daemon's writes and timers are not held up.
    pub async fn check(
        &mut self,
        config: &Config,
        only: Option<&str>,
        metrics: &Metrics,
        notifier: &Notifier,
    ) {
        let mut cfg = config.clone();
        if let Some(name) = only {
            cfg.policies.retain(|p| p.name == name);
        }
        let judged = tokio::task::spawn_blocking(move || {
            let store = crate::history_store::open_reader(&cfg)?;
            let now = Utc::now();
            compliance_report(&cfg, &store, now, now)
        })
        .await;
        let report = match judged {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return log_failure(&e),
            Err(e) => return tracing::warn!(error = %e, "RPO check stopped"),
        };
        // Keys of the policies not judged this time stay as they were.
        let mut now_breached: HashSet<(String, String)> = self
            .breached
            .iter()
            .filter(|(policy, _)| only.is_some_and(|name| name != policy))
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

fn log_failure(e: &AuditError) {
    tracing::warn!(error = %e, "cannot judge the targets against their RPO");
}
