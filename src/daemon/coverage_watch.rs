//! The daemon's coverage snapshots: every `coverage_every` (an hour by
//! default) each cloud's volumes and servers are judged against the
//! policies ([`crate::coverage`]) and the result recorded, so the history
//! answers "which volumes existed and were not covered on date D". Sets
//! the `unprotected_targets` gauge and notifies `unprotected` once per
//! target, again only after it was covered or opted out in between (also
//! across restarts: the last snapshot says what was told).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Mutex;

use crate::config::Config;
use crate::coverage::{audit, Standing};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::notifier::{Notifier, Payload};
use crate::store::CoverageSnapshot;

/// The unprotected targets at the last snapshot, by (cloud, target).
#[derive(Debug, Clone)]
pub struct CoverageWatch {
    unprotected: Arc<Mutex<HashSet<(String, String)>>>,
}

impl CoverageWatch {
    /// A watch that knows what the last snapshots of `store` found, so a
    /// restart does not notify the same unprotected targets again.
    pub fn resumed(store: &crate::store::Store) -> Self {
        let known = store.last_unprotected().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unprotected targets of the last coverage snapshot not read; they are notified again");
            Vec::new()
        });
        Self {
            unprotected: Arc::new(Mutex::new(known.into_iter().collect())),
        }
    }

    /// Takes and records one snapshot of every cloud. A cloud that cannot
    /// be listed gets a snapshot with the error, and a warning.
    pub async fn take(
        &self,
        config: &Config,
        engine: &Engine,
        metrics: &Metrics,
        notifier: &Notifier,
    ) {
        let mut known = self.unprotected.lock().await;
        for name in config.clouds.keys() {
            let taken_at = Utc::now();
            let client = match engine.observed_client(name) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(cloud = %name, error = %e, "coverage not taken");
                    continue;
                }
            };
            let coverage = match audit(config, name, &client, Some(engine.store())).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(cloud = %name, error = %e, "coverage snapshot failed");
                    let failed = CoverageSnapshot {
                        taken_at,
                        cloud: name.clone(),
                        volumes: 0,
                        servers: None,
                        protected: 0,
                        unprotected: 0,
                        opted_out: 0,
                        error: Some(e.to_string()),
                        gaps: Vec::new(),
                    };
                    if let Err(e) = engine.store().record_coverage(&failed) {
                        tracing::warn!(cloud = %name, error = %e, "coverage failure not recorded");
                    }
                    continue;
                }
            };
            if let Err(e) = engine.store().record_coverage(&coverage.snapshot(taken_at)) {
                tracing::warn!(cloud = %name, error = %e, "coverage snapshot not recorded");
            }
            let unprotected = coverage.unprotected();
            metrics.set_unprotected(name, unprotected);
            tracing::info!(cloud = %name, targets = coverage.rows.len(), unprotected, "coverage snapshot taken");
            let before: HashSet<(String, String)> = known
                .iter()
                .filter(|(cloud, _)| cloud == name)
                .cloned()
                .collect();
            known.retain(|(cloud, _)| cloud != name);
            for row in coverage
                .rows
                .iter()
                .filter(|r| r.standing == Standing::Unprotected)
            {
                let key = (name.clone(), row.id.clone());
                if !before.contains(&key) {
                    tracing::warn!(cloud = %name, kind = row.kind, target = %row.id, "unprotected: covered by no policy and not opted out");
                    let payload = Payload::for_unprotected(
                        name,
                        row.kind,
                        &row.id,
                        row.name.as_deref(),
                        Utc::now(),
                    );
                    notifier.unprotected(config, name, payload);
                }
                known.insert(key);
            }
        }
    }
}
