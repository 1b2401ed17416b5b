//! A storm of faults from the cloud — 20% server errors, 5% throttling, 2%
//! dropped connections, 1% malformed answers — and every job still reaches
//! the terminal status it deserves, with the retries in the event log, for
//! every policy kind (the storm itself is `helper::storm`).

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::helper::sim::{LedgerEntry, VolumeFault};
use crate::helper::storm::{storm, Kind};
use crate::helper::{
    backup_ids, cbr_checkpoint_name, cbr_policy_yaml, disk_vault, failing_server, failing_volume,
    policy_yaml, server, server_id, server_policy_yaml, snapshot_ids, snapshot_policy_yaml, volume,
    volume_id, World, CBR_CLOUD, PROJECT,
};
use vbs_agent::store::{JobRecord, JobStatus};

const SWIFT_DOWN: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";
const DISK_SNAPSHOT_FAILED: &str = "Creating a snapshot of the disk failed";
const TIMEOUT: &str = "    completion_timeout: 2m\n";

fn five(of: fn(u32) -> String) -> Vec<String> {
    (1..=5).map(of).collect()
}

const BACKUPS: Kind = Kind {
    policy: |schedule| policy_yaml("storm", schedule, &five(volume_id), TIMEOUT),
    targets: 5,
    failing: || vec![volume_id(5)],
    check_failed: |job| {
        assert_eq!(
            (job.status, job.fail_reason.as_deref()),
            (JobStatus::Failed, Some(SWIFT_DOWN)),
            "{job:#?}"
        );
    },
    made: "backup",
    mine: by_name,
    cloud_extra: "",
    // No temporary snapshot is left behind.
    leftovers: snapshot_ids,
};

/// What a job made is found by its name.
fn by_name(e: &LedgerEntry, job: &JobRecord) -> bool {
    e.name == job.resource_name
}

const CBR_VAULT: &str = "storm-vault";
const CBR_BACKUP_FAILED: &str = "The disk backup failed: the storage pool is degraded.";

/// On CBR: 1 and 2 back up; 3's backups end in `error`; 4 is always being
/// backed up (by hand, a backup that never finishes) so every run skips it
/// (`6125`); 5 is not in the vault.
const CBR_BACKUPS: Kind = Kind {
    policy: |schedule| {
        let extra = format!("{TIMEOUT}    vault: {CBR_VAULT}\n");
        cbr_policy_yaml("storm", schedule, &five(volume_id), &extra)
    },
    targets: 5,
    failing: || vec![volume_id(3), volume_id(4), volume_id(5)],
    check_failed: |job| {
        assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
        let reason = job.fail_reason.as_deref().unwrap_or_default();
        let says = |parts: &[&str]| parts.iter().all(|p| reason.contains(p));
        let right = match job.target.as_str() {
            // The reason comes from the backup's operation log.
            t if t == volume_id(3) => says(&["BackupService.7003", CBR_BACKUP_FAILED]),
            // Skipped as busy; or, after a lost answer (the run found by
            // name, its list of skipped volumes unknown), no backup of it.
            t if t == volume_id(4) => {
                says(&["BackupService.6125", t]) || says(&["probably skipped", t])
            }
            t => says(&[t, CBR_VAULT, "not in CBR vault"]),
        };
        assert!(right, "{job:#?}");
    },
    made: "cbr_backup",
    mine: |e, job| e.volume_id == job.target && e.name == cbr_checkpoint_name(job),
    cloud_extra: CBR_CLOUD,
    // Nothing is made through VBS.
    leftovers: |world| {
        backup_ids(world)
            .into_iter()
            .chain(snapshot_ids(world))
            .collect()
    },
};

const SNAPSHOTS: Kind = Kind {
    policy: |schedule| snapshot_policy_yaml("storm", schedule, &five(volume_id), TIMEOUT),
    targets: 5,
    failing: || vec![volume_id(5)],
    check_failed: |job| assert_eq!(job.status, JobStatus::Failed, "{job:#?}"),
    made: "snapshot",
    mine: by_name,
    cloud_extra: "",
    // A snapshot policy makes no backup.
    leftovers: backup_ids,
};

