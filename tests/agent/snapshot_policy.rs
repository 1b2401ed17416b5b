//! `kind: snapshot`: snapshots on schedule, kept on the block store, and
//! pruned by the same retention rules and hard rules as backups.

use std::sync::Arc;
use std::time::Duration;

use crate::helper::{load, volume, volume_id, World, PROJECT};
use chrono::{SubsecRound, TimeDelta, Utc};
use vbs_agent::api::ClientSettings;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_policies_keep_their_snapshots_and_prune_by_retention() {
    let world = World::start(vec![volume(1, None)]).await;
    let policies = format!(
        "  - name: snap\n    kind: snapshot\n    cloud: sim\n    schedule: \"0 0 * * * *\"\n    force: true\n    retention: {{ keep_last: 2 }}\n    volumes:\n      - {}\n",
        volume_id(1)
    );
    let config = load(&world.write_config("", "", &policies));
    let policy = config.policies[0].clone();
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let settings = ClientSettings {
        retry_min_delay: Duration::from_millis(5),
        ..ClientSettings::default()
    };
    let engine = Engine::new(&config, Arc::clone(&store), settings).unwrap();

    // A snapshot someone else took of the same volume.
    let foreign = world
        .post_by_hand(
            &format!("/v2/{PROJECT}/snapshots"),
            serde_json::json!({"snapshot": {"volume_id": volume_id(1), "name": "snap-by-hand", "force": true}}),
        )
        .await;
    let foreign = foreign["snapshot"]["id"].as_str().unwrap().to_string();

    // Four hourly slots, as the scheduler would fire them.
    let first = Utc::now().trunc_subsecs(0) - TimeDelta::hours(4);
    let mut made = Vec::new();
    for hour in 0..4 {
        let report = engine
            .run_policy(&policy, first + TimeDelta::hours(hour), Trigger::Schedule)
            .await
            .unwrap();
        let job = &report.jobs[0];
        assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
        assert_eq!(job.backup_id, None, "a snapshot policy makes no backup");
        made.push(job.snapshot_id.clone().unwrap());
    }
    assert!(world.sim.backups(PROJECT).is_empty());

    // Retention after each run kept the two newest; the hand-made one stays.
    let mut left: Vec<String> = world
        .sim
        .snapshots(PROJECT)
        .into_iter()
        .map(|s| s.id)
        .collect();
    left.sort();
    let mut want = vec![made[2].clone(), made[3].clone(), foreign];
    want.sort();
    assert_eq!(left, want);
    let conn = rusqlite::Connection::open(config.history_path()).unwrap();
    let deleted: Vec<String> = conn
        .prepare("SELECT backup_id FROM retention_actions WHERE action = 'deleted' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(deleted, [made[0].clone(), made[1].clone()]);
}
