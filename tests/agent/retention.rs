//! Retention against the simulator: what the plan deletes is deleted and
//! recorded; what incremental backups depend on, what the policy did not
//! make, and the newest backup are kept; a refused delete is "blocked", not
//! a failure.

use std::time::Duration;

use crate::helper::nights::{self, Nights};
use crate::helper::sim::{Scripted, VolumeFault};
use crate::helper::Setup;
use crate::helper::{
    backup_ids, cbr_backup_ids, cbr_policy_yaml, disk_vault, policy_yaml, server,
    server_backup_ids, server_id, server_policy_yaml, server_vault, snapshot_ids,
    snapshot_policy_yaml, volume, volume_id, World, CBR_CLOUD, PROJECT,
};
use chrono::{SubsecRound, TimeDelta, Utc};
use vbs_agent::config::PolicyKind;
use vbs_agent::engine::retention::Verdict;
use vbs_agent::store::{JobStatus, Trigger};

fn actions(history: &std::path::Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(history).unwrap();
    let mut stmt = conn
        .prepare("SELECT backup_id, action, reason FROM retention_actions ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_what_no_rule_keeps_and_nothing_it_must_not() {
    let hiccup = || {
        Some(VolumeFault::BackupErrorTimes {
            fail_reason: "hiccup".into(),
            times: 1,
        })
    };
    let world = World::start(vec![volume(1, hiccup()), volume(3, hiccup())]).await;
    let policies = policy_yaml(
        "ret",
        "0 0 3 1 1 *",
        &[volume_id(1), volume_id(3)],
        "    retention: { keep_last: 1 }\n",
    );
    let Setup { config, engine, .. } = Setup::of(&world, &policies);
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let slot = Utc::now().trunc_subsecs(0);

    // Run 1: both backups end in error.
    let first = engine
        .run_policy(&policy, slot, Trigger::Manual)
        .await
        .unwrap();
    assert!(first.jobs.iter().all(|j| j.status == JobStatus::Failed));
    let error_backup = |target: &str| {
        first
            .jobs
            .iter()
            .find(|j| j.target == target)
            .unwrap()
            .backup_id
            .clone()
            .unwrap()
    };
    let (e1, e3) = (error_backup(&volume_id(1)), error_backup(&volume_id(3)));

    // Volume 3's cloud refuses the delete the way Cinder refuses a parent's.
    world.sim.script(Scripted {
        method: "DELETE".into(),
        path_contains: e3.clone(),
        status: 400,
        content_type: "application/json".into(),
        body: r#"{"badRequest": {"code": 400, "message": "Invalid backup: Incremental backups exist for this backup."}}"#.into(),
        after_handling: false,
        times: 1,
        ..Default::default()
    });
    // A backup someone else made, with a name that looks like the policy's.
    let snap = world
        .post_by_hand(
            &format!("/v2/{PROJECT}/snapshots"),
            serde_json::json!({"snapshot": {"volume_id": volume_id(1), "name": "x"}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let foreign = world.post_by_hand(&format!("/v3/{PROJECT}/backups"), serde_json::json!({"backup": {"volume_id": volume_id(1), "snapshot_id": snap["snapshot"]["id"], "name": "ret-19700101T000000Z-lookalike"}})).await;
    let foreign = foreign["backup"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Run 2 succeeds; the prune after it deletes volume 1's error backup and
    // is refused for volume 3's.
    let second = engine
        .run_policy(&policy, slot + TimeDelta::hours(1), Trigger::Manual)
        .await
        .unwrap();
    assert!(
        second.jobs.iter().all(|j| j.status == JobStatus::Succeeded),
        "{:#?}",
        second.jobs
    );
    let acts = actions(&history);
    assert!(
        acts.contains(&(
            e1.clone(),
            "deleted".into(),
            "status `error`: holds no restorable data".into()
        )),
        "{acts:#?}"
    );
    assert!(
        acts.iter().any(|(id, action, reason)| *id == e3
            && action == "blocked_by_dependants"
            && reason.contains("Incremental backups exist")),
        "{acts:#?}"
    );
    assert!(
        !acts.iter().any(|(_, action, _)| action == "delete_failed"),
        "{acts:#?}"
    );
    let ledger = world.sim.ledger();
    assert_eq!(
        ledger.iter().find(|e| e.id == e1).unwrap().status,
        "deleted"
    );

    // Run 3 makes an incremental on top of run 2's backup: the plan keeps the
    // newest, marks run 2's as blocked by its dependant, keeps the foreign one.
    let third = engine
        .run_policy(&policy, slot + TimeDelta::hours(2), Trigger::Manual)
        .await
        .unwrap();
    let b2 = second
        .jobs
        .iter()
        .find(|j| j.target == volume_id(1))
        .unwrap()
        .backup_id
        .clone()
        .unwrap();
    let b3 = third
        .jobs
        .iter()
        .find(|j| j.target == volume_id(1))
        .unwrap()
        .backup_id
        .clone()
        .unwrap();
    let plan = engine
        .prune_target(&policy, &volume_id(1), true)
        .await
        .unwrap();
    let verdict = |id: &str| {
        plan.lines
            .iter()
            .find(|l| l.decision.id == id)
            .map(|l| (l.decision.verdict, l.decision.reason.clone()))
    };
    assert_eq!(verdict(&b3).unwrap().0, Verdict::Keep);
    let (v2, why2) = verdict(&b2).unwrap();
    assert_eq!(v2, Verdict::BlockedByDependants, "{why2}");
    assert!(why2.contains("incremental backups depend on it"), "{why2}");
    assert_eq!(
        verdict(&foreign).unwrap(),
        (Verdict::Keep, "not made by this policy".to_string())
    );
    assert!(
        plan.lines.iter().all(|l| l.outcome.is_none()),
        "a dry run changes nothing"
    );
    assert!(world.sim.backups(PROJECT).iter().any(|b| b.id == b2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_chain_goes_from_its_tip_once_a_new_full_backup_exists() {
    let world = World::start(vec![volume(1, None)]).await;
    let policies = policy_yaml(
        "chain",
        "0 0 3 1 1 *",
        &[volume_id(1)],
        "    retention: { keep_last: 1 }\n    full_backup_every: 3\n",
    );
    let Setup { config, engine, .. } = Setup::of(&world, &policies);
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let slot = Utc::now().trunc_subsecs(0);
    let mut made = Vec::new();
    for n in 0..3 {
        let r = engine
            .run_policy(&policy, slot + TimeDelta::hours(n), Trigger::Manual)
            .await
            .unwrap();
        made.push(r.jobs[0].clone());
    }
    let flags: Vec<_> = made.iter().map(|j| j.is_incremental).collect();
    assert_eq!(flags, [Some(false), Some(true), Some(true)]);
    // keep_last 1 wants the first two gone, but each has a dependant.
    assert!(actions(&history).is_empty(), "{:#?}", actions(&history));
    let plan = engine
        .prune_target(&policy, &volume_id(1), true)
        .await
        .unwrap();
    let blocked = plan
        .lines
        .iter()
        .filter(|l| l.decision.verdict == Verdict::BlockedByDependants)
        .count();
    assert_eq!(blocked, 2);

    // The third backup in the chain makes the next one full; then the old
    // chain is pruned tip first.
    let fourth = engine
        .run_policy(&policy, slot + TimeDelta::hours(3), Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(fourth.jobs[0].is_incremental, Some(false));
    let deleted: Vec<String> = actions(&history)
        .into_iter()
        .filter(|a| a.1 == "deleted")
        .map(|a| a.0)
        .collect();
    let ids: Vec<String> = made
        .iter()
        .rev()
        .map(|j| j.backup_id.clone().unwrap())
        .collect();
    assert_eq!(
        deleted, ids,
        "newest first: the tip, then what it depended on"
    );
    let left: Vec<String> = world
        .sim
        .backups(PROJECT)
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(left, [fourth.jobs[0].backup_id.clone().unwrap()]);
}

const BACKUPS: nights::Kind = nights::Kind {
    policy: |extra| {
        let extra = format!("{extra}    full_backup_every: 1\n");
        policy_yaml("nightly", "0 30 1 * * *", &[volume_id(1)], &extra)
    },
    cloud_extra: "",
    retention: "{ keep_daily: 3, keep_weekly: 2 }",
    newest: 3,
    weeks: 2,
    made: |job| job.backup_id.clone(),
    listed: backup_ids,
};

const SNAPSHOTS: nights::Kind = nights::Kind {
    policy: |extra| snapshot_policy_yaml("nightly", "0 30 1 * * *", &[volume_id(1)], extra),
    cloud_extra: "",
    retention: "{ keep_last: 2, keep_weekly: 3 }",
    newest: 2,
    weeks: 3,
    made: |job| job.snapshot_id.clone(),
    listed: snapshot_ids,
};

const SERVER_BACKUPS: nights::Kind = nights::Kind {
    policy: |extra| server_policy_yaml("nightly", "0 30 1 * * *", &[server_id(1)], extra),
    cloud_extra: "",
    retention: "{ keep_daily: 3, keep_weekly: 2 }",
    newest: 3,
    weeks: 2,
    made: |job| job.backup_id.clone(),
    listed: server_backup_ids,
};

const CBR_BACKUPS: nights::Kind = nights::Kind {
    policy: |extra| {
        let extra = format!("{extra}    vault: sim-disks\n    full_backup_every: 7\n");
        cbr_policy_yaml("nightly", "0 30 1 * * *", &[volume_id(1)], &extra)
    },
    cloud_extra: CBR_CLOUD,
    retention: "{ keep_daily: 3, keep_weekly: 2 }",
    newest: 3,
    weeks: 2,
    made: |job| job.backup_id.clone(),
    listed: cbr_backup_ids,
};

const CBR_SERVER_BACKUPS: nights::Kind = nights::Kind {
    policy: |extra| {
        let extra = format!("{extra}    vault: sim-servers\n");
        server_policy_yaml("nightly", "0 30 1 * * *", &[server_id(1)], &extra)
    },
    cloud_extra: CBR_CLOUD,
    retention: "{ keep_daily: 3, keep_weekly: 2 }",
    newest: 3,
    weeks: 2,
    made: |job| job.backup_id.clone(),
    listed: cbr_backup_ids,
};

/// Three weeks of nightly backups played out in seconds: the cloud's clock
/// and the engine's retention clock follow the slots.
/// The `POST …/backups` calls the cloud received, and the list calls
/// (`GET …/backups` without an id).
fn backup_calls(world: &World) -> (usize, usize) {
    let requests = world.sim.requests();
    let path = format!("/v3/{PROJECT}/backups");
    let creates = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path == path)
        .count();
    let lists = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/backups"))
        .count();
    (creates, lists)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_backups_build_on_what_the_history_knows_and_a_lost_parent_means_a_full_one() {
    let world = World::start(vec![volume(1, None)]).await;
    let policies = policy_yaml("chain", "0 0 3 1 1 *", &[volume_id(1)], "");
    let Setup { config, engine, .. } = Setup::of(&world, &policies);
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let slot = Utc::now().trunc_subsecs(0);
    let run = |n: i64| engine.run_policy(&policy, slot + TimeDelta::hours(n), Trigger::Manual);

    // The first backup is full, the second builds on it; the history tells
    // which, so the cloud is never asked for a list of backups.
    let first = run(0).await.unwrap().jobs[0].clone();
    let second = run(1).await.unwrap().jobs[0].clone();
    assert_eq!(first.is_incremental, Some(false), "{first:#?}");
    assert_eq!(second.is_incremental, Some(true), "{second:#?}");
    assert_eq!(backup_calls(&world), (2, 0));

    // Someone deletes both behind the agent's back, tip first.
    for job in [&second, &first] {
        let id = job.backup_id.as_deref().unwrap();
        let status = world
            .delete_by_hand(&format!("/v3/{PROJECT}/backups/{id}"))
            .await;
        assert_eq!(status, 202, "deleting {id} by hand");
        crate::helper::wait_for("the backup to be gone", || {
            !world.sim.backups(PROJECT).iter().any(|b| b.id == id)
        })
        .await;
    }

    // Cinder refuses the incremental backup the history expected; nothing
    // was made, so the agent makes a full one at once, and the refusal is
    // in the job's history.
    let third = run(2).await.unwrap().jobs[0].clone();
    assert_eq!(third.status, JobStatus::Succeeded, "{third:#?}");
    assert_eq!(third.is_incremental, Some(false), "{third:#?}");
    assert_eq!(backup_calls(&world), (4, 0));
    let conn = rusqlite::Connection::open(&history).unwrap();
    let calls: Vec<(String, i64)> = conn
        .prepare(
            "SELECT method, http_status FROM events
              WHERE job_id = ?1 AND kind = 'api_call' AND path LIKE '%/backups' ORDER BY id",
        )
        .unwrap()
        .query_map([third.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(calls, [("POST".into(), 400), ("POST".into(), 202)]);
    let backups = world.sim.backups(PROJECT);
    assert_eq!(backups.len(), 1, "{backups:#?}");
    assert_eq!(backups[0].id, third.backup_id.clone().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_backups_keep_exactly_what_the_rules_say() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let nights = Nights::of_kind(&world, &BACKUPS);
    let made = nights.play(&world, &BACKUPS).await;
    nights.assert_kept(&world, &BACKUPS, &made, &[]);
}

/// Three weeks of nightly backups on a CBR cloud: one checkpoint a night
/// in the vault, exactly what the rules keep is left, every job recorded
/// as made by CBR, and nothing made through VBS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_backups_on_cbr_keep_exactly_what_the_rules_say() {
    let world = World::start_cbr(
        vec![volume(1, None)],
        vec![disk_vault("sim-disks", &[1])],
        Duration::ZERO,
        Duration::ZERO,
    )
    .await;
    let nights = Nights::of_kind(&world, &CBR_BACKUPS);
    let made = nights.play(&world, &CBR_BACKUPS).await;
    nights.assert_kept(&world, &CBR_BACKUPS, &made, &[]);
    assert!(
        made.iter().all(|(_, job)| job.service() == "cbr"),
        "{made:#?}"
    );
    assert!(world.sim.backups(PROJECT).is_empty(), "nothing through VBS");
    assert!(
        world.sim.snapshots(PROJECT).is_empty(),
        "no snapshot of the agent's"
    );
    let runs = world.sim.cbr_checkpoints(PROJECT);
    assert_eq!(runs.len(), made.len(), "one checkpoint a night");
    // Every 7th backup is full: CBR was asked for it.
    let full = made
        .iter()
        .filter(|(_, j)| j.is_incremental == Some(false))
        .count();
    assert_eq!(full, 3, "nights 1, 8 and 15 of 21 are full");
}

/// Three weeks of nightly server backups on a CBR cloud: a backup of the
/// whole server in its server vault each night, each with its disks'
/// backups recorded, exactly what the rules keep left, nothing through CSBS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_server_backups_on_cbr_keep_exactly_what_the_rules_say() {
    let world =
        World::start_cbr_servers(vec![server(1)], vec![server_vault("sim-servers", &[1])]).await;
    let nights = Nights::of_kind(&world, &CBR_SERVER_BACKUPS);
    let made = nights.play(&world, &CBR_SERVER_BACKUPS).await;
    nights.assert_kept(&world, &CBR_SERVER_BACKUPS, &made, &[]);
    assert!(
        made.iter().all(|(_, job)| job.service() == "cbr"),
        "{made:#?}"
    );
    assert!(
        world.sim.checkpoints(PROJECT).is_empty(),
        "nothing through CSBS"
    );
    let last = &made.last().unwrap().1;
    let conn = rusqlite::Connection::open(nights.config.history_path()).unwrap();
    let mut disks: Vec<String> = conn
        .prepare("SELECT source_volume_id FROM server_volume_backups WHERE job_id = ?1")
        .unwrap()
        .query_map([last.id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    disks.sort();
    let mut want = vec![volume_id(101), volume_id(201)];
    want.sort();
    assert_eq!(disks, want, "both disks of the server recorded");
    assert_eq!(last.size_gb, Some(140));
}

/// Three weeks of nightly snapshots: exactly what the rules keep is left,
/// the newest snapshot is always there, and no backup is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_snapshots_keep_exactly_what_the_rules_say() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let nights = Nights::of_kind(&world, &SNAPSHOTS);
    let made = nights.play(&world, &SNAPSHOTS).await;
    nights.assert_kept(&world, &SNAPSHOTS, &made, &[]);
    assert!(world.sim.backups(PROJECT).is_empty());
}

/// Three weeks of nightly server backups: what the rules keep, a lookalike
/// made by hand untouched, each job's checkpoint, progress and volume
/// backups recorded, and at most five deletions at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_server_backups_keep_exactly_what_the_rules_say() {
    let world = World::start_servers(vec![server(1)], Duration::ZERO, Duration::ZERO).await;
    let nights = Nights::of_kind(&world, &SERVER_BACKUPS);

    // A server backup someone made by hand, with a lookalike name.
    world.sim.set_now(nights.slots[0] - TimeDelta::days(30));
    let foreign = world
        .post_by_hand(
            &format!(
                "/v1/{PROJECT}/providers/fc4d5750-22e7-4798-8a46-f48f62c4c1da/resources/{}/action",
                server_id(1)
            ),
            serde_json::json!({"protect": {"backup_name": "nightly-19700101T000000Z-lookalike"}}),
        )
        .await;
    let foreign_checkpoint = foreign["checkpoint"]["id"].as_str().unwrap().to_string();
    let foreign_item = world
        .sim
        .checkpoints(PROJECT)
        .into_iter()
        .find(|c| c.checkpoint_id == foreign_checkpoint)
        .unwrap()
        .item_id;

    let made = nights.play(&world, &SERVER_BACKUPS).await;
    assert!(made.iter().all(|(_, job)| job.kind == PolicyKind::Server));

    // Each job recorded its checkpoint, progress and both volumes' backups.
    let last = &made.last().unwrap().1;
    let columns = nights.store.server_columns(last.id).unwrap();
    let live = world.sim.checkpoints(PROJECT);
    let cp = live
        .iter()
        .find(|c| Some(&c.item_id) == last.backup_id.as_ref())
        .unwrap();
    assert_eq!(
        columns.checkpoint_id.as_deref(),
        Some(cp.checkpoint_id.as_str())
    );
    assert_eq!(columns.progress, Some(100.0));
    let volumes = nights.store.server_volume_backups(last.id).unwrap();
    let sources: Vec<_> = volumes
        .iter()
        .map(|v| v.source_volume_id.clone().unwrap())
        .collect();
    assert_eq!(
        sources,
        [crate::helper::volume_id(101), crate::helper::volume_id(201)]
    );
    assert!(volumes
        .iter()
        .all(|v| v.status.as_deref() == Some("available")));
    assert_eq!(last.size_gb, Some(140));
    assert_eq!(
        last.is_incremental,
        Some(true),
        "later backups are incremental"
    );

    // What the rules keep is left; a backup the agent did not make is never deleted.
    nights.assert_kept(&world, &SERVER_BACKUPS, &made, &[foreign_item]);
    assert!(world.sim.peak_checkpoint_deletions(PROJECT) <= 5);
}
