//! Restores against the simulator: `vbs-agent restore`'s engine call into a
//! new and an existing volume with both restore calls, and drills with
//! every bad case the issue names; each ends with a recorded outcome and
//! no scratch volume left in the cloud.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Europe::Berlin;

use crate::helper::nights::{self, Nights};
use crate::helper::sim::{VolumeDeletionFaults, VolumeFault};
use crate::helper::{
    backup_ids, cbr_policy_yaml, disk_vault, make_backup, policy_yaml, restore_volumes_left,
    volume, volume_id, volumes_made, Setup, World, CBR_CLOUD, PROJECT,
};
use vbs_agent::config::{RestoreInto, DRILL_SUFFIX};
use vbs_agent::engine::Engine;
use vbs_agent::engine::RestoreRequest;
use vbs_agent::metrics::Metrics;
use vbs_agent::notifier::Notifier;
use vbs_agent::store::{JobRecord, JobStatus, Trigger};

/// A backup policy `db` over `volumes` with `drill` as its drill block.
fn drilled(world: &World, volumes: &[String], drill: &str, cloud_extra: &str) -> Setup {
    let policies = policy_yaml(
        "db",
        "0 30 1 * * *",
        volumes,
        &format!("    drill:\n      schedule: \"0 0 5 * * SUN\"\n{drill}"),
    );
    Setup::new(
        crate::helper::load(&world.write_config("", cloud_extra, &policies)),
        crate::helper::fast(),
    )
}

impl Setup {
    /// Runs the policy named `name` once, now; returns its jobs.
    async fn run_named(&self, name: &str) -> Vec<JobRecord> {
        let policy = self.config.policy(name).unwrap();
        self.engine
            .run_policy(policy, Utc::now().trunc_subsecs(0), Trigger::Manual)
            .await
            .unwrap()
            .jobs
    }

    async fn backup_then_drill(&self) -> Vec<JobRecord> {
        let backups = self.run_named("db").await;
        assert!(
            backups.iter().all(|j| j.status == JobStatus::Succeeded),
            "{backups:#?}"
        );
        self.run_named(&format!("db{DRILL_SUFFIX}")).await
    }
}

/// Asserts that `job` failed with a reason naming each of `needles`, and
/// that no volume the agent made is left in the cloud.
fn assert_failed_cleanly(world: &World, job: &JobRecord, needles: &[&str]) {
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let reason = job.fail_reason.as_deref().unwrap_or_default();
    for needle in needles {
        assert!(reason.contains(needle), "`{needle}` not in: {reason}");
    }
    assert_eq!(restore_volumes_left(world), Vec::<String>::new());
}

/// A restore of `backup` on the simulator's cloud, asked for by `who`.
fn request(backup: impl Into<String>, into: RestoreInto, who: &str) -> RestoreRequest {
    RestoreRequest {
        cloud: "sim".into(),
        backup_id: backup.into(),
        into,
        requested_by: who.into(),
        timeout: Duration::from_secs(60),
    }
}