const SERVER_BACKUPS: Kind = Kind {
    policy: |schedule| server_policy_yaml("storm", schedule, &five(server_id), TIMEOUT),
    targets: 5,
    failing: || vec![server_id(5)],
    check_failed: |job| {
        assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
        assert!(
            job.fail_reason
                .as_deref()
                .is_some_and(|r| r.contains(DISK_SNAPSHOT_FAILED)),
            "{job:#?}"
        );
    },
    made: "checkpoint",
    mine: by_name,
    cloud_extra: "",
    leftovers: |_| Vec::new(),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_reaches_the_right_terminal_status_through_a_fault_storm() {
    let mut volumes: Vec<_> = (1..=4).map(|n| volume(n, None)).collect();
    volumes.push(failing_volume(5, SWIFT_DOWN));
    let world = World::start(volumes).await;
    storm(&world, &BACKUPS, 2026).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_snapshot_job_reaches_the_right_terminal_status_through_a_fault_storm() {
    let mut volumes: Vec<_> = (1..=4).map(|n| volume(n, None)).collect();
    volumes.push(volume(5, Some(VolumeFault::SnapshotError)));
    let world = World::start(volumes).await;
    storm(&world, &SNAPSHOTS, 2027).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_job_reaches_the_right_terminal_status_through_a_fault_storm() {
    let mut servers: Vec<_> = (1..=4).map(server).collect();
    servers.push(failing_server(5, DISK_SNAPSHOT_FAILED, 6005));
    let world = World::start_servers(
        servers,
        Duration::from_millis(500),
        Duration::from_millis(300),
    )
    .await;
    storm(&world, &SERVER_BACKUPS, 2028).await;
}

/// The storm on a CBR cloud, with CBR's flat errors (busy backup runs
/// answered 500 `BackupService.0002`): volumes that back up succeed, the
/// one whose backup ends in `error` fails with the operation log's reason,
/// the one CBR skips as busy and the one not in the vault fail saying so,
/// and every backup made under the policy's names is recorded by its job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cbr_job_reaches_the_right_terminal_status_through_a_fault_storm() {
    let mut volumes: Vec<_> = (1..=2).map(|n| volume(n, None)).collect();
    volumes.push(failing_volume(3, CBR_BACKUP_FAILED));
    volumes.push(volume(4, Some(VolumeFault::BackupNeverFinishes)));
    volumes.push(volume(5, None));
    let vault = disk_vault(CBR_VAULT, &[1, 2, 3, 4]);
    let vault_id = vault.id.clone();
    let world = World::start_cbr(
        volumes,
        vec![vault],
        Duration::from_millis(500),
        Duration::from_millis(300),
    )
    .await;
    // Volume 4 is being backed up, by hand, for ever.
    let run = world
        .post_by_hand(
            &format!("/cbr/v3/{PROJECT}/checkpoints"),
            json!({"checkpoint": {"vault_id": vault_id, "parameters": {
                "name": "by-hand", "resources": [volume_id(4)]}}}),
        )
        .await;
    assert!(run["checkpoint"]["id"].is_string(), "{run}");

    let jobs = storm(&world, &CBR_BACKUPS, 2029).await;

    // Every backup made under the policy's names is recorded by its job.
    let ledger = world.sim.ledger();
    let made: Vec<_> = ledger
        .iter()
        .filter(|e| e.kind == "cbr_backup" && e.name.starts_with("storm-"))
        .collect();
    let unrecorded: Vec<_> = made
        .iter()
        .filter(|e| !jobs.iter().any(|j| j.backup_id.as_ref() == Some(&e.id)))
        .collect();
    assert!(unrecorded.is_empty(), "not recorded: {unrecorded:#?}");
    assert!(jobs.iter().all(|j| j.service() == "cbr"), "{jobs:#?}");
    let count = |status| jobs.iter().filter(|j| j.status == status).count();
    let _ = writeln!(
        std::io::stderr(),
        "CBR fault storm: {} jobs ({} succeeded, {} failed, {} skipped_overlap), {} backups made, {} not recorded",
        jobs.len(),
        count(JobStatus::Succeeded),
        count(JobStatus::Failed),
        count(JobStatus::SkippedOverlap),
        made.len(),
        unrecorded.len(),
    );
}
