//! A storm of faults from the cloud — 20% server errors, 5% throttling, 2%
//! dropped connections, 1% malformed answers — and every job still reaches
//! the terminal status it deserves, with the retries in the event log, for
//! every policy kind (the storm itself is `helper::storm`).

use std::time::Duration;

use crate::helper::sim::VolumeFault;
use crate::helper::storm::{storm, Kind};
use crate::helper::{
    backup_ids, failing_server, failing_volume, policy_yaml, server, server_id, server_policy_yaml,
    snapshot_ids, snapshot_policy_yaml, volume, volume_id, World,
};
use vbs_agent::store::JobStatus;

const SWIFT_DOWN: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";
const DISK_SNAPSHOT_FAILED: &str = "Creating a snapshot of the disk failed";
const TIMEOUT: &str = "    completion_timeout: 2m\n";

fn five(of: fn(u32) -> String) -> Vec<String> {
    (1..=5).map(of).collect()
}

const BACKUPS: Kind = Kind {
    policy: |schedule| policy_yaml("storm", schedule, &five(volume_id), TIMEOUT),
    targets: 5,
    failing: || volume_id(5),
    check_failed: |job| {
        assert_eq!(
            (job.status, job.fail_reason.as_deref()),
            (JobStatus::Failed, Some(SWIFT_DOWN)),
            "{job:#?}"
        );
    },
    made: "backup",
    // No temporary snapshot is left behind.
    leftovers: snapshot_ids,
};

const SNAPSHOTS: Kind = Kind {
    policy: |schedule| snapshot_policy_yaml("storm", schedule, &five(volume_id), TIMEOUT),
    targets: 5,
    failing: || volume_id(5),
    check_failed: |job| assert_eq!(job.status, JobStatus::Failed, "{job:#?}"),
    made: "snapshot",
    // A snapshot policy makes no backup.
    leftovers: backup_ids,
};

const SERVER_BACKUPS: Kind = Kind {
    policy: |schedule| server_policy_yaml("storm", schedule, &five(server_id), TIMEOUT),
    targets: 5,
    failing: || server_id(5),
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
