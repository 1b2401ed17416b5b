//! The CBR calls against the simulated CBR over HTTP: a backup run and the
//! resources it skips, finding the run's backups once they are listed,
//! failures explained by the operation log, deletion until 404, paging by
//! offset, and binding disks to a vault.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::api_client::Calls;
use crate::helper::sim::SimVault;
use crate::helper::{failing_volume, fast, volume, volume_id, World, PROJECT};
use vbs_agent::api::types::CbrBackup;
use vbs_agent::api::types::JobState;
use vbs_agent::api::{ApiError, CloudClient, ErrorClass, NewCheckpoint, NewDiskFromBackup, DISK};

const VAULT: &str = "5f7c0d8e-6a39-4c57-9b0f-2f1c6f3d9a10";
const OTHER_VAULT: &str = "0b8e4a52-3c1d-4f6e-8a7b-9c0d1e2f3a4b";

fn vault(id: &str, volumes: &[u32]) -> SimVault {
    SimVault {
        project: PROJECT.into(),
        id: id.into(),
        name: format!("vault-{}", &id[..4]),
        object_type: "disk".into(),
        resources: volumes.iter().map(|n| volume_id(*n)).collect(),
        policy_id: None,
    }
}

async fn world(volumes: Vec<vbs_sim::SimVolume>, vaults: Vec<SimVault>) -> World {
    World::start_cbr(
        volumes,
        vaults,
        Duration::from_millis(300),
        Duration::from_millis(200),
    )
    .await
}

fn client(world: &World, calls: &Arc<Calls>) -> CloudClient {
    let config = world.config("0 0 3 * * *", &[volume_id(1)], "", false);
    CloudClient::new(&config.clouds["sim"], fast())
        .unwrap()
        .with_observer(calls.clone())
}

/// Asks `probe` every 50 ms until it gives a value; fails after 10 s.
async fn eventually<T, F: Future<Output = Option<T>>>(mut probe: impl FnMut() -> F) -> T {
    for _ in 0..200 {
        if let Some(v) = probe().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not reached within 10 s");
}

fn run<'a>(resources: &'a [(&'a str, &'a str)], name: &'a str) -> NewCheckpoint<'a> {
    NewCheckpoint {
        vault_id: VAULT,
        resources,
        name,
        description: "made by vbs-agent",
        incremental: true,
    }
}

/// Runs a backup of volume 1 and waits for it: the checkpoint id and the
/// settled backup.
async fn back_up_volume_1(c: &CloudClient) -> (String, CbrBackup) {
    let v1 = volume_id(1);
    let checkpoint = c
        .create_checkpoint(&run(&[(v1.as_str(), DISK)], "nightly"))
        .await
        .unwrap();
    let mut backups = settled(c, &checkpoint.id, 1).await;
    (checkpoint.id, backups.remove(0))
}

/// The backups of a checkpoint once all of them settled.
async fn settled(c: &CloudClient, checkpoint: &str, expected: usize) -> Vec<CbrBackup> {
    eventually(|| async {
        let found = c
            .cbr_backups(&[("checkpoint_id", checkpoint)])
            .await
            .unwrap();
        let done = found.len() == expected && found.iter().all(|b| b.status != "protecting");
        done.then_some(found)
    })
    .await
}

#[tokio::test]
async fn a_run_backs_up_the_vaults_disks_and_names_what_it_skipped() {
    let w = world(
        vec![volume(1, None), volume(2, None), volume(3, None)],
        vec![vault(VAULT, &[1, 2])],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (v1, v2, v3) = (volume_id(1), volume_id(2), volume_id(3));
    let resources = [
        (v1.as_str(), DISK),
        (v2.as_str(), DISK),
        (v3.as_str(), DISK),
    ];
    let checkpoint = c
        .create_checkpoint(&run(&resources, "vbsagent_nightly_20261203T0300"))
        .await
        .unwrap();
    assert_eq!(checkpoint.status.as_deref(), Some("protecting"));
    let skipped = checkpoint.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, v3);
    assert_eq!(skipped[0].code.as_deref(), Some("BackupService.6302"));

    // The answer names no backups, and the list shows them only later.
    let early = c
        .cbr_backups(&[("checkpoint_id", &checkpoint.id)])
        .await
        .unwrap();
    assert!(early.is_empty(), "{early:?}");
    let backups = settled(&c, &checkpoint.id, 2).await;
    let mut disks: Vec<&str> = backups
        .iter()
        .filter_map(|b| b.resource_id.as_deref())
        .collect();
    disks.sort();
    assert_eq!(disks, [v1.as_str(), v2.as_str()]);
    for b in &backups {
        assert_eq!(b.status, "available");
        assert_eq!(b.name.as_deref(), Some("vbsagent_nightly_20261203T0300"));
        assert_eq!(b.resource_size, Some(8));
        assert_eq!(b.extend_info.auto_trigger, Some(false));
        assert!(b.created_at.is_some(), "CBR's +00:00 times are read");
        let one = c.cbr_backup(&b.id).await.unwrap();
        assert_eq!(one.checkpoint_id.as_deref(), Some(checkpoint.id.as_str()));
    }
    let done = c.cbr_checkpoint(&checkpoint.id).await.unwrap();
    assert_eq!(done.status.as_deref(), Some("available"));
    // The same backups are found by the run's name, for adopting them.
    let by_name = c
        .cbr_backups(&[
            ("name", "vbsagent_nightly_20261203T0300"),
            ("resource_id", &v1),
        ])
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
}

#[tokio::test]
async fn a_disk_being_backed_up_is_skipped_and_a_run_of_nothing_is_refused() {
    let w = world(
        vec![volume(1, None), volume(2, None)],
        vec![vault(VAULT, &[1, 2])],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (v1, v2) = (volume_id(1), volume_id(2));
    c.create_checkpoint(&run(&[(v1.as_str(), DISK)], "first"))
        .await
        .unwrap();
    let both = [(v1.as_str(), DISK), (v2.as_str(), DISK)];
    let second = c.create_checkpoint(&run(&both, "second")).await.unwrap();
    let skipped = second.skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].id, v1);
    assert_eq!(skipped[0].code.as_deref(), Some("BackupService.6125"));

    let err: ApiError = c.create_checkpoint(&run(&both, "third")).await.unwrap_err();
    assert_eq!(err.status, Some(400));
    assert_eq!(err.code.as_deref(), Some("BackupService.0001"));
    assert_eq!(err.class, ErrorClass::Permanent);
}

