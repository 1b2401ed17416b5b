//! The daemon's side of the leader lease: campaigning while it follows,
//! renewing while it leads, and saying which it is in the log, the metrics
//! and `/healthz`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::lease::{Gate, Holder, Lease};
use crate::metrics::health::Role;
use crate::metrics::{Heartbeat, Metrics};
use crate::store::StoreError;

/// Runs a lease call off the async threads: it may wait out a partition.
async fn blocking<T: Send + 'static>(
    lease: &Arc<Lease>,
    call: impl FnOnce(&Lease) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let lease = Arc::clone(lease);
    tokio::task::spawn_blocking(move || call(&lease))
        .await
        .unwrap_or_else(|e| Err(StoreError::PgConfig(format!("the lease task failed: {e}"))))
}

/// A follower's campaign: tries to take the lease, and reports who leads.
pub struct Follower<'a> {
    lease: &'a Arc<Lease>,
    metrics: Metrics,
    heartbeat: Arc<Heartbeat>,
    /// The leader last reported, so that each change is logged once.
    seen: Option<(String, i64)>,
    failing: bool,
}

impl<'a> Follower<'a> {
    pub fn new(lease: &'a Arc<Lease>, metrics: &Metrics, heartbeat: &Arc<Heartbeat>) -> Self {
        metrics.set_lease(false, 0, None);
        Self {
            lease,
            metrics: metrics.clone(),
            heartbeat: Arc::clone(heartbeat),
            seen: None,
            failing: false,
        }
    }

    /// One try: the epoch when this agent took the lease.
    pub async fn campaign(&mut self) -> Option<i64> {
        match blocking(self.lease, Lease::try_acquire).await {
            Ok(Some(epoch)) => {
                let from = self
                    .seen
                    .as_ref()
                    .map_or("nobody".into(), |(h, _)| h.clone());
                tracing::info!(epoch, previous = %from, holder = %self.lease.settings().holder, "took the leader lease: leading");
                return Some(epoch);
            }
            Ok(None) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "cannot reach the history to campaign for the lease; trying again");
                }
                self.failing = true;
                return None;
            }
        }
        match blocking(self.lease, Lease::holder).await {
            Ok(Some(holder)) => self.report(&holder),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "cannot read the lease"),
        }
        None
    }

    fn report(&mut self, holder: &Holder) {
        let leader = (holder.holder.clone(), holder.epoch);
        if self.seen.as_ref() != Some(&leader) {
            tracing::info!(leader = %holder.holder, epoch = holder.epoch, "following");
            let ours = &self.lease.settings().config_hash;
            if holder.config_hash.as_ref().is_some_and(|h| h != ours) {
                tracing::error!(
                    leader = %holder.holder,
                    "THIS AGENT'S POLICY FILE DIFFERS FROM THE LEADER'S: after a takeover it would run other policies; deploy the same file to every agent"
                );
            }
            self.seen = Some(leader);
        }
        self.metrics.set_lease(false, holder.epoch, None);
        self.heartbeat.set_role(Role::Follower {
            leader: holder.holder.clone(),
            epoch: holder.epoch,
            lease_age: Duration::from_secs_f64(holder.age_seconds.max(0.0)),
        });
    }
}

/// The lease held: renewals in a task of their own, and the signal that
/// it is lost.
pub struct Holding {
    task: JoinHandle<()>,
    lost: oneshot::Receiver<()>,
}

impl Holding {
    /// Starts renewing the lease this agent has just taken.
    pub fn start(lease: &Arc<Lease>, metrics: &Metrics, heartbeat: &Arc<Heartbeat>) -> Self {
        let (tx, lost) = oneshot::channel();
        let (lease, metrics, heartbeat) =
            (Arc::clone(lease), metrics.clone(), Arc::clone(heartbeat));
        let task = tokio::spawn(async move {
            renew(&lease, &metrics, &heartbeat).await;
            let _ = tx.send(());
        });
        Self { task, lost }
    }

    /// Stops renewing (the lease then runs out, or was released).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Renews every third of the TTL until a renewal is refused or the
/// deadline passes without one.
async fn renew(lease: &Arc<Lease>, metrics: &Metrics, heartbeat: &Heartbeat) {
    let held = lease.held();
    let every = lease.settings().renew_every();
    loop {
        let epoch = held.epoch();
        let age = held.age().unwrap_or_default();
        metrics.set_lease(true, epoch, Some(age));
        heartbeat.set_role(Role::Leader {
            epoch,
            lease_age: age,
        });
        let next = tokio::time::sleep(every);
        tokio::select! {
            () = next => {}
            () = until_gate_closes(&held) => {}
        }
        if !held.permits() {
            tracing::error!(
                epoch,
                "the leader lease ran out before a renewal got through"
            );
            return;
        }
        match blocking(lease, Lease::renew).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(epoch, "the leader lease was taken over or ran out");
                return;
            }
            Err(e) => {
                tracing::warn!(epoch, error = %e, "cannot renew the leader lease; trying again until it runs out")
            }
        }
    }
}

/// Resolves once the gate no longer permits (checked every 100 ms: the
/// deadline moves with each renewal).
async fn until_gate_closes(held: &crate::lease::Held) {
    while held.permits() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resolves when the lease held is lost; never without one.
pub async fn lost(holding: &mut Option<Holding>) {
    match holding {
        Some(h) => {
            let _ = (&mut h.lost).await;
        }
        None => std::future::pending().await,
    }
}

/// Gives the lease up on a clean stop, so a follower takes over at once.
pub async fn step_down(lease: &Arc<Lease>) {
    match blocking(lease, Lease::release).await {
        Ok(()) => tracing::info!("leader lease released"),
        Err(e) => {
            tracing::warn!(error = %e, "cannot release the leader lease; a follower takes over once it runs out")
        }
    }
}
