//! The crash cycle, written once for every policy kind: the agent killed
//! with SIGKILL at random moments while jobs run, with a second daemon
//! started on the same history in every cycle (one of the two stops at
//! once), then a last clean run. Afterwards the simulator's ledger of
//! everything it ever created is compared with the history.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use vbs_agent::store::{JobRecord, JobStatus, Store};

use super::sim::LedgerEntry;
use super::{all_finished, names_made_twice, signal, spawn_agent, wait_for, World};

/// What the crash cycle needs to know of one policy kind.
pub struct Kind {
    /// What a job of this kind makes, for the summary line.
    pub name: &'static str,
    /// What a job that did its work ends as (`succeeded`, `verified`).
    pub good: JobStatus,
    /// The ledger's kind of what a job makes (`backup`, `snapshot`, `checkpoint`, `volume`, `cbr_backup`).
    pub made: &'static str,
    /// What tells two things made apart: more than one made under one key
    /// is a duplicate (the name; on CBR, where a run's backups share its
    /// name, the volume and the name).
    pub made_key: fn(&LedgerEntry) -> String,
    /// Lines of the cloud's entry (`backup_service: cbr`).
    pub cloud_extra: &'static str,
    /// The policies list: one policy named `crash` on `schedule`.
    pub policy: fn(schedule: &str) -> String,
    /// The ledger ids the history holds for `job`, earlier attempts included.
    pub recorded: fn(&Store, &JobRecord) -> Vec<String>,
    /// Asserts that what a `good` job made is as it should be: in the
    /// cloud once and available (or, for a drill, made once and deleted).
    pub check_good: fn(&World, &Store, &[&LedgerEntry], &JobRecord),
    /// What must not be left in the cloud afterwards (temporary snapshots,
    /// scratch volumes).
    pub leftovers: fn(&World) -> Vec<String>,
}

/// `VBS_CRASH_CYCLES`, or `default` (the long version is e.g.
/// `VBS_CRASH_CYCLES=300 cargo test --release --test agent crash_loop`).
pub fn cycles(default: u32) -> u32 {
    std::env::var("VBS_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// Waits (within a generous bound) until one of two daemons exits on its
/// own, and returns its exit status.
async fn first_to_exit(a: &mut Child, b: &mut Child) -> ExitStatus {
    let mut exited = None;
    wait_for("one of two daemons to give way", || {
        exited = a.try_wait().unwrap().or_else(|| b.try_wait().unwrap());
        exited.is_some()
    })
    .await;
    exited.unwrap()
}

/// Runs `cycles` kill-and-restart cycles of `kind`'s policy (moments drawn
/// from `seed`), then a last clean run, and asserts: no duplicates (at most
/// one resource per name), nothing lost (everything the cloud created is in
/// the history), what each good job made as it should be, nothing left
/// behind, every second daemon refused with its reason, and every job
/// ended good, missed or skipped. Returns every job in the history.
pub async fn crash_cycles(world: &World, kind: &Kind, cycles: u32, seed: u64) -> Vec<JobRecord> {
    let policy = world.write_config("", kind.cloud_extra, &(kind.policy)("*/2 * * * * *"));
    let history = world.path("state/history.db");
    let log = world.path("agent.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let mut rng = fastrand::Rng::with_seed(seed);
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
    assert_eq!(
        log_text()
            .matches("another vbs-agent is writing the history")
            .count(),
        refused,
        "every second daemon said why it stopped"
    );

    // A last, clean run: everything left unfinished is continued. Its
    // schedule no longer fires (a changed schedule starts afresh, without
    // catching up), so "every job finished" is not a moving target on a
    // machine too slow to ever be between two 2-second slots.
    world.write_config("", kind.cloud_extra, &(kind.policy)("0 0 3 1 1 *"));
    let started = log_text().matches("agent started").count();
    let mut agent = spawn_agent(&policy, &log);
    wait_for("the agent to start", || {
        log_text().matches("agent started").count() > started
    })
    .await;
    wait_for("every job to finish", || all_finished(&history)).await;
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
    let made: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.kind == kind.made).collect();
    let keys: Vec<String> = made.iter().map(|e| (kind.made_key)(e)).collect();
    let duplicates = names_made_twice(keys.iter().map(String::as_str));
    let known: BTreeSet<String> = jobs
        .iter()
        .flat_map(|job| (kind.recorded)(&store, job))
        .collect();
    let lost: Vec<_> = made.iter().filter(|e| !known.contains(&e.id)).collect();
    let good: Vec<&JobRecord> = jobs.iter().filter(|j| j.status == kind.good).collect();
    for job in &good {
        (kind.check_good)(world, &store, &made, job);
    }
    let left = (kind.leftovers)(world);
    let conn = rusqlite::Connection::open(&history).unwrap();
    let adopted: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE message LIKE '%adopted by name%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let continued = log_text()
        .matches("continuing jobs left unfinished")
        .count();
    let _ = writeln!(
        std::io::stderr(),
        "{} crash loop: {cycles} SIGKILL cycles, {refused} second daemons refused, {} jobs ({} {}), {} made, {continued} restarts continued unfinished jobs, {adopted} adopted by name, {} duplicates, {} lost, {} left behind",
        kind.name,
        jobs.len(),
        good.len(),
        kind.good.as_str(),
        made.len(),
        duplicates.len(),
        lost.len(),
        left.len()
    );
    assert!(duplicates.is_empty(), "made twice: {duplicates:?}");
    assert!(lost.is_empty(), "missing from the history: {lost:#?}");
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(!good.is_empty());
    let ended_wrong: Vec<&JobRecord> = jobs
        .iter()
        .filter(|j| {
            j.status != kind.good
                && !matches!(j.status, JobStatus::Missed | JobStatus::SkippedOverlap)
        })
        .collect();
    assert!(ended_wrong.is_empty(), "{ended_wrong:#?}");
    jobs
}
