//! The agent killed with SIGKILL at random moments while jobs run, then
//! restarted, many times. Afterwards the simulator's ledger of everything
//! it ever created is compared with the history:
//! - no duplicates: at most one backup per resource name, and exactly one
//!   available backup for each succeeded (policy, target, slot);
//! - nothing lost: every backup the cloud created is in the history;
//! - no temporary snapshot left behind.
//!
//! In every cycle a second daemon is started on the same history at a
//! random moment: one of the two stops at once, so no job has two drivers.
//!
//! `VBS_CRASH_CYCLES` sets the number of cycles (default 20; the long
//! version is e.g. `VBS_CRASH_CYCLES=300 cargo test --release --test
//! crash_loop -- --nocapture`).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use crate::helper::{
    policy_yaml, signal, spawn_agent, volume, volume_id, wait_for, World, PROJECT,
};
use vbs_agent::store::{JobStatus, Store};

/// Waits (within a generous bound) until one of two daemons exits on its
/// own, and returns its exit status.
async fn first_to_exit(
    a: &mut std::process::Child,
    b: &mut std::process::Child,
) -> std::process::ExitStatus {
    let mut exited = None;
    wait_for("one of two daemons to give way", || {
        exited = a.try_wait().unwrap().or_else(|| b.try_wait().unwrap());
        exited.is_some()
    })
    .await;
    exited.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_duplicates_or_loses_a_backup() {
    let cycles: u32 = std::env::var("VBS_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let world = World::start((1..=3).map(|n| volume(n, None)).collect()).await;
    // Slow answers widen the window between the cloud acting on a create and
    // the agent hearing of it, where a kill forces adoption by name.
    world.sim.set_faults(crate::helper::sim::Faults {
        seed: 11,
        slow_rate: 0.3,
        slow_delay_ms: 400,
        ..Default::default()
    });
    let volumes: Vec<String> = (1..=3).map(volume_id).collect();
    let policies = policy_yaml("crash", "*/2 * * * * *", &volumes, "");
    let policy = world.write_config("", "", &policies);
    let history = world.path("state/history.db");
    let log = world.path("agent.log");

    let mut rng = fastrand::Rng::with_seed(u64::from(cycles));
    let mut refused = 0;
    for _ in 0..cycles {
        let life = rng.u64(300..2500);
        let intruder_at = rng.u64(0..life);
        let mut agent = spawn_agent(&policy, &log);
        tokio::time::sleep(Duration::from_millis(intruder_at)).await;
        // A second daemon on the same history, started at a random moment:
        // whichever of the two holds the history, the other stops at once.
        let mut intruder = spawn_agent(&policy, &log);
        let gave_way = first_to_exit(&mut agent, &mut intruder).await;
        assert!(
            !gave_way.success(),
            "the daemon that gave way failed: {gave_way}"
        );
        refused += 1;
        tokio::time::sleep(Duration::from_millis(life - intruder_at)).await;
        for daemon in [&mut agent, &mut intruder] {
            if daemon.try_wait().unwrap().is_none() {
                signal(daemon, "-KILL");
                daemon.wait().unwrap();
            }
        }
    }
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        log_text
            .matches("another vbs-agent is writing the history")
            .count(),
        refused,
        "every second daemon said why it stopped"
    );

    // A last, clean run: everything left unfinished is continued. Its
    // schedule no longer fires (a changed schedule starts afresh, without
    // catching up), so "every job finished" is not a moving target on a
    // machine too slow to ever be between two 2-second slots.
    world.write_config("", "", &policy_yaml("crash", "0 0 3 1 1 *", &volumes, ""));
    let started = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("agent started")
        .count();
    let mut agent = spawn_agent(&policy, &log);
    wait_for("the agent to start", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("agent started")
            .count()
            > started
    })
    .await;
    wait_for("every job to finish", || {
        Store::open_read_only(&history)
            .and_then(|s| s.unfinished_jobs())
            .is_ok_and(|u| u.is_empty())
    })
    .await;
    signal(&agent, "-TERM");
    let exit = agent.wait().unwrap();
    assert!(exit.success(), "SIGTERM ends the agent with 0: {exit}");

    let store = Store::open_read_only(&history).unwrap();
    let jobs = store.recent_jobs(100_000).unwrap();
    let unfinished = store.unfinished_jobs().unwrap();
    assert!(
        unfinished.is_empty(),
        "jobs left unfinished after a clean stop: {unfinished:#?}"
    );
    let ledger = world.sim.ledger();
    let backups: Vec<_> = ledger.iter().filter(|e| e.kind == "backup").collect();

    // No duplicates: one backup per name at most.
    let duplicates = crate::helper::names_made_twice(backups.iter().map(|b| b.name.as_str()));

    // Nothing lost: every backup created is in the history.
    let mut known: BTreeSet<String> = jobs.iter().filter_map(|j| j.backup_id.clone()).collect();
    for job in &jobs {
        known.extend(
            store
                .earlier_attempts(job.id)
                .unwrap()
                .into_iter()
                .filter_map(|a| a.backup_id),
        );
    }
    let lost: Vec<_> = backups.iter().filter(|b| !known.contains(&b.id)).collect();

    // Each succeeded job has exactly its one available backup.
    for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
        let mine: Vec<_> = backups
            .iter()
            .filter(|b| b.name == job.resource_name)
            .collect();
        assert_eq!(mine.len(), 1, "{job:#?}");
        assert_eq!(mine[0].status, "available");
        assert_eq!(Some(&mine[0].id), job.backup_id.as_ref());
    }
    let snapshots_left = world.sim.snapshots(PROJECT);
    let conn = rusqlite::Connection::open(&history).unwrap();
    let adopted: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE message LIKE '%adopted by name%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let continued = std::fs::read_to_string(&log)
        .unwrap()
        .matches("continuing jobs left unfinished")
        .count();
    let succeeded = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Succeeded)
        .count();
    let _ = writeln!(
        std::io::stderr(),
        "crash loop: {cycles} SIGKILL cycles, {refused} second daemons refused, {} jobs ({succeeded} succeeded), {} backups created, {continued} restarts continued unfinished jobs, {adopted} resources adopted by name, {} duplicates, {} lost, {} snapshots left",
        jobs.len(),
        backups.len(),
        duplicates.len(),
        lost.len(),
        snapshots_left.len()
    );
    assert!(duplicates.is_empty(), "duplicate backups: {duplicates:?}");
    assert!(
        lost.is_empty(),
        "backups missing from the history: {lost:#?}"
    );
    assert!(
        snapshots_left.is_empty(),
        "snapshots left behind: {snapshots_left:#?}"
    );
    assert!(succeeded > 0);
    assert!(
        jobs.iter().all(|j| matches!(
            j.status,
            JobStatus::Succeeded | JobStatus::Missed | JobStatus::SkippedOverlap
        )),
        "{:#?}",
        jobs.iter()
            .filter(|j| !matches!(
                j.status,
                JobStatus::Succeeded | JobStatus::Missed | JobStatus::SkippedOverlap
            ))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_resumed_after_its_deadline_records_what_the_cloud_finished() {
    let world = World::start(vec![volume(1, None)]).await;
    let policy = world.write_config(
        "",
        "",
        &policy_yaml(
            "late",
            "*/2 * * * * *",
            &[volume_id(1)],
            "    completion_timeout: 3s\n",
        ),
    );
    let history = world.path("state/history.db");
    let log = world.path("agent.log");
    let mut agent = spawn_agent(&policy, &log);
    wait_for("a backup to be under way", || {
        Store::open_read_only(&history)
            .and_then(|s| s.unfinished_jobs())
            .is_ok_and(|jobs| jobs.iter().any(|j| j.backup_id.is_some()))
    })
    .await;
    signal(&agent, "-KILL");
    agent.wait().unwrap();
    // Down for longer than the completion timeout; the backup finishes meanwhile.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let policy = world.write_config(
        "",
        "",
        &policy_yaml(
            "late",
            "0 0 3 1 1 *",
            &[volume_id(1)],
            "    completion_timeout: 3s\n",
        ),
    );
    let mut agent = spawn_agent(&policy, &log);
    wait_for("the interrupted job to end", || {
        Store::open_read_only(&history)
            .and_then(|s| s.unfinished_jobs())
            .is_ok_and(|u| u.is_empty())
    })
    .await;
    signal(&agent, "-TERM");
    agent.wait().unwrap();
    let jobs = Store::open_read_only(&history)
        .unwrap()
        .recent_jobs(100)
        .unwrap();
    let job = jobs.iter().find(|j| j.backup_id.is_some()).unwrap();
    assert_eq!(
        job.status,
        JobStatus::Succeeded,
        "one last look finds the finished backup: {job:#?}"
    );
    assert!(world.sim.snapshots(PROJECT).is_empty());
}
