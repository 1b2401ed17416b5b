//! Selection by metadata against a real OpenStack Cinder
//! (`tests/cinder/setup.sh`), when `VBS_CINDER_URL` points at one: a
//! selector policy backs up exactly the volumes whose metadata match, and
//! `targets` and `coverage` say so; the others are UNPROTECTED, the
//! opted-out one shown as such.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use serde_json::json;
use vbs_agent::config;
use vbs_agent::coverage::{audit, Standing};
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

use super::cinder_peer::{cinder_url, Peer};
use crate::helper::{agent_async, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_backs_up_exactly_the_matching_volumes_of_real_cinder() {
    let Some(url) = cinder_url() else { return };
    let peer = Peer::new(url);
    let volume = |name: &str, metadata: serde_json::Value| json!({"size": 1, "name": name, "metadata": metadata});
    let nightly = peer
        .create_volume_with(volume("db-data", json!({"backup": "nightly"})))
        .await;
    let gold = peer
        .create_volume_with(volume(
            "db-logs",
            json!({"backup": "nightly", "tier": "gold"}),
        ))
        .await;
    let bare = peer.create_volume_with(volume("scratch", json!({}))).await;
    let weekly = peer
        .create_volume_with(volume("web", json!({"backup": "weekly"})))
        .await;
    let opted = peer
        .create_volume_with(volume("tmp", json!({"backup": "none"})))
        .await;
    let all = [&nightly, &gold, &bare, &weekly, &opted];

    let dir = tempfile::tempdir().unwrap();
    let text_of_file = format!(
        "{}policies:\n  - name: peer-select\n    kind: backup\n    cloud: peer\n    schedule: \"0 0 3 * * *\"\n    select:\n      match: {{backup: nightly}}\n",
        peer.file_head(dir.path())
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text_of_file).unwrap();
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), Default::default()).unwrap();

    let run = engine
        .run_policy(
            &config.policies[0],
            Utc::now().trunc_subsecs(0),
            Trigger::Manual,
        )
        .await
        .unwrap();
    let mut backed_up: Vec<&str> = run.jobs.iter().map(|j| j.target.as_str()).collect();
    backed_up.sort_unstable();
    let mut wanted = vec![nightly.as_str(), gold.as_str()];
    wanted.sort_unstable();
    assert_eq!(backed_up, wanted, "{:#?}", run.jobs);
    assert!(
        run.jobs.iter().all(|j| j.status == JobStatus::Succeeded),
        "{:#?}",
        run.jobs
    );
    let scope = store.run_scope(run.run_id).unwrap();
    assert!(
        scope.iter().all(|t| t.reason == "metadata backup=nightly"),
        "{scope:#?}"
    );

    let client = engine.observed_client("peer").unwrap();
    let coverage = audit(&config, "peer", &client, Some(&store)).await.unwrap();
    let standing = |id: &str| {
        coverage
            .rows
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.standing.clone())
            .unwrap_or_else(|| panic!("{id} not listed: {:#?}", coverage.rows))
    };
    assert_eq!(standing(&nightly), Standing::Protected);
    assert_eq!(standing(&gold), Standing::Protected);
    assert_eq!(standing(&bare), Standing::Unprotected);
    assert_eq!(standing(&weekly), Standing::Unprotected);
    assert_eq!(
        standing(&opted),
        Standing::OptedOut("opted out by backup=none".into())
    );
    assert_eq!(
        coverage.rows.len(),
        all.len(),
        "the project's volumes, each once"
    );

    // The commands say the same; their output goes to the test log.
    let targets = agent_async(["targets", "--config", path.to_str().unwrap()]).await;
    let shown = text(&targets.stdout);
    eprintln!("$ vbs-agent targets --config policy.yaml\n{shown}");
    assert!(targets.status.success(), "{}", text(&targets.stderr));
    for id in [&nightly, &gold] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains("metadata backup=nightly")),
            "{shown}"
        );
    }
    let covered = agent_async(["coverage", "--config", path.to_str().unwrap()]).await;
    let shown = text(&covered.stdout);
    eprintln!("$ vbs-agent coverage --config policy.yaml\n{shown}");
    assert_eq!(
        covered.status.code(),
        Some(3),
        "exit 3: unprotected volumes exist"
    );
    for (id, status) in [
        (&bare, "UNPROTECTED"),
        (&weekly, "UNPROTECTED"),
        (&opted, "opted_out"),
        (&nightly, "protected"),
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.contains(id.as_str()) && l.contains(status)),
            "{id} {status}: {shown}"
        );
    }

    let volumes: Vec<String> = all.iter().map(|v| v.to_string()).collect();
    peer.tidy(&volumes).await;
}
