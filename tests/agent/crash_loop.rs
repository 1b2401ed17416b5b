//! The agent killed with SIGKILL at random moments while jobs run, then
//! restarted, many times, for every policy kind and for drills (the cycle
//! itself is `helper::crash`): no duplicates, nothing lost, nothing left
//! behind.
//!
//! `VBS_CRASH_CYCLES` sets the number of cycles (default 20 for backups and
//! drills, 8 for the others; the long version is e.g. `VBS_CRASH_CYCLES=300 cargo
//! test --release --test agent crash_loop -- --nocapture`).

use std::io::Write;
use std::time::Duration;

use crate::helper::crash::{crash_cycles, cycles, Kind};
use crate::helper::sim::{Faults, LedgerEntry};
use crate::helper::{
    all_finished, backup_ids, cbr_checkpoint_name, cbr_policy_yaml, disk_vault, fast, load,
    make_backup, names_made_twice, policy_yaml, restore_volumes_left, server, server_id,
    server_policy_yaml, signal, snapshot_ids, snapshot_policy_yaml, spawn_agent, volume, volume_id,
    volumes_made, wait_for, World, CBR_CLOUD, PROJECT,
};
use vbs_agent::api::CloudClient;
use vbs_agent::config::PolicyKind;
use vbs_agent::store::{JobRecord, JobStatus, Store};

/// Slow answers widen the window between the cloud acting on a create and
/// the agent hearing of it, where a kill forces adoption by name.
fn slow_answers(seed: u64) -> Faults {
    Faults {
        seed,
        slow_rate: 0.3,
        slow_delay_ms: 400,
        ..Default::default()
    }
}

fn three_volumes() -> Vec<String> {
    (1..=3).map(volume_id).collect()
}

/// The one resource of `job`'s name, available, is the one it recorded.
fn made_once_as_recorded(made: &[&LedgerEntry], job: &JobRecord, recorded: Option<&String>) {
    let mine: Vec<_> = made
        .iter()
        .filter(|e| e.name == job.resource_name)
        .collect();
    assert_eq!(mine.len(), 1, "{job:#?}");
    assert_eq!(mine[0].status, "available");
    assert_eq!(Some(&mine[0].id), recorded);
}

/// Things made are told apart by their name.
fn by_name(e: &LedgerEntry) -> String {
    e.name.clone()
}

/// A CBR run's backups share the run's name: they are told apart by
/// volume and name.
fn by_volume_and_name(e: &LedgerEntry) -> String {
    format!("{} {}", e.volume_id, e.name)
}

const CBR_VAULT: &str = "crash-vault";

const CBR_BACKUP: Kind = Kind {
    name: "CBR backup",
    good: JobStatus::Succeeded,
    made: "cbr_backup",
    made_key: by_volume_and_name,
    cloud_extra: CBR_CLOUD,
    policy: |schedule| {
        let vault = format!("    vault: {CBR_VAULT}\n");
        cbr_policy_yaml("crash", schedule, &three_volumes(), &vault)
    },
    recorded: BACKUP.recorded,
    // The one backup of the job's volume under its checkpoint's name,
    // available, is the one it recorded.
    check_good: |_, _, made, job| {
        let name = cbr_checkpoint_name(job);
        let mine: Vec<_> = made
            .iter()
            .filter(|e| e.volume_id == job.target && e.name == name)
            .collect();
        assert_eq!(mine.len(), 1, "{job:#?}");
        assert_eq!(mine[0].status, "available", "{job:#?}");
        assert_eq!(Some(&mine[0].id), job.backup_id.as_ref(), "{job:#?}");
    },
    // Nothing is made through VBS.
    leftovers: |world| {
        backup_ids(world)
            .into_iter()
            .chain(snapshot_ids(world))
            .collect()
    },
};

const BACKUP: Kind = Kind {
    name: "backup",
    good: JobStatus::Succeeded,
    made: "backup",
    made_key: by_name,
    cloud_extra: "",
    policy: |schedule| policy_yaml("crash", schedule, &three_volumes(), ""),
    recorded: |store, job| {
        let earlier = store.earlier_attempts(job.id).unwrap();
        job.backup_id
            .iter()
            .cloned()
            .chain(earlier.into_iter().filter_map(|a| a.backup_id))
            .collect()
    },
    check_good: |_, _, made, job| made_once_as_recorded(made, job, job.backup_id.as_ref()),
    // No temporary snapshot is left behind.
    leftovers: snapshot_ids,
};

const SNAPSHOT: Kind = Kind {
    name: "snapshot",
    good: JobStatus::Succeeded,
    made: "snapshot",
    made_key: by_name,
    cloud_extra: "",
    policy: |schedule| snapshot_policy_yaml("crash", schedule, &three_volumes(), ""),
    recorded: |_, job| job.snapshot_id.iter().cloned().collect(),
    check_good: |_, _, made, job| made_once_as_recorded(made, job, job.snapshot_id.as_ref()),
    // A snapshot policy makes no backup.
    leftovers: backup_ids,
};

