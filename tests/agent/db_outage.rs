//! An HA pair whose database is away for a whole minute (needs
//! `VBS_PG_URL`): both agents reach it through one partition proxy, cut
//! for 60 s while jobs are in flight, then healed. No call may change the
//! cloud once the lease has run out, the leader must step down while the
//! database is away, both agents must live through it, one of them must
//! lead again after the heal and finish the jobs that were in flight, and
//! in the end the history must know everything the cloud made, with
//! nothing made twice and no snapshot left.
//!
//! As in `partition.rs`, each agent has a cloud token of its own, so the
//! simulator's request log tells their calls apart.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::helper::ha::{self, history_section, log_text, mutating_calls, pid_of, LeaseWatch};
use crate::helper::{policy_yaml, volume, volume_id, wait_for, World};
use vbs_agent::store::Store;

/// How long the database is away: the minute the proof asks for.
const OUTAGE: Duration = Duration::from_secs(60);
const TOKENS: [&str; 2] = ["agent-one-token-0b7f", "agent-two-token-e44a"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_lives_through_a_minute_without_its_database() {
    let Some(db) = ha::scratch() else { return };
    let world = World::start_with_tokens((1..=4).map(|n| volume(n, None)).collect(), &TOKENS).await;
    let volumes: Vec<String> = (1..=4).map(volume_id).collect();
    // The shortest lease TTL the policy file takes.
    let top = history_section("6s");
    // Jobs in flight at the cut may finish after the heal: a completion
    // timeout longer than the outage, as real ones are.
    let every_two_seconds = policy_yaml(
        "ha",
        "*/2 * * * * *",
        &volumes,
        "    completion_timeout: 10m\n",
    );
    let policy = ha::write_policy(&world, &top, &every_two_seconds);
    let (proxy, through) = ha::proxied(&db.config);
    let watch = LeaseWatch::start(&db.config);
    let store = Store::open_postgres(&db.config).unwrap();
    let logs: Vec<PathBuf> = (0..2)
        .map(|n| world.path(&format!("agent-{n}.log")))
        .collect();
    let mut agents: Vec<_> = (0..2)
        .map(|n| ha::spawn_as(&policy, &through, Some(TOKENS[n]), &logs[n]))
        .collect();

    let pids: Vec<u32> = agents.iter().map(|a| a.id()).collect();
    wait_for("one of the agents to lead", || {
        watch
            .now()
            .is_some_and(|r| r.live && pids.contains(&pid_of(&r.holder)))
    })
    .await;
    let old = watch.now().unwrap();
    let leader = pids.iter().position(|p| *p == pid_of(&old.holder)).unwrap();
    ha::amid_jobs(&world, &store, TOKENS[leader], 24, 60).await;

    proxy.cut();
    let (cut, cut_at) = (Instant::now(), Utc::now());
    let in_flight: Vec<i64> = store
        .unfinished_jobs()
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    // The whole minute, watching for the leader to step down meanwhile.
    let mut stepped_down = None;
    while cut.elapsed() < OUTAGE {
        if stepped_down.is_none()
            && log_text(&logs[leader]).contains("lost the leader lease: runs in flight stopped")
        {
            stepped_down = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running: Vec<bool> = agents
        .iter_mut()
        .map(|a| a.try_wait().unwrap().is_none())
        .collect();
    proxy.heal();
    let heal = Instant::now();

    wait_for("an agent to lead again", || {
        watch.now().is_some_and(|r| r.live && r.epoch > old.epoch)
    })
    .await;
    let new = watch.now().unwrap();
    let lead_again = heal.elapsed();
    let expiry = watch.expiry_of(old.epoch).unwrap();
    wait_for("the jobs in flight at the cut to end", || {
        store
            .unfinished_jobs()
            .is_ok_and(|u| u.iter().all(|j| !in_flight.contains(&j.id)))
    })
    .await;
    let in_flight_ended = heal.elapsed();
    // And the pair goes on with its schedule: a run's worth of calls.
    let before = TOKENS
        .iter()
        .map(|t| mutating_calls(&world, t).len())
        .sum::<usize>();
    wait_for("the new leader to change the cloud again", || {
        TOKENS
            .iter()
            .map(|t| mutating_calls(&world, t).len())
            .sum::<usize>()
            >= before + 12
    })
    .await;
    let alive_after: Vec<bool> = agents
        .iter_mut()
        .map(|a| a.try_wait().unwrap().is_none())
        .collect();

    // What changed the cloud while nobody held the lease.
    let heal_at = Utc::now() - chrono::TimeDelta::from_std(heal.elapsed()).unwrap();
    let leaderless: Vec<_> = TOKENS
        .iter()
        .flat_map(|t| mutating_calls(&world, t))
        .filter(|r| r.at >= expiry && r.at < heal_at)
        .collect();
    let during_outage = TOKENS
        .iter()
        .flat_map(|t| mutating_calls(&world, t))
        .filter(|r| r.at >= cut_at && r.at < heal_at)
        .count();

    // A last, clean spell on a schedule that no longer fires.
    let tally = ha::quiet_last_spell(
        &world,
        &top,
        (&volumes, "    completion_timeout: 10m\n"),
        &mut agents,
        (&db.config.url, Some(TOKENS[0])),
        &logs[0],
        &store,
    )
    .await;
    let _ = writeln!(
        std::io::stderr(),
        "database outage: {} s with {} jobs in flight; the leader (epoch {}) stepped down {} after the cut; mutating calls during the outage {during_outage}, after the lease expired {}; both agents running at the heal: {}, after it: {}; epoch {} led by agent {} {:.1} s after the heal ({}), the jobs in flight ended {:.1} s after it; {}",
        OUTAGE.as_secs(),
        in_flight.len(),
        old.epoch,
        stepped_down.map_or("NOT while it lasted".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        leaderless.len(),
        running.iter().all(|r| *r),
        alive_after.iter().all(|r| *r),
        new.epoch,
        pids.iter().position(|p| *p == pid_of(&new.holder)).map_or("?".into(), |n| n.to_string()),
        lead_again.as_secs_f64(),
        if pid_of(&new.holder) == pid_of(&old.holder) { "the same agent" } else { "the other agent" },
        in_flight_ended.as_secs_f64(),
        tally.summary(),
    );
    assert!(
        leaderless.is_empty(),
        "the cloud was changed after the lease expired at {expiry}, with the database away: {leaderless:#?}"
    );
    assert!(
        stepped_down.is_some(),
        "the leader did not step down while the database was away"
    );
    assert_eq!(running, [true, true], "an agent exited during the outage");
    assert_eq!(alive_after, [true, true], "an agent exited after the heal");
    assert_eq!(new.epoch, old.epoch + 1);
    tally.assert_clean();
}
