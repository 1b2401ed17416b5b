//! The leader lease of an HA pair: agents sharing a PostgreSQL history
//! take turns holding one row, and only its holder acts.
//!
//! The row (`leader_lease`) has the holder, an epoch one higher at every
//! takeover, and an expiry, all on the database's clock. The leader renews
//! every third of the TTL; a follower takes the lease only once it has
//! expired, with the next epoch. The leader's own deadline is counted from
//! before it sent its last successful renewal, less a margin, so it stops
//! before the database could let anyone else take over: [`Gate`] holds
//! mutating calls from then on (a late renewal under the same epoch lets
//! them go), and the history's fence refuses writes of an older epoch
//! (migration 0015).
//!
//! The lease talks to the database on a connection of its own, and the
//! daemon renews it on a thread of its own, so a renewal never waits
//! behind the history's writes, nor for an async thread they hold.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::store::db::{args, PgConfig, PgDb, Row};
use crate::store::StoreError;

/// The one lease an HA pair shares.
const LEASE: &str = "leader";

/// What a lease holder is told before every mutating call.
pub trait Gate: Send + Sync + std::fmt::Debug {
    /// Whether the caller may still change things in the cloud.
    fn permits(&self) -> bool;

    /// The epoch of the lease the gate answers for (0: none). A gate that
    /// closed and opens again under the same epoch had its lease renewed
    /// late, never lost: nobody else led meanwhile.
    fn epoch(&self) -> i64;
}

/// How long a lease lasts and who asks for it.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub ttl: Duration,
    /// `host:pid`, unique among the agents.
    pub holder: String,
    /// What the agent's policy file amounts to, so that a follower whose
    /// file differs from the leader's can say so.
    pub config_hash: String,
}

impl LeaseSettings {
    /// Settings for this process: `ttl`, and `config` hashed.
    pub fn for_this_agent(ttl: Duration, config: &impl std::fmt::Debug) -> Self {
        Self {
            ttl,
            holder: format!("{}:{}", hostname(), std::process::id()),
            config_hash: hex::encode(&Sha256::digest(format!("{config:?}"))[..8]),
        }
    }

    /// How often the leader renews.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often a follower tries to take over: often enough that a
    /// takeover follows the expiry closely, at most every second.
    pub fn campaign_every(&self) -> Duration {
        (self.ttl / 6).max(Duration::from_secs(1))
    }

    /// How much sooner than the database the leader gives up: a mutating
    /// call sent just before the deadline still lands before the expiry.
    pub fn margin(&self) -> Duration {
        (self.ttl / 10).max(Duration::from_secs(1))
    }
}

/// The lease row as a follower sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub holder: String,
    pub epoch: i64,
    pub config_hash: Option<String>,
    /// Seconds since the holder last renewed.
    pub age_seconds: f64,
    pub live: bool,
}

/// One agent's part in the election.
pub struct Lease {
    db: PgDb,
    settings: LeaseSettings,
    held: Arc<Held>,
}

/// What this agent holds: the epoch and until when it may act.
#[derive(Debug, Default)]
pub struct Held {
    epoch: AtomicI64,
    until: Mutex<Option<Instant>>,
    renewed: Mutex<Option<Instant>>,
}

impl Held {
    fn until(&self) -> Option<Instant> {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, epoch: i64, sent: Instant, settings: &LeaseSettings) {
        self.epoch.store(epoch, Ordering::SeqCst);
        let until = sent + settings.ttl - settings.margin();
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = Some(sent);
    }

    fn clear(&self) {
        self.epoch.store(0, Ordering::SeqCst);
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The epoch held, 0 when none.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Seconds since the last renewal (or the takeover), when leading.
    pub fn age(&self) -> Option<Duration> {
        self.until()?;
        let renewed = *self.renewed.lock().unwrap_or_else(|p| p.into_inner());
        renewed.map(|r| r.elapsed())
    }
}

impl Gate for Held {
    fn permits(&self) -> bool {
        self.until().is_some_and(|until| Instant::now() < until)
    }

