//! Retention against the simulator: what the plan deletes is deleted and
//! recorded; what incremental backups depend on, what the policy did not
//! make, and the newest backup are kept; a refused delete is "blocked", not
//! a failure.

use std::sync::Arc;
use std::time::Duration;

use crate::helper::sim::{Scripted, VolumeFault};
use crate::helper::{fast, load, policy_yaml, volume, volume_id, World, PROJECT};
use chrono::{SubsecRound, TimeDelta, Utc};
use vbs_agent::engine::retention::Verdict;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

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
    let config = load(&world.write_config("", "", &policies));
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let store = Arc::new(Store::open(&history).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), fast()).unwrap();
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
    let http = reqwest::Client::new();
    let base = world.sim.base_url();
    let post = |path: String, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .header("X-Auth-Token", crate::helper::TOKEN)
            .json(&body)
            .send()
    };
    let snap: serde_json::Value = post(
        format!("/v2/{PROJECT}/snapshots"),
        serde_json::json!({"snapshot": {"volume_id": volume_id(1), "name": "x"}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let foreign: serde_json::Value = post(format!("/v3/{PROJECT}/backups"), serde_json::json!({"backup": {"volume_id": volume_id(1), "snapshot_id": snap["snapshot"]["id"], "name": "ret-19700101T000000Z-lookalike"}})).await.unwrap().json().await.unwrap();
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
    let config = load(&world.write_config("", "", &policies));
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let store = Arc::new(Store::open(&history).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), fast()).unwrap();
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

/// Three weeks of nightly backups played out in seconds: the cloud's clock
/// and the engine's retention clock follow the slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_weeks_of_nightly_backups_keep_exactly_what_the_rules_say() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let policies = policy_yaml(
        "nightly",
        "0 30 1 * * *",
        &[volume_id(1)],
        "    timezone: Europe/Berlin\n    retention: { keep_daily: 3, keep_weekly: 2 }\n    full_backup_every: 1\n",
    );
    let config = load(&world.write_config("", "", &policies));
    let policy = config.policies[0].clone();
    let history = config.history_path();
    let store = Arc::new(Store::open(&history).unwrap());
    let nights = crate::helper::Nights::new(&config, Arc::clone(&store), fast(), 21);
    let engine = &nights.engine;
    let mut made = Vec::new();
    for slot in &nights.slots {
        nights.enter(&world, *slot);
        let report = engine
            .run_policy(&policy, *slot, Trigger::Schedule)
            .await
            .unwrap();
        assert_eq!(report.jobs[0].status, JobStatus::Succeeded);
        made.push((*slot, report.jobs[0].backup_id.clone().unwrap()));
        // The newest backup is always there.
        assert!(world
            .sim
            .backups(PROJECT)
            .iter()
            .any(|b| Some(&b.id) == report.jobs[0].backup_id.as_ref()));
    }

    // The last 3 nights, plus the newest night of each of the 2 most recent ISO weeks.
    let want = crate::helper::kept_by_nightly_rules(&made, 3, 2);
    let mut left: Vec<String> = world
        .sim
        .backups(PROJECT)
        .into_iter()
        .map(|b| b.id)
        .collect();
    left.sort();
    assert_eq!(
        left, want,
        "kept: the 3 newest nights and the newest of 2 weeks"
    );
    let deleted = actions(&history)
        .into_iter()
        .filter(|a| a.1 == "deleted")
        .count();
    assert_eq!(
        deleted,
        made.len() - want.len(),
        "every other night was deleted and recorded"
    );
}
