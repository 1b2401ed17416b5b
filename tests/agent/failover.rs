//! Two agents on one PostgreSQL history (needs `VBS_PG_URL`): the leader
//! is killed with SIGKILL at random moments and restarted, cycle after
//! cycle, while the follower takes over. Checked against the simulator's
//! ledger: nothing made twice, nothing made that the history does not
//! know, no temporary snapshot left; and the takeover times.
//!
//! `VBS_FAILOVER_CYCLES` sets the number of cycles (default 20).

use std::io::Write;
use std::time::{Duration, Instant};

use crate::helper::ha::{self, history_section, lease, pid_of};
use crate::helper::{policy_yaml, signal, volume, volume_id, wait_for, World};
use vbs_agent::store::db::PgDb;
use vbs_agent::store::Store;

/// The lease TTL the agents run with: the shortest the policy file takes,
/// so that each cycle's takeover is quick.
const TTL: Duration = Duration::from_secs(6);

fn cycles() -> u32 {
    std::env::var("VBS_FAILOVER_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
}

/// The `p`th percentile (0–100) of sorted `values`, nearest rank.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_a_killed_leader_without_duplicates_or_losses() {
    let Some(db) = ha::scratch() else { return };
    let world = World::start((1..=3).map(|n| volume(n, None)).collect()).await;
    let volumes: Vec<String> = (1..=3).map(volume_id).collect();
    let top = history_section("6s");
    let policy = world.write_config(&top, "", &policy_yaml("ha", "*/2 * * * * *", &volumes, ""));
    let log = world.path("agents.log");
    let watcher = PgDb::connect(&db.config, Duration::from_secs(10)).unwrap();

    let mut agents: Vec<ha::Agent> = (0..2)
        .map(|_| ha::spawn(&policy, &db.config, &log))
        .collect();
    let mut rng = fastrand::Rng::with_seed(15);
    let mut takeovers = Vec::new();
    let cycles = cycles();
    for _ in 0..cycles {
        let pids: Vec<u32> = agents.iter().map(|a| a.id()).collect();
        let mut leader = None;
        wait_for("one of the agents to lead", || {
            leader = lease(&watcher).filter(|(h, _, live)| *live && pids.contains(&pid_of(h)));
            leader.is_some()
        })
        .await;
        let (holder, epoch, _) = leader.unwrap();
        // Let it lead a while: jobs are in flight at the kill.
        tokio::time::sleep(Duration::from_millis(rng.u64(500..4000))).await;
        let at = agents
            .iter()
            .position(|a| a.id() == pid_of(&holder))
            .unwrap();
        signal(&agents[at], "-KILL");
        let killed = Instant::now();
        agents[at].wait().unwrap();
        agents[at] = ha::spawn(&policy, &db.config, &log);
        wait_for("another agent to take over", || {
            lease(&watcher).is_some_and(|(_, e, live)| live && e > epoch)
        })
        .await;
        takeovers.push(killed.elapsed());
    }

    // A last, clean spell: one agent, a schedule that no longer fires,
    // until every job has finished; then a clean stop.
    world.write_config(&top, "", &policy_yaml("ha", "0 0 3 1 1 *", &volumes, ""));
    let store = Store::open_postgres(&db.config).unwrap();
    let tally = ha::last_spell(
        &world,
        &mut agents,
        &policy,
        (&db.config.url, None),
        &log,
        &store,
    )
    .await;
    takeovers.sort();
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let _ = writeln!(
        std::io::stderr(),
        "failover: {cycles} leader kills, {}; takeover median {}, p95 {}, max {} (lease TTL {})",
        tally.summary(),
        secs(percentile(&takeovers, 50)),
        secs(percentile(&takeovers, 95)),
        secs(*takeovers.last().unwrap()),
        secs(TTL),
    );
    tally.assert_clean();
    assert!(
        percentile(&takeovers, 95) <= TTL + Duration::from_secs(10),
        "takeover p95 over the lease TTL + 10 s: {takeovers:?}"
    );
}
