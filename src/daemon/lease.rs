//! The daemon's side of the leader lease: campaigning while it follows,
//! renewing while it leads, and saying which it is in the log, the metrics
//! and `/healthz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

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

/// The lease held: renewals on a thread of their own, and the signal that
/// it is lost.
///
/// Not a task on the async threads: the history's calls are synchronous
/// and on PostgreSQL each may hold an async thread up to the statement
/// deadline, longer than the lease lasts. With jobs writing to a slow or
/// unreachable database the async threads can all be held at once, and a
/// renewal waiting for one would let the lease run out (a needless
/// failover), or notice too late that it has.
pub struct Holding {
    stop: Arc<AtomicBool>,
    lost: oneshot::Receiver<()>,
}

impl Holding {
    /// Starts renewing the lease this agent has just taken.
    pub fn start(lease: &Arc<Lease>, metrics: &Metrics, heartbeat: &Arc<Heartbeat>) -> Self {
        let (tx, lost) = oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (lease, metrics, heartbeat, stopping) = (
            Arc::clone(lease),
            metrics.clone(),
            Arc::clone(heartbeat),
            Arc::clone(&stop),
        );
        let spawned = std::thread::Builder::new()
            .name("vbs-lease".into())
            .spawn(move || {
                if renew(&lease, &metrics, &heartbeat, &stopping) == Renewals::Lost {
                    let _ = tx.send(());
                }
            });
        // Without its thread (and with `tx` dropped) the lease counts as
        // lost at once: the agent follows again and campaigns anew.
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start renewing the leader lease");
        }
        Self { stop, lost }
    }

    /// Stops renewing (the lease then runs out, or was released).
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the lease is known to be lost already.
    fn has_lost(&mut self) -> bool {
        !matches!(self.lost.try_recv(), Err(TryRecvError::Empty))
    }
}

/// How often the renewing thread looks at the gate and the stop flag.
const LOOK_EVERY: Duration = Duration::from_millis(100);

/// How the renewals ended.
#[derive(Debug, PartialEq, Eq)]
enum Renewals {
    /// The lease was refused or ran out.
    Lost,
    /// The holder stopped them.
    Stopped,
}

/// Renews every third of the TTL until a renewal is refused, the deadline
/// passes without one, or `stop` is set.
///
/// Each renewal is due a third of the TTL after the one before it
/// started, not after it ended: one that waited out its deadline (a third
/// of the TTL) is followed at once by the next, which still has until the
/// leader's deadline to get through. Counted from its end, the next one
/// would come after that deadline, and a single renewal lost in a blip of
/// the database would cost the lease.
fn renew(lease: &Lease, metrics: &Metrics, heartbeat: &Heartbeat, stop: &AtomicBool) -> Renewals {
    let held = lease.held();
    let every = lease.settings().renew_every();
    // The takeover, then each renewal's start.
    let mut last = Instant::now();
    loop {
        let epoch = held.epoch();
        let age = held.age().unwrap_or_default();
        metrics.set_lease(true, epoch, Some(age));
        heartbeat.set_role(Role::Leader {
            epoch,
            lease_age: age,
        });
        // Until the next renewal is due; the gate is looked at meanwhile,
        // as its deadline moves with each renewal.
        let due = last + every;
        while held.permits() && !stop.load(Ordering::SeqCst) {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(LOOK_EVERY));
        }
        if stop.load(Ordering::SeqCst) {
            return Renewals::Stopped;
        }
        if !held.permits() {
            tracing::error!(
                epoch,
                "the leader lease ran out before a renewal got through"
            );
            return Renewals::Lost;
        }
        last = Instant::now();
        match lease.renew() {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(epoch, "the leader lease was taken over or ran out");
                return Renewals::Lost;
            }
            Err(e) => {
                tracing::warn!(epoch, error = %e, "cannot renew the leader lease; trying again until it runs out")
            }
        }
    }
}

/// Whether the lease held is known to be lost already; never without one.
pub fn has_lost(holding: &mut Option<Holding>) -> bool {
    holding.as_mut().is_some_and(Holding::has_lost)
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::lease::LeaseSettings;
    use crate::store::scratch::ScratchDatabase;
    use crate::store::test_support::pg_store;

    /// The shortest TTL the policy file takes.
    const TTL: Duration = Duration::from_secs(6);

    fn lease(db: &ScratchDatabase, holder: &str) -> Arc<Lease> {
        let settings = LeaseSettings {
            ttl: TTL,
            holder: holder.into(),
            config_hash: "test".into(),
        };
        Arc::new(Lease::connect(&db.config, settings).unwrap())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn the_lease_is_renewed_while_the_async_threads_are_held_up() {
        let Some((db, _store)) = pg_store() else {
            return;
        };
        let lease = lease(&db, "a:1");
        let epoch = lease.try_acquire().unwrap().unwrap();
        let held = lease.held();
        runtime().block_on(async {
            let mut holding = Some(Holding::start(
                &lease,
                &Metrics::new(),
                &Arc::new(Heartbeat::new()),
            ));
            // What the history's synchronous calls do to the async threads
            // while the database is slow: hold them, here the only one,
            // for two TTLs.
            std::thread::sleep(2 * TTL);
            assert!(
                held.permits(),
                "the lease ran out while the runtime was busy"
            );
            assert_eq!(held.epoch(), epoch);
            assert!(!has_lost(&mut holding));
            if let Some(h) = holding {
                h.stop();
            }
        });
    }

    #[test]
    fn a_lease_taken_over_is_reported_lost() {
        let Some((db, _store)) = pg_store() else {
            return;
        };
        let (ours, theirs) = (lease(&db, "a:1"), lease(&db, "b:2"));
        let epoch = ours.try_acquire().unwrap().unwrap();
        runtime().block_on(async {
            let mut holding = Some(Holding::start(
                &ours,
                &Metrics::new(),
                &Arc::new(Heartbeat::new()),
            ));
            // The database lets the lease go (as after a partition) and the
            // other agent takes it.
            let admin =
                crate::store::db::PgDb::connect(&db.config, Duration::from_secs(10)).unwrap();
            admin
                .with(|c| c.batch("UPDATE leader_lease SET expires_at = now()"))
                .unwrap();
            assert_eq!(theirs.try_acquire().unwrap(), Some(epoch + 1));
            let bound = Instant::now() + Duration::from_secs(60);
            tokio::time::timeout_at(bound.into(), lost(&mut holding))
                .await
                .expect("the loss was never reported");
            assert!(!ours.held().permits());
        });
    }
}