const SERVER: Kind = Kind {
    name: "server",
    good: JobStatus::Succeeded,
    made: "checkpoint",
    made_key: by_name,
    cloud_extra: "",
    policy: |schedule| server_policy_yaml("crash", schedule, &[server_id(1), server_id(2)], ""),
    recorded: |store, job| {
        store
            .server_columns(job.id)
            .unwrap()
            .checkpoint_id
            .into_iter()
            .collect()
    },
    check_good: |world, _, _, job| {
        let live = world.sim.checkpoints(PROJECT);
        let item = live
            .iter()
            .find(|c| Some(&c.item_id) == job.backup_id.as_ref())
            .unwrap_or_else(|| panic!("{job:#?}"));
        assert_eq!(
            (item.name.as_str(), item.status.as_str()),
            (job.resource_name.as_str(), "available")
        );
    },
    leftovers: |_| Vec::new(),
};

/// The volumes drilled: detached ones, so a backup by hand needs no force.
fn drilled_volumes() -> Vec<String> {
    [1, 3, 5].map(volume_id).to_vec()
}

/// A backup policy that never runs in the loop, whose drill runs on
/// `schedule`, all three volumes at once, each checked by a short verify.
fn drill_policy(schedule: &str) -> String {
    let drill = format!(
        "    drill:\n      schedule: \"{schedule}\"\n      max_concurrent: 3\n      verify:\n        command: [/bin/sh, -c, 'test -n \"$VBS_RESTORE_VOLUME_ID\" && sleep 0.2']\n"
    );
    policy_yaml("crash", "0 0 3 1 1 *", &drilled_volumes(), &drill)
}

/// The scratch volumes the agent made that are still in the cloud, live or
/// in the ledger.
fn scratch_volumes_left(world: &World) -> Vec<String> {
    let in_ledger = volumes_made(world)
        .into_iter()
        .filter(|e| e.deleted_at.is_none())
        .map(|e| format!("{} {} {} (ledger)", e.id, e.status, e.name));
    restore_volumes_left(world)
        .into_iter()
        .chain(in_ledger)
        .collect()
}

const DRILL: Kind = Kind {
    name: "drill",
    good: JobStatus::Verified,
    made: "volume",
    made_key: by_name,
    cloud_extra: "",
    policy: drill_policy,
    recorded: |store, job| {
        let columns = store.restore_columns(job.id).unwrap();
        columns.volume_id.into_iter().collect()
    },
    check_good: |_, store, made, job| {
        // The one scratch volume of the job's name: made, recorded, checked, gone.
        let columns = store.restore_columns(job.id).unwrap();
        let mine: Vec<_> = made
            .iter()
            .filter(|e| e.name == job.resource_name)
            .collect();
        assert_eq!(mine.len(), 1, "{job:#?}");
        assert_eq!(Some(&mine[0].id), columns.volume_id.as_ref(), "{job:#?}");
        assert_eq!(mine[0].status, "deleted", "{job:#?}");
        assert!(columns.volume_deleted_at.is_some(), "{job:#?}");
        assert_eq!(columns.verify.as_deref(), Some("passed"), "{job:#?}");
    },
    leftovers: scratch_volumes_left,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_duplicates_or_loses_a_backup() {
    let world = World::start((1..=3).map(|n| volume(n, None)).collect()).await;
    world.sim.set_faults(slow_answers(11));
    let cycles = cycles(20);
    crash_cycles(&world, &BACKUP, cycles, u64::from(cycles)).await;
}

/// The agent SIGKILLed at random moments while backup policies run on a
/// CBR cloud, with backups listed only 300 ms after their run: one
/// checkpoint per run name, at most one backup per volume and name, each
/// recorded by its job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_duplicates_or_loses_a_cbr_backup() {
    let world = World::start_cbr(
        (1..=3).map(|n| volume(n, None)).collect(),
        vec![disk_vault(CBR_VAULT, &[1, 2, 3])],
        Duration::from_millis(700),
        Duration::from_millis(300),
    )
    .await;
    world.sim.set_faults(slow_answers(19));
    let cycles = cycles(20);
    let jobs = crash_cycles(&world, &CBR_BACKUP, cycles, u64::from(cycles) + 19).await;

    // No run name was used for two checkpoints.
    let runs = world.sim.cbr_checkpoints(PROJECT);
    let runs_twice = names_made_twice(runs.iter().map(|c| c.name.as_str()));
    // Every backup the cloud made under the policy's names is the backup
    // of one job of that name and volume, which recorded it.
    let ledger = world.sim.ledger();
    let made: Vec<&LedgerEntry> = ledger.iter().filter(|e| e.kind == "cbr_backup").collect();
    let unrecorded: Vec<_> = made
        .iter()
        .filter(|e| {
            !jobs.iter().any(|j| {
                j.target == e.volume_id
                    && cbr_checkpoint_name(j) == e.name
                    && j.backup_id.as_ref() == Some(&e.id)
            })
        })
        .collect();
    let backed_up: Vec<&JobRecord> = jobs.iter().filter(|j| j.backup_id.is_some()).collect();
    let _ = writeln!(
        std::io::stderr(),
        "CBR crash loop: {cycles} SIGKILL cycles, {} jobs ({} succeeded), {} checkpoints, {} backups, {} run names used twice, {} backups not recorded by their job",
        jobs.len(),
        jobs.iter().filter(|j| j.status == JobStatus::Succeeded).count(),
        runs.len(),
        made.len(),
        runs_twice.len(),
        unrecorded.len(),
    );
    assert!(
        runs_twice.is_empty(),
        "checkpoints made twice: {runs_twice:?}"
    );
    assert!(
        unrecorded.is_empty(),
        "not recorded by their job: {unrecorded:#?}"
    );
    assert_eq!(backed_up.len(), made.len());
    assert!(jobs.iter().all(|j| j.service() == "cbr"), "{jobs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_duplicates_or_loses_a_snapshot() {
    let world = World::start((1..=3).map(|n| volume(n, None)).collect()).await;
    world.sim.set_faults(slow_answers(13));
    crash_cycles(&world, &SNAPSHOT, cycles(8), 3).await;
}

/// The agent SIGKILLed at random moments while server jobs run, then
/// restarted: no server backup twice, none missing from the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_duplicates_a_server_backup() {
    let world = World::start_servers(
        vec![server(1), server(2)],
        Duration::from_millis(700),
        Duration::from_millis(300),
    )
    .await;
    world.sim.set_faults(slow_answers(7));
    crash_cycles(&world, &SERVER, cycles(8), 5).await;
}