#[tokio::test]
async fn a_failed_backup_is_explained_by_its_operation_log() {
    let w = world(
        vec![failing_volume(1, "disk detached during backup")],
        vec![vault(VAULT, &[1])],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let v1 = volume_id(1);
    let (checkpoint, backup) = back_up_volume_1(&c).await;
    assert_eq!(backup.status, "error");
    let logs = c
        .operation_logs(&[("operation_type", "backup"), ("resource_id", &v1)])
        .await
        .unwrap();
    let log = logs
        .iter()
        .find(|l| l.checkpoint_id.as_deref() == Some(checkpoint.as_str()))
        .expect("the run's log");
    assert_eq!(log.status.as_deref(), Some("failed"));
    assert_eq!(log.error_info.code(), Some("BackupService.7003"));
    assert_eq!(
        log.error_info.message(),
        Some("disk detached during backup")
    );
    assert_eq!(log.backup_id(), Some(backup.id.as_str()));
    let done = c.cbr_checkpoint(&checkpoint).await.unwrap();
    assert_eq!(done.status.as_deref(), Some("error"));
}

#[tokio::test]
async fn a_deleted_backup_stays_deleting_until_it_is_gone() {
    let w = world(vec![volume(1, None)], vec![vault(VAULT, &[1])]).await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (checkpoint, backup) = back_up_volume_1(&c).await;
    let id = backup.id;
    c.delete_cbr_backup(&id).await.unwrap();
    assert_eq!(c.cbr_backup(&id).await.unwrap().status, "deleting");
    let gone = eventually(|| async { c.cbr_backup(&id).await.err() }).await;
    assert_eq!(gone.status, Some(404));
    assert_eq!(gone.code.as_deref(), Some("BackupService.6200"));
    assert!(c
        .cbr_backups(&[("checkpoint_id", &checkpoint)])
        .await
        .unwrap()
        .is_empty());
    let ledger = w.sim.ledger();
    let entry = ledger.iter().find(|e| e.id == id).unwrap();
    assert!(entry.deleted_at.is_some());
}

#[tokio::test]
async fn lists_are_followed_by_offset_up_to_their_count() {
    let volumes: Vec<u32> = (1..=150).collect();
    let w = world(
        volumes.iter().map(|n| volume(*n, None)).collect(),
        vec![vault(VAULT, &volumes)],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    // No resources named: the run takes every disk of the vault.
    let checkpoint = c.create_checkpoint(&run(&[], "all")).await.unwrap();
    assert_eq!(checkpoint.vault.as_ref().unwrap().resources.len(), 150);
    settled(&c, &checkpoint.id, 150).await;
    calls.take();
    let all = c.cbr_backups(&[("vault_id", VAULT)]).await.unwrap();
    assert_eq!(all.len(), 150);
    let mut ids: Vec<&str> = all.iter().map(|b| b.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 150, "no backup listed twice");
    let pages = calls.take_with_paths();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(!pages[0].contains("offset="), "{}", pages[0]);
    assert!(pages[1].contains("offset=100"), "{}", pages[1]);
}

#[tokio::test]
async fn disks_are_bound_to_a_vault_unless_another_holds_them() {
    let w = world(
        vec![volume(1, None), volume(2, None)],
        vec![vault(VAULT, &[]), vault(OTHER_VAULT, &[2])],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (v1, v2) = (volume_id(1), volume_id(2));
    let found = c.vaults(&[("name", "vault-5f7c")]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].holds(&v1));
    let added = c
        .add_to_vault(VAULT, vbs_agent::api::DISK, &[&v1])
        .await
        .unwrap();
    assert_eq!(added, [v1.as_str()]);
    assert!(c.vault(VAULT).await.unwrap().holds(&v1));
    let err = c
        .add_to_vault(VAULT, vbs_agent::api::DISK, &[&v2])
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("BackupService.6103"));
    assert_eq!(err.class, ErrorClass::Permanent);
}

#[tokio::test]
async fn a_disk_backup_restores_onto_its_own_disk_one_restore_at_a_time() {
    let w = world(
        vec![volume(1, None), volume(3, None)],
        vec![vault(VAULT, &[1, 3])],
    )
    .await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (v1, v3) = (volume_id(1), volume_id(3));
    let (_, backup) = back_up_volume_1(&c).await;
    let v3_run = c
        .create_checkpoint(&run(&[(v3.as_str(), DISK)], "other"))
        .await
        .unwrap();
    let other = settled(&c, &v3_run.id, 1).await.remove(0);

    let elsewhere = c.restore_cbr_backup(&backup.id, &v3).await.unwrap_err();
    assert_eq!(elsewhere.class, ErrorClass::Permanent);
    c.restore_cbr_backup(&backup.id, &v1).await.unwrap();
    assert_eq!(c.cbr_backup(&backup.id).await.unwrap().status, "restoring");
    let again = c.restore_cbr_backup(&backup.id, &v1).await.unwrap_err();
    assert_eq!(again.code.as_deref(), Some("BackupService.2005"));
    // Another backup's restore is refused while the first runs (2 s).
    let busy = c.restore_cbr_backup(&other.id, &v3).await.unwrap_err();
    assert_eq!(busy.code.as_deref(), Some("BackupService.2010"));
    assert_eq!(busy.class, ErrorClass::Busy);
    eventually(|| async {
        let b = c.cbr_backup(&backup.id).await.unwrap();
        (b.status == "available").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_backup_is_shared_once_with_each_project_and_unshared() {
    let w = world(vec![volume(1, None)], vec![vault(VAULT, &[1])]).await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (_, backup) = back_up_volume_1(&c).await;
    let dr = "075e6035d300d48c2fd0c00b78b71ebf";
    let added = c.share_cbr_backup(&backup.id, &[dr]).await.unwrap();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].dest_project_id.as_deref(), Some(dr));
    assert_eq!(added[0].status.as_deref(), Some("pending"));
    let twice = c.share_cbr_backup(&backup.id, &[dr]).await.unwrap_err();
    assert_eq!(twice.code.as_deref(), Some("BackupService.6703"));
    assert_eq!(c.cbr_members(&backup.id).await.unwrap().len(), 1);
    c.unshare_cbr_backup(&backup.id, dr).await.unwrap();
    assert!(c.cbr_members(&backup.id).await.unwrap().is_empty());
    let gone = c.unshare_cbr_backup(&backup.id, dr).await.unwrap_err();
    assert_eq!(gone.status, Some(404));
}

#[tokio::test]
async fn a_new_disk_is_made_from_a_backup_through_an_evs_job() {
    let w = world(vec![volume(1, None)], vec![vault(VAULT, &[1])]).await;
    let calls = Arc::new(Calls::default());
    let c = client(&w, &calls);
    let (_, backup) = back_up_volume_1(&c).await;
    let az = backup.resource_az.clone().unwrap();
    fn disk<'a>(backup: &'a str, az: &'a str, size_gb: u64) -> NewDiskFromBackup<'a> {
        NewDiskFromBackup {
            backup_id: backup,
            availability_zone: az,
            size_gb,
            volume_type: "SSD",
            name: "vbsagent-drill-1",
            description: "restore test",
        }
    }
    let elsewhere = c
        .create_disk_from_backup(&disk(&backup.id, "elsewhere-1a", 8))
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code.as_deref(), Some("EVS.1049"));
    let small = c
        .create_disk_from_backup(&disk(&backup.id, &az, 4))
        .await
        .unwrap_err();
    assert_eq!(small.code.as_deref(), Some("EVS.1022"));

    let job_id = c
        .create_disk_from_backup(&disk(&backup.id, &az, 8))
        .await
        .unwrap();
    let first = c.volume_job(&job_id).await.unwrap();
    assert_eq!(first.state, JobState::Running);
    let done = eventually(|| async {
        let job = c.volume_job(&job_id).await.unwrap();
        (job.state != JobState::Running).then_some(job)
    })
    .await;
    assert_eq!(done.state, JobState::Success);
    assert_eq!(done.job_type.as_deref(), Some("createVolume"));
    let new_disk = done.entities["volume_id"].clone();
    let v = c.volume(&new_disk).await.unwrap();
    assert_eq!((v.status.as_str(), v.size), ("available", Some(8)));
    assert_eq!(v.name.as_deref(), Some("vbsagent-drill-1"));
    assert_eq!(v.metadata.get("src_backup_id"), Some(&backup.id));
}
