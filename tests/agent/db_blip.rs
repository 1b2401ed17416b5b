//! An HA pair whose leader loses the database for a few seconds, less
//! than its lease lasts (needs `VBS_PG_URL`): the leader's connections run
//! through a partition proxy, cut for 5 s (lease TTL 12 s: a renewal every
//! 4 s, each allowed 4 s) just before a renewal is due, so that the
//! renewal waits out its deadline inside the cut. The next renewal, due
//! a third of the TTL after that one started, gets through before the
//! lease's deadline: the leader keeps the lease, and the runs the cut
//! broke are continued by the leader itself. Twice, at two moments of the
//! jobs; then the ledger against the history.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::helper::ha::{self, history_section, log_text, LeaseWatch};
use crate::helper::{policy_yaml, volume, volume_id, wait_for, World};
use vbs_agent::store::Store;

/// The lease TTL: a renewal every 4 s, each allowed 4 s, the leader's
/// deadline 10.8 s after it sent the last one that got through.
const TTL: Duration = Duration::from_secs(12);
/// How long the database is away: longer than one renewal may take,
/// shorter than two renewals' worth.
const BLIP: Duration = Duration::from_secs(5);
/// When the blip may start after a renewal was seen: late enough that it
/// lasts past the deadline of the next renewal (due 4 s after, allowed
/// 4 s), early enough that the next renewal is held in it.
const CUT_FROM: Duration = Duration::from_millis(3100);
const CUT_BY: Duration = Duration::from_millis(3900);
const LEADER: &str = "agent-behind-the-proxy-91d0";
const FOLLOWER: &str = "agent-on-a-direct-line-3f6b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blip_shorter_than_the_lease_costs_no_failover() {
    let Some(db) = ha::scratch() else { return };
    let world = World::start_with_tokens(
        (1..=3).map(|n| volume(n, None)).collect(),
        &[LEADER, FOLLOWER],
    )
    .await;
    let volumes: Vec<String> = (1..=3).map(volume_id).collect();
    let top = history_section(&format!("{}s", TTL.as_secs()));
    let policy = ha::write_policy(
        &world,
        &top,
        &policy_yaml("ha", "*/2 * * * * *", &volumes, ""),
    );
    let (proxy, through) = ha::proxied(&db.config);
    let watch = LeaseWatch::start(&db.config);
    let store = Store::open_postgres(&db.config).unwrap();
    let (log_leader, log_follower) = (world.path("leader.log"), world.path("follower.log"));

    let (mut leader, mut follower, led) = ha::pair_led_from_behind(
        &policy,
        &db.config,
        &through,
        &watch,
        (LEADER, &log_leader),
        (FOLLOWER, &log_follower),
    )
    .await;

    let mut blips = Vec::new();
    for (n, seed) in [(12, 3), (36, 4)] {
        ha::amid_jobs(&world, &store, LEADER, n, seed).await;
        // A renewal lands; the blip starts shortly before the next is due.
        let renewed = watch.now().unwrap().expires_at;
        wait_for("a renewal", || {
            watch.now().is_some_and(|r| r.expires_at > renewed)
        })
        .await;
        let seen = Instant::now();
        tokio::time::sleep(CUT_FROM).await;
        // Within that second, when a job is in flight if one comes.
        while seen.elapsed() < CUT_BY && store.unfinished_jobs().is_ok_and(|u| u.is_empty()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        proxy.cut();
        let in_flight: Vec<i64> = store
            .unfinished_jobs()
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        tokio::time::sleep(BLIP).await;
        proxy.heal();
        let healed = Instant::now();
        wait_for("the jobs in flight at the blip to end", || {
            store
                .unfinished_jobs()
                .is_ok_and(|u| u.iter().all(|j| !in_flight.contains(&j.id)))
        })
        .await;
        blips.push((in_flight.len(), healed.elapsed()));
        let now = watch.now().unwrap();
        assert_eq!(
            (now.holder.as_str(), now.epoch),
            (led.holder.as_str(), led.epoch),
            "the lease moved after a {BLIP:?} blip:\n{}",
            log_text(&log_leader)
        );
    }
    assert!(leader.try_wait().unwrap().is_none(), "the leader exited");
    assert!(
        follower.try_wait().unwrap().is_none(),
        "the follower exited"
    );
    let stepped_down = log_text(&log_leader).contains("lost the leader lease");
    let renewal_failures = log_text(&log_leader)
        .matches("cannot renew the leader lease")
        .count();

    // A last, clean spell on a schedule that no longer fires.
    let tally = ha::quiet_last_spell(
        &world,
        &top,
        (&volumes, ""),
        &mut [leader, follower],
        (&db.config.url, Some(FOLLOWER)),
        &log_follower,
        &store,
    )
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "database blips: {} of {} s each (lease TTL {} s), {renewal_failures} renewals failed, the leader stepped down: {stepped_down}; jobs in flight at each and when they ended after the heal: {}; {}",
        blips.len(),
        BLIP.as_secs(),
        TTL.as_secs(),
        blips
            .iter()
            .map(|(n, d)| format!("{n} in {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        tally.summary(),
    );
    assert!(!stepped_down, "the leader stepped down over a blip");
    assert!(renewal_failures > 0, "no renewal fell into a blip");
    tally.assert_clean();
}
