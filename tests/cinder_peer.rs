//! The backup flow against a real OpenStack Cinder (`../shared/cinder-peer`),
//! when `VBS_CINDER_URL` points at one (as in CI). Skipped, with one line
//! saying so, when it does not.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, TimeDelta, Utc};
use serde_json::{json, Value};
use vbs_agent::api::{ClientSettings, CloudClient};
use vbs_agent::config::{self, Config};
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

/// The peer's URL, or `None` after saying that these tests are skipped.
fn cinder_url() -> Option<String> {
    match std::env::var("VBS_CINDER_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ => {
            // Written to stderr directly: the test harness captures print!.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED real-Cinder tests: VBS_CINDER_URL is not set (see ../shared/cinder-peer/README.md)"
            );
            None
        }
    }
}

/// A project of our own on the peer, so runs never see each other's resources.
struct Peer {
    url: String,
    project: String,
    http: reqwest::Client,
}

impl Peer {
    fn new(url: String) -> Self {
        let project = uuid::Uuid::new_v4().simple().to_string();
        Self {
            url,
            project,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v3/{}/{path}", self.url, self.project))
            .header("X-Auth-Token", "cinder-peer-accepts-any-token");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("cinder peer reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_volume(&self) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "volumes",
                Some(json!({"volume": {"size": 1}})),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let id = body["volume"]["id"].as_str().unwrap().to_string();
        self.wait_status(&format!("volumes/{id}"), "volume", "available")
            .await;
        id
    }

    async fn wait_status(&self, path: &str, key: &str, want: &str) {
        for _ in 0..300 {
            let (_, body) = self.call(reqwest::Method::GET, path, None).await;
            if body[key]["status"] == want {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("{path} never reached {want}");
    }

    fn config(&self, dir: &std::path::Path, volumes: &[String]) -> Config {
        std::fs::write(dir.join("token"), "cinder-peer-accepts-any-token\n").unwrap();
        let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
        let text = format!(
            "state_dir: {state}\ndefaults:\n  completion_timeout: 10m\n  poll: {{ initial: 1s, max: 3s }}\nclouds:\n  peer:\n    project_id: {project}\n    endpoints:\n      volume: {url}\n      backup: {url}\n    auth:\n      type: token\n      token_file: {token}\npolicies:\n  - name: peer-test\n    kind: backup\n    cloud: peer\n    schedule: \"0 0 3 * * *\"\n    volumes:\n{vols}",
            state = dir.join("state").display(),
            project = self.project,
            url = self.url,
            token = dir.join("token").display(),
        );
        let path = dir.join("policy.yaml");
        std::fs::write(&path, text).unwrap();
        config::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_flow_against_real_cinder() {
    let Some(url) = cinder_url() else { return };
    let peer = Peer::new(url);
    let volumes = vec![peer.create_volume().await, peer.create_volume().await];
    let dir = tempfile::tempdir().unwrap();
    let config = peer.config(dir.path(), &volumes);
    let policy = config.policies[0].clone();
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), ClientSettings::default()).unwrap();

    // First run: full backups, snapshots cleaned up.
    let slot1 = Utc::now().trunc_subsecs(0);
    let first = engine
        .run_policy(&policy, slot1, Trigger::Manual)
        .await
        .unwrap();
    for job in &first.jobs {
        assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
        assert_eq!(job.is_incremental, Some(false), "{job:#?}");
        let (_, b) = peer
            .call(
                reqwest::Method::GET,
                &format!("backups/{}", job.backup_id.as_deref().unwrap()),
                None,
            )
            .await;
        assert_eq!(b["backup"]["status"], "available");
        assert_eq!(b["backup"]["name"], job.resource_name.as_str());
        assert_eq!(
            b["backup"]["snapshot_id"],
            job.snapshot_id.as_deref().unwrap()
        );
    }
    let (_, snaps) = peer.call(reqwest::Method::GET, "snapshots", None).await;
    assert_eq!(
        snaps["snapshots"].as_array().map(Vec::len),
        Some(0),
        "snapshots left: {snaps}"
    );

    // Second run: Cinder makes them incremental.
    let slot2 = slot1 + TimeDelta::minutes(1);
    let second = engine
        .run_policy(&policy, slot2, Trigger::Manual)
        .await
        .unwrap();
    for job in &second.jobs {
        assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
        assert_eq!(job.is_incremental, Some(true), "{job:#?}");
    }

    // The list-by-name lookup finds exactly the backup each job recorded.
    let client = CloudClient::new(&config.clouds["peer"], ClientSettings::default()).unwrap();
    for job in first.jobs.iter().chain(&second.jobs) {
        let found = client
            .find_backups(&job.resource_name, &job.target)
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            ids,
            [job.backup_id.as_deref().unwrap()],
            "{}",
            job.resource_name
        );
    }
    assert!(client
        .find_backups("no-such-backup", &volumes[0])
        .await
        .unwrap()
        .is_empty());

    // Tidy up the peer: incrementals first (Cinder refuses to delete a parent).
    for job in second.jobs.iter().chain(&first.jobs) {
        let id = job.backup_id.as_deref().unwrap();
        let (status, _) = peer
            .call(reqwest::Method::DELETE, &format!("backups/{id}"), None)
            .await;
        assert_eq!(status, 202);
        for _ in 0..60 {
            if peer
                .call(reqwest::Method::GET, &format!("backups/{id}"), None)
                .await
                .0
                == 404
            {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for v in &volumes {
        peer.call(reqwest::Method::DELETE, &format!("volumes/{v}"), None)
            .await;
    }
}
