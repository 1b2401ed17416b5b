//! An HA pair whose leader is cut off from the database (needs
//! `VBS_PG_URL`): both of the leader's connections (the history's and the
//! lease's) run through a partition proxy, the follower's do not. The
//! proxy is cut while jobs are in flight. The follower must take over with
//! the next epoch, the cut-off leader must send no call that changes the
//! cloud once its lease has expired, and after the heal it must follow
//! the new leader; nothing may be made twice or be missing from the
//! history.
//!
//! Each agent reads its cloud token from the environment ([`ha::TOKEN_ENV`])
//! and is given a token of its own, while both run the same policy file
//! (as the lease wants): the simulator's request log names the token of
//! every request, so it tells the two agents' calls apart.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::helper::ha::{self, history_section, log_text, mutating_calls, pid_of, LeaseWatch};
use crate::helper::{policy_yaml, volume, volume_id, wait_for, World};
use vbs_agent::store::Store;

/// The lease TTL: the shortest the policy file takes.
const TTL: Duration = Duration::from_secs(6);
/// The cloud token of the agent that leads first, behind the proxy.
const CUT_OFF: &str = "agent-behind-the-proxy-7c1e";
/// The cloud token of the agent that follows first, on a direct line.
const DIRECT: &str = "agent-on-a-direct-line-52ad";

/// `at` relative to `to`, in seconds (negative: before).
fn seconds(at: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (at - to).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_stops_before_its_lease_expires_and_follows_after() {
    let Some(db) = ha::scratch() else { return };
    let world = World::start_with_tokens(
        (1..=3).map(|n| volume(n, None)).collect(),
        &[CUT_OFF, DIRECT],
    )
    .await;
    let volumes: Vec<String> = (1..=3).map(volume_id).collect();
    let top = history_section("6s");
    let policy = ha::write_policy(
        &world,
        &top,
        &policy_yaml("ha", "*/2 * * * * *", &volumes, ""),
    );
    let (proxy, through) = ha::proxied(&db.config);
    let watch = LeaseWatch::start(&db.config);
    let store = Store::open_postgres(&db.config).unwrap();
    let (log_cut, log_direct) = (world.path("cut-off.log"), world.path("direct.log"));

    // The agent behind the proxy starts first, and so leads.
    let (mut cut_off, mut direct, old) = ha::pair_led_from_behind(
        &policy,
        &db.config,
        &through,
        &watch,
        (CUT_OFF, &log_cut),
        (DIRECT, &log_direct),
    )
    .await;

    // Jobs in flight at the cut, after a few runs.
    ha::amid_jobs(&world, &store, CUT_OFF, 12, 21).await;
    proxy.cut();
    let (cut, cut_at) = (Instant::now(), Utc::now());
    wait_for("the follower to take over", || {
        watch.after(old.epoch).is_some()
    })
    .await;
    let (taken, new) = watch.after(old.epoch).unwrap();
    let takeover = taken - cut;
    // Its last renewal landed before the takeover, which waited it out.
    let expiry = watch.expiry_of(old.epoch).unwrap();
    assert_eq!(new.epoch, old.epoch + 1);
    assert_eq!(pid_of(&new.holder), direct.id());

    // The new leader works a while, then the partition heals.
    let before_heal = mutating_calls(&world, DIRECT).len();
    wait_for("the new leader to change the cloud", || {
        mutating_calls(&world, DIRECT).len() >= before_heal + 4
    })
    .await;
    // Still cut off, the old leader stops its runs and follows again.
    wait_for("the cut-off leader to step down", || {
        log_text(&log_cut).contains("lost the leader lease: runs in flight stopped")
    })
    .await;
    let stepped_down = cut.elapsed();
    proxy.heal();
    let following = format!("following leader={} epoch={}", new.holder, new.epoch);
    wait_for("the old leader to follow the new one", || {
        log_text(&log_cut).contains(&following)
    })
    .await;
    // It stays a follower: a TTL later the lease is still the new leader's.
    tokio::time::sleep(TTL).await;
    let still = watch.now().unwrap();
    assert!(
        still.live && still.holder == new.holder && still.epoch == new.epoch,
        "the lease moved after the heal: {still:?}"
    );
    assert!(
        cut_off.try_wait().unwrap().is_none(),
        "the cut-off agent exited"
    );
    assert!(
        direct.try_wait().unwrap().is_none(),
        "the new leader exited"
    );

    let old_calls = mutating_calls(&world, CUT_OFF);
    let late: Vec<_> = old_calls.iter().filter(|r| r.at >= expiry).collect();
    let during_cut = old_calls.iter().filter(|r| r.at >= cut_at).count();
    let last_old = old_calls.iter().map(|r| r.at).max().unwrap();
    let early: Vec<_> = mutating_calls(&world, DIRECT)
        .into_iter()
        .filter(|r| r.at < expiry)
        .collect();
    let gated = log_text(&log_cut)
        .matches("held, not sent: this agent's leader lease ran out")
        .count();

    // A last, clean spell on a schedule that no longer fires.
    let tally = ha::quiet_last_spell(
        &world,
        &top,
        (&volumes, ""),
        &mut [cut_off, direct],
        (&db.config.url, Some(DIRECT)),
        &log_direct,
        &store,
    )
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "partition: leader cut off at epoch {}; {} of its mutating calls, {during_cut} after the cut, {} after its lease expired (the last {:.2} s before the cut and {:.2} s before the expiry; {gated} calls held at its gate); it stepped down {:.1} s after the cut; takeover at epoch {} {:.1} s after the cut (lease TTL {} s), the new leader's first mutating call {} the expiry; {}",
        old.epoch,
        old_calls.len(),
        late.len(),
        -seconds(last_old, cut_at),
        -seconds(last_old, expiry),
        stepped_down.as_secs_f64(),
        new.epoch,
        takeover.as_secs_f64(),
        TTL.as_secs(),
        if early.is_empty() { "after" } else { "BEFORE" },
        tally.summary(),
    );
    assert!(
        late.is_empty(),
        "the cut-off leader changed the cloud after its lease expired at {expiry}: {late:#?}"
    );
    assert!(
        early.is_empty(),
        "the new leader changed the cloud before the old lease expired at {expiry}: {early:#?}"
    );
    assert!(
        takeover <= TTL + Duration::from_secs(10),
        "takeover {takeover:?} over the lease TTL + 10 s"
    );
    tally.assert_clean();
}