    fn epoch(&self) -> i64 {
        Held::epoch(self)
    }
}

impl Lease {
    /// Joins the election on its own connection to the history's database.
    pub fn connect(pg: &PgConfig, settings: LeaseSettings) -> Result<Self, StoreError> {
        let db = PgDb::connect(pg, settings.renew_every())?;
        Ok(Self {
            db,
            settings,
            held: Arc::default(),
        })
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// What this agent holds, shared with the gate and the health report.
    pub fn held(&self) -> Arc<Held> {
        Arc::clone(&self.held)
    }

    /// Takes the lease if it is free or has expired; its epoch if taken.
    pub fn try_acquire(&self) -> Result<Option<i64>, StoreError> {
        let sent = Instant::now();
        let s = &self.settings;
        let epoch: Option<i64> = self.db.with(|c| {
            c.value(
            "INSERT INTO leader_lease (name, holder, epoch, acquired_at, renewed_at, expires_at,
                                       config_hash)
             VALUES (?1, ?2, 1, now(), now(), now() + make_interval(secs => ?3), ?4)
             ON CONFLICT (name) DO UPDATE SET
                 holder = excluded.holder, epoch = leader_lease.epoch + 1,
                 acquired_at = now(), renewed_at = now(), expires_at = excluded.expires_at,
                 config_hash = excluded.config_hash
             WHERE leader_lease.expires_at <= now()
             RETURNING epoch",
            args![LEASE, &s.holder, s.ttl.as_secs_f64(), &s.config_hash],
        )
        })?;
        if let Some(epoch) = epoch {
            self.held.set(epoch, sent, s);
        }
        Ok(epoch)
    }

    /// Extends the lease held; `false` when it is no longer ours.
    pub fn renew(&self) -> Result<bool, StoreError> {
        let sent = Instant::now();
        let epoch = self.held.epoch();
        let s = &self.settings;
        let renewed: Option<i64> = self.db.with(|c| {
            c.value(
                "UPDATE leader_lease SET renewed_at = now(),
                    expires_at = now() + make_interval(secs => ?4)
              WHERE name = ?1 AND holder = ?2 AND epoch = ?3 AND expires_at > now()
              RETURNING epoch",
                args![LEASE, &s.holder, epoch, s.ttl.as_secs_f64()],
            )
        })?;
        match renewed {
            Some(epoch) => self.held.set(epoch, sent, s),
            None => self.held.clear(),
        }
        Ok(renewed.is_some())
    }

    /// Gives the lease up at once (a clean stop), so a follower need not
    /// wait out the TTL.
    pub fn release(&self) -> Result<(), StoreError> {
        let epoch = self.held.epoch();
        self.held.clear();
        self.db.with(|c| {
            c.execute(
                "UPDATE leader_lease SET expires_at = now()
              WHERE name = ?1 AND holder = ?2 AND epoch = ?3",
                args![LEASE, &self.settings.holder, epoch],
            )
        })?;
        Ok(())
    }

    /// Whoever holds the lease now, if anyone ever did.
    pub fn holder(&self) -> Result<Option<Holder>, StoreError> {
        let row = self.db.with(|c| {
            c.query_opt(
                "SELECT holder, epoch, config_hash,
                    EXTRACT(EPOCH FROM now() - renewed_at)::float8, expires_at > now()
               FROM leader_lease WHERE name = ?1",
                args![LEASE],
            )
        })?;
        row.as_ref().map(read_holder).transpose()
    }
}

fn read_holder(r: &Row) -> Result<Holder, StoreError> {
    Ok(Holder {
        holder: r.get(0)?,
        epoch: r.get(1)?,
        config_hash: r.get(2)?,
        age_seconds: r.get(3)?,
        live: r.get(4)?,
    })
}

/// This host's name, for the lease holder.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