/// The agent SIGKILLed at random moments while drills create, restore into,
/// verify and delete scratch volumes: afterwards no scratch volume is left,
/// none was made twice, and each is linked to a recorded drill job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_the_agent_never_leaves_or_duplicates_a_scratch_volume() {
    let world = World::start_restores(
        [1, 3, 5].map(|n| volume(n, None)).to_vec(),
        Duration::from_millis(300),
        Duration::from_millis(700),
    )
    .await;
    // Something to restore: one backup of each volume, made by hand.
    let config = load(&world.write_config("", "", &drill_policy("0 0 3 1 1 *")));
    let client = CloudClient::new(&config.clouds["sim"], fast()).unwrap();
    for volume in drilled_volumes() {
        make_backup(&client, &volume, "before-the-loop").await;
    }
    wait_for("the backups to be available", || {
        world
            .sim
            .backups(PROJECT)
            .iter()
            .all(|b| b.status == "available")
    })
    .await;
    world.sim.set_faults(slow_answers(17));
    let cycles = cycles(20);
    let jobs = crash_cycles(&world, &DRILL, cycles, 17).await;

    // Every scratch volume the cloud ever made belongs to one drill job:
    // its name is the job's, and the job recorded its id.
    let store = Store::open_read_only(&world.path("state/history.db")).unwrap();
    let volumes = volumes_made(&world);
    let mut per_job = std::collections::BTreeMap::<i64, usize>::new();
    for made in &volumes {
        let job = jobs
            .iter()
            .find(|j| j.resource_name == made.name)
            .unwrap_or_else(|| panic!("no drill job of this name: {made:#?}"));
        assert_eq!(job.kind, PolicyKind::Restore);
        let recorded = store.restore_columns(job.id).unwrap().volume_id;
        assert_eq!(recorded.as_ref(), Some(&made.id), "{job:#?}");
        *per_job.entry(job.id).or_default() += 1;
    }
    assert!(per_job.values().all(|n| *n == 1), "{per_job:?}");
    let count = |status| jobs.iter().filter(|j| j.status == status).count();
    let _ = writeln!(
        std::io::stderr(),
        "drills: {cycles} SIGKILL cycles, {} drill jobs ({} verified, {} skipped_overlap, {} missed), {} scratch volumes made, {} left, {} jobs with more than one",
        jobs.len(),
        count(JobStatus::Verified),
        count(JobStatus::SkippedOverlap),
        count(JobStatus::Missed),
        volumes.len(),
        scratch_volumes_left(&world).len(),
        per_job.values().filter(|n| **n > 1).count(),
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
    wait_for("the interrupted job to end", || all_finished(&history)).await;
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