/// `v_restores` of job `id`: (restore_s, backup_age_s, verify, scratch_left).
fn restore_row(setup: &Setup, id: i64) -> (Option<f64>, Option<f64>, Option<String>, bool) {
    let conn = rusqlite::Connection::open(setup.config.history_path()).unwrap();
    conn.query_row(
        "SELECT restore_s, backup_age_s, verify, scratch_left FROM v_restores WHERE job_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_restores_verifies_and_deletes_its_scratch_volume() {
    let world = World::start(vec![volume(1, None), volume(3, None)]).await;
    let check = world.path("check.sh");
    std::fs::write(
        &check,
        "#!/bin/sh\necho \"checked $VBS_RESTORE_VOLUME_ID from $VBS_BACKUP_ID of $VBS_SOURCE_VOLUME_ID\"\ntest -n \"$VBS_RESTORE_VOLUME_ID\"\n",
    )
    .unwrap();
    let drill = format!(
        "      verify:\n        command: [/bin/sh, {}]\n",
        check.display()
    );
    let mut setup = drilled(&world, &[volume_id(1), volume_id(3)], &drill, "");
    let metrics = Metrics::new();
    setup.engine = Engine::new(
        &setup.config,
        Arc::clone(&setup.store),
        crate::helper::fast(),
    )
    .unwrap()
    .with_metrics(metrics.clone());
    let drills = setup.backup_then_drill().await;

    assert_eq!(drills.len(), 2);
    for job in &drills {
        assert_eq!(job.status, JobStatus::Verified, "{job:#?}");
        let (restore_s, age, verify, left) = restore_row(&setup, job.id);
        assert!(
            restore_s.is_some_and(|s| s > 0.0),
            "RTO recorded: {restore_s:?}"
        );
        assert!(
            age.is_some_and(|a| a >= 0.0),
            "backup age recorded: {age:?}"
        );
        assert_eq!(verify.as_deref(), Some("passed"));
        assert!(!left);
        let columns = setup.store.restore_columns(job.id).unwrap();
        let detail = columns.verify_detail.unwrap();
        assert!(detail.contains(&format!("of {}", job.target)), "{detail}");
        assert!(
            detail.contains(columns.volume_id.as_deref().unwrap()),
            "{detail}"
        );
    }
    assert_eq!(restore_volumes_left(&world), Vec::<String>::new());
    // One scratch volume per drill job, none made twice.
    let made = volumes_made(&world);
    assert_eq!(made.len(), 2, "{made:#?}");

    // Both restores are in the histogram, and each volume has its gauge.
    let page = metrics.encode().unwrap();
    assert!(
        page.lines()
            .any(|l| l == r#"vbs_agent_restore_duration_seconds_count{policy="db.drill"} 2"#),
        "{page}"
    );
    for job in &drills {
        let gauge = format!(
            r#"vbs_agent_restore_last_verified_timestamp_seconds{{policy="db.drill",target="{}"}} {}"#,
            job.target,
            job.finished_at.unwrap().timestamp()
        );
        assert!(page.lines().any(|l| l == gauge), "{gauge} in {page}");
    }
}

/// A drill of CBR backups: CBR restores a disk backup only onto its own
/// disk, so each drill makes a new disk from the backup through EVS,
/// verifies it and deletes it; the production disks are never restored
/// onto, and a manual restore onto another disk is refused with the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_of_cbr_backups_tests_each_on_a_new_disk_and_deletes_it() {
    let world = World::start_cbr(
        vec![volume(1, None), volume(3, None)],
        vec![disk_vault("sim-disks", &[1, 3])],
        Duration::from_millis(200),
        Duration::from_millis(200),
    )
    .await;
    let policies = cbr_policy_yaml(
        "db",
        "0 30 1 * * *",
        &[volume_id(1), volume_id(3)],
        "    vault: sim-disks\n    drill:\n      schedule: \"0 0 5 * * SUN\"\n      verify:\n        command: [/bin/sh, -c, 'test -n \"$VBS_RESTORE_VOLUME_ID\"']\n",
    );
    let setup = Setup::new(
        crate::helper::load(&world.write_config("", CBR_CLOUD, &policies)),
        crate::helper::fast(),
    );
    let drills = setup.backup_then_drill().await;
    assert_eq!(drills.len(), 2);
    let backups: Vec<String> = world
        .sim
        .cbr_backups(PROJECT)
        .into_iter()
        .map(|b| b.id)
        .collect();
    for job in &drills {
        assert_eq!(job.status, JobStatus::Verified, "{job:#?}");
        assert_eq!(job.service(), "cbr");
        assert!(
            backups.contains(job.backup_id.as_ref().unwrap()),
            "{job:#?}"
        );
        let columns = setup.store.restore_columns(job.id).unwrap();
        assert_eq!(columns.restore_api, "cbr");
        assert!(!restore_row(&setup, job.id).3, "no scratch left");
    }
    // One new disk per drill, each deleted; the production disks untouched.
    let made = volumes_made(&world);
    assert_eq!(made.len(), 2, "{made:#?}");
    assert!(made.iter().all(|v| v.status == "deleted"), "{made:#?}");
    let restored_onto = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/restore"))
        .count();
    assert_eq!(restored_onto, 0, "no CBR restore onto a production disk");

    // A restore onto another disk than the backup's own is refused with the rule.
    let report = setup
        .engine
        .restore(&request(
            drills
                .iter()
                .find(|j| j.target == volume_id(1))
                .unwrap()
                .backup_id
                .clone()
                .unwrap(),
            RestoreInto::Existing(volume_id(3)),
            "ops",
        ))
        .await
        .unwrap();
    let job = &report.jobs[0];
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    assert!(
        job.fail_reason
            .as_deref()
            .unwrap()
            .contains("only onto its own disk"),
        "{job:#?}"
    );
}

/// A drill whose disk from a CBR backup fails (the EVS job ends `FAIL`
/// after the disk was made): the drill fails with EVS's reason, and the
/// disk the job left is found by name, recorded and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_disk_from_a_cbr_backup_fails_the_drill_and_is_deleted() {
    let world = World::start_cbr(
        vec![volume(1, None)],
        vec![disk_vault("sim-disks", &[1])],
        Duration::from_millis(200),
        Duration::ZERO,
    )
    .await;
    let policies = cbr_policy_yaml(
        "db",
        "0 30 1 * * *",
        &[volume_id(1)],
        "    vault: sim-disks\n    drill:\n      schedule: \"0 0 5 * * SUN\"\n",
    );
    let setup = Setup::new(
        crate::helper::load(&world.write_config("", CBR_CLOUD, &policies)),
        crate::helper::fast(),
    );
    let backups = setup.run_named("db").await;
    assert_eq!(backups[0].status, JobStatus::Succeeded, "{backups:#?}");
    world.sim.set_volume_fault(
        PROJECT,
        &volume_id(1),
        Some(VolumeFault::RestoreError {
            fail_reason: "backend lost the chunk".into(),
        }),
    );
    let job = setup
        .run_named(&format!("db{DRILL_SUFFIX}"))
        .await
        .remove(0);
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let reason = job.fail_reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("EVS job") && reason.contains("backend lost the chunk"),
        "{reason}"
    );
    let made = volumes_made(&world);
    assert_eq!(made.len(), 1, "{made:#?}");
    assert_eq!(
        made[0].status, "deleted",
        "the disk the failed job made is gone: {made:#?}"
    );
    assert!(!restore_row(&setup, job.id).3, "no scratch left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_drill_rotates_through_every_volume() {
    let world = World::start_instant((1..=3).map(|n| volume(n, None)).collect()).await;
    let volumes: Vec<String> = (1..=3).map(volume_id).collect();
    let setup = drilled(&world, &volumes, "      sample: 2\n", "");
    setup.run_named("db").await;
    let first = setup.run_named("db.drill").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = setup.run_named("db.drill").await;
    let drilled: std::collections::BTreeSet<&str> = first
        .iter()
        .chain(&second)
        .map(|j| j.target.as_str())
        .collect();
    assert_eq!((first.len(), second.len()), (2, 2));
    assert_eq!(
        drilled.len(),
        3,
        "every volume within two drills: {drilled:?}"
    );
    assert!(first
        .iter()
        .chain(&second)
        .all(|j| j.status == JobStatus::Verified));
    assert_eq!(restore_volumes_left(&world), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_on_request_makes_a_new_volume_with_the_backups_data_and_keeps_it() {
    for api in ["cinder", "vendor"] {
        let world = World::start(vec![volume(1, None)]).await;
        let setup = drilled(
            &world,
            &[volume_id(1)],
            "",
            &format!("    restore_api: {api}\n"),
        );
        let backup = setup.run_named("db").await.remove(0).backup_id.unwrap();
        let report = setup
            .engine
            .restore(&request(
                backup.clone(),
                RestoreInto::NewVolume {
                    name: Some("restored-db".into()),
                    availability_zone: None,
                },
                "alice",
            ))
            .await
            .unwrap();
        let job = &report.jobs[0];
        assert_eq!(job.status, JobStatus::Succeeded, "{api}: {job:#?}");
        assert_eq!(job.policy, "restore.manual");
        assert_eq!(job.target, volume_id(1));
        let columns = setup.store.restore_columns(job.id).unwrap();
        assert_eq!(
            (columns.requested_by.as_str(), columns.restore_api.as_str()),
            ("alice", api)
        );
        assert_eq!(columns.restore_job_id.is_some(), api == "vendor");
        let restored = world
            .sim
            .volumes(PROJECT)
            .into_iter()
            .find(|v| Some(&v.id) == columns.volume_id.as_ref())
            .expect("the new volume stays");
        assert_eq!(restored.name.as_deref(), Some("restored-db"));
        assert_eq!(restored.status, "available");
        assert_eq!(restored.metadata.get("src_backup_id"), Some(&backup));
        // Every call of the restore is in the job's events.
        let calls: Vec<String> = setup
            .store
            .job_events(job.id)
            .unwrap()
            .into_iter()
            .filter_map(|e| Some(format!("{} {}", e.method?, e.path?)))
            .collect();
        let restore_call = match api {
            "cinder" => format!("POST /v3/{PROJECT}/backups/{backup}/restore"),
            _ => format!("POST /v2/{PROJECT}/cloudbackups/{backup}/restore"),
        };
        assert!(calls.contains(&restore_call), "{api}: {calls:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_an_existing_volume_leaves_it_in_place() {
    let world = World::start(vec![volume(1, None), volume(3, None)]).await;
    let setup = drilled(&world, &[volume_id(1)], "", "");
    let backup = setup.run_named("db").await.remove(0).backup_id.unwrap();
    let report = setup
        .engine
        .restore(&request(
            backup.clone(),
            RestoreInto::Existing(volume_id(3)),
            "bob",
        ))
        .await
        .unwrap();
    assert_eq!(
        report.jobs[0].status,
        JobStatus::Succeeded,
        "{:#?}",
        report.jobs
    );
    let target = world
        .sim
        .volumes(PROJECT)
        .into_iter()
        .find(|v| v.id == volume_id(3))
        .unwrap();
    assert_eq!(target.metadata.get("src_backup_id"), Some(&backup));
    assert_eq!(world.sim.volumes(PROJECT).len(), 2, "no volume made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_is_gone_is_an_error_before_anything_is_made() {
    let world = World::start(vec![volume(1, None)]).await;
    let setup = drilled(&world, &[volume_id(1)], "", "");
    let gone = "5a5a5a5a-0000-4000-8000-000000000000";
    let err = setup
        .engine
        .restore(&request(
            gone,
            RestoreInto::NewVolume {
                name: None,
                availability_zone: None,
            },
            "carol",
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert!(world.sim.volumes(PROJECT).len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_without_backups_fails_its_drill_with_the_reason() {
    let world = World::start(vec![volume(1, None)]).await;
    let setup = drilled(&world, &[volume_id(1)], "", "");
    let job = setup.run_named("db.drill").await.remove(0);
    assert_failed_cleanly(&world, &job, &["has no available backup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_volume_quota_fails_the_drill_with_the_clouds_message() {
    let world = World::start(vec![volume(1, None)]).await;
    world.sim.set_volume_quota(PROJECT, Some(1));
    let setup = drilled(&world, &[volume_id(1)], "", "");
    let job = setup.backup_then_drill().await.remove(0);
    assert_failed_cleanly(&world, &job, &["quota exhausted", "413"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_ending_in_error_restoring_fails_and_its_scratch_volume_goes() {
    let world = World::start(vec![volume(1, None)]).await;
    let setup = drilled(&world, &[volume_id(1)], "", "");
    setup.run_named("db").await;
    world.sim.set_volume_fault(
        PROJECT,
        &volume_id(1),
        Some(VolumeFault::RestoreError {
            fail_reason: "chunk 7 unreadable".into(),
        }),
    );
    let job = setup.run_named("db.drill").await.remove(0);
    assert_failed_cleanly(&world, &job, &["error_restoring"]);
    assert!(!restore_row(&setup, job.id).3);
}

/// A backup and a drill of volume 1 during which the cloud refuses every
/// DELETE with a 500, so its scratch volume is left behind (recorded);
/// afterwards the cloud deletes again.
async fn drill_leaving_scratch(world: &World) -> (Setup, JobRecord) {
    let setup = drilled(world, &[volume_id(1)], "      timeout: 15s\n", "");
    setup.run_named("db").await;
    world.sim.set_volume_deletion_faults(VolumeDeletionFaults {
        refused: u32::MAX,
        error_deleting: 0,
    });
    let job = setup.run_named("db.drill").await.remove(0);
    assert!(restore_row(&setup, job.id).3, "scratch_left");
    world
        .sim
        .set_volume_deletion_faults(VolumeDeletionFaults::default());
    (setup, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_volume_the_cloud_will_not_delete_is_recorded_and_swept_later() {
    let world = World::start(vec![volume(1, None)]).await;
    let (setup, job) = drill_leaving_scratch(&world).await;
    // The restore was good; the leftover is warned about, not hidden.
    assert_eq!(job.status, JobStatus::Verified, "{job:#?}");
    let warnings: Vec<String> = setup
        .store
        .job_events(job.id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "warning")
        .filter_map(|e| e.message)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("left behind")),
        "{warnings:#?}"
    );
    assert_eq!(restore_volumes_left(&world).len(), 1);

    // Now that the cloud deletes again, the next sweep removes it.
    assert_eq!(setup.engine.sweep_scratch().await.unwrap(), 1);
    assert!(!restore_row(&setup, job.id).3);
    assert_eq!(restore_volumes_left(&world), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_volume_left_behind_is_deleted_when_the_agent_starts() {
    let world = World::start(vec![volume(1, None)]).await;
    let (setup, job) = drill_leaving_scratch(&world).await;

    // No drill is due: the daemon deletes it at its start all the same.
    let Setup { config, store, .. } = setup;
    drop(store);
    let history = config.history_path();
    let daemon = crate::helper::Daemon::start_with(config, crate::helper::fast());
    crate::helper::wait_for("the leftover scratch volume to be gone", || {
        restore_volumes_left(&world).is_empty()
    })
    .await;
    crate::helper::wait_for("its deletion to be recorded", || {
        rusqlite::Connection::open(&history)
            .and_then(|c| {
                c.query_row(
                    "SELECT scratch_left FROM v_restores WHERE job_id = ?1",
                    [job.id],
                    |r| r.get::<_, bool>(0),
                )
            })
            .is_ok_and(|left| !left)
    })
    .await;
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_verify_is_killed_at_its_timeout_and_the_drill_fails() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let marker = world.path("child-still-running");
    let hang = world.path("hang.sh");
    // The command and a child it started both hang; the whole group goes.
    std::fs::write(
        &hang,
        format!("(sleep 4; touch {}) &\nsleep 30\n", marker.display()),
    )
    .unwrap();
    let drill = format!(
        "      verify:\n        command: [/bin/sh, {}]\n        timeout: 2s\n",
        hang.display()
    );
    let setup = drilled(&world, &[volume_id(1)], &drill, "");
    let job = setup.backup_then_drill().await.remove(0);
    assert_failed_cleanly(&world, &job, &["verify did not finish within 2s"]);
    assert_eq!(restore_row(&setup, job.id).2.as_deref(), Some("timed_out"));
    // The child went with the group: it never got to leave its mark.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!marker.exists(), "a child of verify outlived its timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_verify_fails_the_drill_with_its_output() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let drill =
        "      verify:\n        command: [/bin/sh, -c, \"echo checksum mismatch >&2; exit 3\"]\n";
    // The policy's notify block (default `on:`) writes each payload to a file.
    let payload = world.path("payload.json");
    let notify = format!(
        "    notify:\n      command: [sh, -c, 'cat > \"$0\"', {}]\n",
        payload.display()
    );
    let Setup {
        config,
        store,
        engine,
    } = drilled(&world, &[volume_id(1)], &format!("{drill}{notify}"), "");
    let notifier = Arc::new(Notifier::new(&config, Some(Arc::clone(&store))));
    let engine = engine.with_listener(notifier.clone());
    let setup = Setup {
        config,
        store,
        engine,
    };
    let job = setup.backup_then_drill().await.remove(0);
    assert_failed_cleanly(&world, &job, &["exit 3", "checksum mismatch"]);

    notifier.flush().await;
    let sent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&payload).unwrap()).unwrap();
    let scratch = setup.store.restore_columns(job.id).unwrap().volume_id;
    assert_eq!(sent["event"], "drill_failure", "{sent}");
    assert_eq!(sent["policy"], format!("db{DRILL_SUFFIX}"));
    assert_eq!(sent["job_id"], job.id);
    assert_eq!(sent["backup_id"].as_str(), job.backup_id.as_deref());
    assert!(scratch.is_some());
    assert_eq!(sent["volume_id"].as_str(), scratch.as_deref());
    assert_eq!(sent["verify"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_restores_the_backups_of_a_deleted_volume() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let setup = drilled(&world, &[volume_id(1)], "", "");
    let client =
        vbs_agent::api::CloudClient::new(&setup.config.clouds["sim"], crate::helper::fast())
            .unwrap();
    make_backup(&client, &volume_id(1), "by-hand").await;
    for snapshot in world.sim.snapshots(PROJECT) {
        client.delete_snapshot(&snapshot.id).await.unwrap();
    }
    crate::helper::wait_for("the snapshot to be gone", || {
        world.sim.snapshots(PROJECT).is_empty()
    })
    .await;
    client.delete_volume(&volume_id(1)).await.unwrap();
    crate::helper::wait_for("the source volume to be gone", || {
        world
            .sim
            .volumes(PROJECT)
            .iter()
            .all(|v| v.id != volume_id(1))
    })
    .await;
    let job = setup.run_named("db.drill").await.remove(0);
    assert_eq!(job.status, JobStatus::Verified, "{job:#?}");
    assert_eq!(restore_volumes_left(&world), Vec::<String>::new());
}

/// Nightly backups of five volumes with a weekly drill of two of them.
const DRILLED: nights::Kind = nights::Kind {
    cloud_extra: "",
    policy: |extra| {
        let volumes: Vec<String> = (1..=5).map(volume_id).collect();
        let extra = format!(
            "{extra}    drill:\n      schedule: \"0 0 5 * * SUN\"\n      sample: 2\n      verify:\n        command: [/bin/sh, -c, 'test -n \"$VBS_RESTORE_VOLUME_ID\"']\n"
        );
        policy_yaml("nightly", "0 30 1 * * *", &volumes, &extra)
    },
    retention: "{ keep_daily: 7 }",
    newest: 7,
    weeks: 0,
    made: |job| job.backup_id.clone(),
    listed: backup_ids,
};

/// A Sunday noon (Berlin) five weeks back: three weeks of slots that lie in
/// the past on any machine, so a backup is older than the restore of it.
fn sunday_five_weeks_ago() -> DateTime<Utc> {
    let day = (Utc::now() - TimeDelta::weeks(5))
        .with_timezone(&Berlin)
        .date_naive();
    let sunday = day - TimeDelta::days(i64::from(day.weekday().num_days_from_sunday()));
    sunday
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_local_timezone(Berlin)
        .unwrap()
        .with_timezone(&Utc)
}

/// Three simulated weeks: nightly backups of five volumes, and a weekly
/// drill of two of them (`sample: 2`) at its slot on the same moved clocks.
/// Every volume is drilled, the longest undrilled first, each restore of
/// the night's backup is verified with its RTO and recovery point, and no
/// scratch volume is left in the cloud.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_sampled_drills_verify_every_volume_and_leave_no_scratch_volume() {
    let world = World::start_restores(
        (1..=5).map(|n| volume(n, None)).collect(),
        Duration::from_millis(100),
        Duration::from_millis(300),
    )
    .await;
    let first = sunday_five_weeks_ago();
    let nights = Nights::starting(&world, &DRILLED, first);
    let backup = nights.config.policy("nightly").unwrap().clone();
    let drill = nights.config.policy("nightly.drill").unwrap().clone();
    let last_night = *nights.slots.last().unwrap();
    let drill_slots: Vec<DateTime<Utc>> = drill
        .schedule
        .upcoming(first, Berlin, 4)
        .into_iter()
        .filter(|s| *s < last_night + TimeDelta::days(1))
        .collect();
    assert_eq!(drill_slots.len(), 3, "{drill_slots:?}");
    let mut slots: Vec<(DateTime<Utc>, bool)> = nights.slots.iter().map(|s| (*s, false)).collect();
    slots.extend(drill_slots.iter().map(|s| (*s, true)));
    slots.sort();

    // Nights and drills in time order; a drill restores last night's backups.
    let mut newest: BTreeMap<String, String> = BTreeMap::new();
    let mut drills = Vec::new();
    for (slot, is_drill) in slots {
        nights.enter(&world, slot);
        let policy = if is_drill { &drill } else { &backup };
        let jobs = nights
            .engine
            .run_policy(policy, slot, Trigger::Schedule)
            .await
            .unwrap()
            .jobs;
        if !is_drill {
            for job in jobs {
                assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
                newest.insert(job.target.clone(), job.backup_id.unwrap());
            }
            continue;
        }
        for job in &jobs {
            assert_eq!(job.status, JobStatus::Verified, "{job:#?}");
            assert_eq!(
                job.backup_id.as_ref(),
                Some(&newest[&job.target]),
                "the newest backup restored: {job:#?}"
            );
        }
        drills.push((slot, jobs));
    }

    // The longest undrilled first: 1 and 2, then 3 and 4, then 5 and 1.
    let rotation: Vec<Vec<String>> = drills
        .iter()
        .map(|(_, jobs)| jobs.iter().map(|j| j.target.clone()).collect())
        .collect();
    let v = |n: &[u32]| n.iter().map(|n| volume_id(*n)).collect::<Vec<_>>();
    assert_eq!(rotation, [v(&[1, 2]), v(&[3, 4]), v(&[5, 1])]);

    // Each verified restore: its RTO, and the night's backup as its recovery point.
    let conn = rusqlite::Connection::open(nights.config.history_path()).unwrap();
    for (slot, jobs) in &drills {
        for job in jobs {
            let (restore_s, age, created, verify, left): (f64, f64, String, String, bool) = conn
                .query_row(
                    "SELECT restore_s, backup_age_s, backup_created_at, verify, scratch_left
                       FROM v_restores WHERE job_id = ?1",
                    [job.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .unwrap();
            assert!(restore_s > 0.0, "RTO recorded: {job:#?}");
            assert!(age > 0.0, "backup age recorded: {job:#?}");
            let created: DateTime<Utc> = created.parse().unwrap();
            assert!(
                *slot - TimeDelta::days(1) < created && created < *slot,
                "the night before the drill at {slot}: {created}"
            );
            assert_eq!((verify.as_str(), left), ("passed", false));
        }
    }
    let drilled: std::collections::BTreeSet<&String> = drills
        .iter()
        .flat_map(|(_, jobs)| jobs.iter().map(|j| &j.target))
        .collect();
    assert_eq!(drilled.len(), 5, "every volume drilled: {drilled:?}");

    // One scratch volume per drill job, every one deleted again.
    let made = volumes_made(&world);
    let undeleted = made.iter().filter(|e| e.deleted_at.is_none()).count();
    let _ = writeln!(
        std::io::stderr(),
        "three weeks of drills: {} nights, {} drills, {} restores verified, {} volumes drilled, {} scratch volumes made, {} left",
        nights.slots.len(),
        drills.len(),
        drills.iter().map(|(_, jobs)| jobs.len()).sum::<usize>(),
        drilled.len(),
        made.len(),
        undeleted + restore_volumes_left(&world).len(),
    );
    assert_eq!(made.len(), 6, "{made:#?}");
    assert_eq!(undeleted, 0, "{made:#?}");
    assert_eq!(restore_volumes_left(&world), Vec::<String>::new());
}
