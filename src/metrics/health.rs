//! The scheduler loop's heartbeat, read by `/healthz`. The loop beats on
//! every turn and at least every [`BEAT_EVERY`]; a heartbeat older than
//! [`STALE_AFTER`] means the loop is stuck (blocked, or dead), and the
//! health check fails so that a supervisor or load balancer can act.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How often the scheduler loop beats when nothing else happens.
pub const BEAT_EVERY: Duration = Duration::from_secs(5);

/// A heartbeat older than this fails the health check.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// When the scheduler loop last showed it was alive (tokio's clock, so
/// tests with paused time control it).
#[derive(Debug)]
pub struct Heartbeat {
    last: Mutex<Instant>,
    /// An HA agent's part; `None` for one agent alone.
    role: Mutex<Option<Role>>,
}

/// What an agent of an HA pair is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    Leader {
        epoch: i64,
        /// Since the lease was last renewed.
        lease_age: Duration,
    },
    Follower {
        leader: String,
        epoch: i64,
        /// Since the leader last renewed.
        lease_age: Duration,
    },
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Leader { epoch, lease_age } => write!(
                f,
                "role: leader\nepoch: {epoch}\nlease_age_seconds: {:.1}",
                lease_age.as_secs_f64()
            ),
            Role::Follower {
                leader,
                epoch,
                lease_age,
            } => write!(
                f,
                "role: follower\nleader: {leader}\nepoch: {epoch}\nlease_age_seconds: {:.1}",
                lease_age.as_secs_f64()
            ),
        }
    }
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Self {
        Self {
            last: Mutex::new(Instant::now()),
            role: Mutex::new(None),
        }
    }

    /// The loop is alive now.
    pub fn beat(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Records the agent's part in an HA pair.
    pub fn set_role(&self, role: Role) {
        *self.role.lock().unwrap_or_else(|p| p.into_inner()) = Some(role);
    }

    /// The agent's part in an HA pair, if it is in one.
    pub fn role(&self) -> Option<Role> {
        self.role.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    /// Whether the loop beat within [`STALE_AFTER`].
    pub fn is_alive(&self) -> bool {
        self.age() <= STALE_AFTER
    }
}
