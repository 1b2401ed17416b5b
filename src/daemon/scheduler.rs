//! When each policy fires: one task per policy computes its next slot (cron
//! in the policy's time zone, see [`crate::schedule`]), sleeps until it and
//! sends a [`Firing`]. A new or changed policy waits for its next slot; it
//! never fires at once just because it is new.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::Policy;

/// Longest single sleep, so that a wall-clock jump (NTP step, suspend) is
/// noticed within this time.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// A policy's slot came due.
#[derive(Debug, Clone)]
pub struct Firing {
    pub policy: String,
    pub slot: DateTime<Utc>,
}

/// Starts one timer task per policy, firing the slots after `after`;
/// firings go to `tx`. Dropping (or aborting) the returned set stops them.
pub fn start(policies: &[Policy], after: DateTime<Utc>, tx: mpsc::Sender<Firing>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for policy in policies {
        let policy = policy.clone();
        let tx = tx.clone();
        set.spawn(async move { fire_forever(policy, after, tx).await });
    }
    set
}

async fn fire_forever(policy: Policy, mut after: DateTime<Utc>, tx: mpsc::Sender<Firing>) {
    loop {
        let Some(slot) = policy.schedule.next_after(after, policy.timezone) else {
            tracing::warn!(policy = %policy.name, schedule = policy.schedule.as_str(), "schedule never fires again");
            return;
        };
        tracing::debug!(policy = %policy.name, %slot, "next slot");
        sleep_until_wall(slot).await;
        if tx
            .send(Firing {
                policy: policy.name.clone(),
                slot,
            })
            .await
            .is_err()
        {
            return;
        }
        after = slot;
    }
}

/// Sleeps until the wall clock reaches `at`, in bounded steps.
async fn sleep_until_wall(at: DateTime<Utc>) {
    loop {
        let remaining = (at - Utc::now()).to_std().unwrap_or_default();
        if remaining.is_zero() {
            return;
        }
        tokio::time::sleep(remaining.min(MAX_SLEEP)).await;
    }
}
