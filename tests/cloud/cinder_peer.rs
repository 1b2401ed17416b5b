//! The backup flow against a real OpenStack Cinder (`tests/cinder/setup.sh`),
//! when `VBS_CINDER_URL` points at one (as in CI). Skipped, with one line
//! saying so, when it does not.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::helper::Setup;
use chrono::{SubsecRound, TimeDelta, Utc};
use serde_json::{json, Value};
use vbs_agent::api::{ClientSettings, CloudClient};
use vbs_agent::config::{self, Config};
use vbs_agent::engine::retention::Verdict;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

/// The peer's URL, or `None` after saying (once per test binary) that the
/// real-Cinder tests are skipped.
pub(super) fn cinder_url() -> Option<String> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match std::env::var("VBS_CINDER_URL") {
        Ok(url) if !url.is_empty() => Some(url.trim_end_matches('/').to_string()),
        _ => {
            // Written to stderr directly: the test harness captures print!.
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED real-Cinder tests: VBS_CINDER_URL is not set; start a real Cinder with `bash tests/cinder/setup.sh start`, then VBS_CINDER_URL=http://127.0.0.1:8776 cargo test"
                );
            });
            None
        }
    }
}

/// A project of our own on the peer, so runs never see each other's resources.
pub(super) struct Peer {
    pub(super) url: String,
    pub(super) project: String,
    http: reqwest::Client,
}

impl Peer {
    pub(super) fn new(url: String) -> Self {
        let project = uuid::Uuid::new_v4().simple().to_string();
        Self {
            url,
            project,
            http: reqwest::Client::new(),
        }
    }

    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
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

    pub(super) async fn create_volume(&self) -> String {
        self.create_volume_with(json!({"size": 1})).await
    }

    /// A volume made from this `volume` object, once it is available.
    pub(super) async fn create_volume_with(&self, volume: Value) -> String {
        // Test set-up, not the agent under test: ride out a transient 5xx.
        let mut attempt = 0;
        let (status, body) = loop {
            let (status, body) = self
                .call(
                    reqwest::Method::POST,
                    "volumes",
                    Some(json!({ "volume": volume })),
                )
                .await;
            attempt += 1;
            if status < 500 || attempt == 5 {
                break (status, body);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        assert_eq!(status, 202, "{body}");
        let id = body["volume"]["id"].as_str().unwrap().to_string();
        self.wait_status(&format!("volumes/{id}"), "volume", "available")
            .await;
        id
    }

    pub(super) async fn wait_status(&self, path: &str, key: &str, want: &str) {
        for _ in 0..300 {
            let (_, body) = self.call(reqwest::Method::GET, path, None).await;
            if body[key]["status"] == want {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("{path} never reached {want}");
    }

    /// Deletes every backup of the project, dependants first, and the volumes.
    pub(super) async fn tidy(&self, volumes: &[String]) {
        for _ in 0..120 {
            let (_, list) = self
                .call(reqwest::Method::GET, "backups/detail", None)
                .await;
            let backups = list["backups"].as_array().cloned().unwrap_or_default();
            if backups.is_empty() {
                break;
            }
            for b in backups {
                if b["status"] == "available" || b["status"] == "error" {
                    let id = b["id"].as_str().unwrap_or_default();
                    self.call(reqwest::Method::DELETE, &format!("backups/{id}"), None)
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        for v in volumes {
            self.call(reqwest::Method::DELETE, &format!("volumes/{v}"), None)
                .await;
        }
    }

    fn config(&self, dir: &std::path::Path, volumes: &[String]) -> Config {
        config::load(&self.write_policy(dir, volumes, "0 0 3 * * *"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn write_policy(
        &self,
        dir: &std::path::Path,
        volumes: &[String],
        schedule: &str,
    ) -> std::path::PathBuf {
        self.write_policy_with(dir, volumes, schedule, "")
    }

    /// The policy file's top: the state dir, the defaults and the cloud.
    pub(super) fn file_head(&self, dir: &std::path::Path) -> String {
        std::fs::write(dir.join("token"), "cinder-peer-accepts-any-token\n").unwrap();
        // 0600, as the agent wants its secret files.
        std::fs::set_permissions(
            dir.join("token"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        format!(
            "state_dir: {state}\ndefaults:\n  completion_timeout: 10m\n  poll: {{ initial: 1s, max: 3s }}\nclouds:\n  peer:\n    project_id: {project}\n    endpoints:\n      volume: {url}\n      backup: {url}\n    auth:\n      type: token\n      token_file: {token}\n",
            state = dir.join("state").display(),
            project = self.project,
            url = self.url,
            token = dir.join("token").display(),
        )
    }

    pub(super) fn write_policy_with(
        &self,
        dir: &std::path::Path,
        volumes: &[String],
        schedule: &str,
        extra: &str,
    ) -> std::path::PathBuf {
        let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
        let text = format!(
            "{head}policies:\n  - name: peer-test\n    kind: backup\n    cloud: peer\n    schedule: \"{schedule}\"\n{extra}    volumes:\n{vols}",
            head = self.file_head(dir),
        );
        let path = dir.join("policy.yaml");
        std::fs::write(&path, text).unwrap();
        path
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_volume_is_waited_for_not_failed() {
    let Some(url) = cinder_url() else { return };
    let peer = Peer::new(url);
    let volume = peer.create_volume().await;
    // Someone else's backup keeps the volume `backing-up` for a while.
    let (status, other) = peer
        .call(
            reqwest::Method::POST,
            "backups",
            Some(json!({"backup": {"volume_id": volume, "name": "someone-else"}})),
        )
        .await;
    assert_eq!(status, 202, "{other}");
    let dir = tempfile::tempdir().unwrap();
    let config = peer.config(dir.path(), std::slice::from_ref(&volume));
    let s = Setup::new(config, ClientSettings::default());
    let job = &s.run_once().await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let events = s.store.job_events(job.id).unwrap();
    let busy: Vec<_> = events
        .iter()
        .filter(|e| e.class.as_deref() == Some("busy"))
        .collect();
    assert!(
        !busy.is_empty(),
        "Cinder's 400 was classified busy: {events:#?}"
    );
    assert!(busy.iter().all(|e| e.http_status == Some(400)));
    assert!(
        busy[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("backing-up"),
        "{busy:#?}"
    );
    peer.tidy(&[volume]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_against_real_cinder_no_duplicates_nothing_lost() {
    let Some(url) = cinder_url() else { return };
    let peer = Peer::new(url);
    let volumes = vec![peer.create_volume().await, peer.create_volume().await];
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("state/history.db");
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let spawn = |policy: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
            .args(["run", "--config"])
            .arg(policy)
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap()
    };
    let kill = |child: &std::process::Child, sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
    };
    let policy = peer.write_policy(dir.path(), &volumes, "*/10 * * * * *");
    let mut rng = fastrand::Rng::with_seed(5);
    let cycles = 5;
    for _ in 0..cycles {
        let mut agent = spawn(&policy);
        tokio::time::sleep(Duration::from_millis(rng.u64(2000..9000))).await;
        kill(&agent, "-KILL");
        agent.wait().unwrap();
    }
    // Drain: a schedule that will not fire now, so only unfinished jobs continue.
    let policy = peer.write_policy(dir.path(), &volumes, "0 0 3 1 1 *");
    let log_path = dir.path().join("agent.log");
    let starts = || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .matches("agent started")
            .count()
    };
    let before = starts();
    let mut agent = spawn(&policy);
    for _ in 0..300 {
        if starts() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..600 {
        let done = Store::open_read_only(&history)
            .and_then(|s| s.unfinished_jobs())
            .is_ok_and(|u| u.is_empty());
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    kill(&agent, "-TERM");
    assert!(agent.wait().unwrap().success());

    let store = Store::open_read_only(&history).unwrap();
    let jobs = store.recent_jobs(10_000).unwrap();
    assert!(store.unfinished_jobs().unwrap().is_empty());
    let (_, list) = peer
        .call(reqwest::Method::GET, "backups/detail", None)
        .await;
    let backups = list["backups"].as_array().cloned().unwrap_or_default();
    let mut names = std::collections::BTreeMap::<String, usize>::new();
    for b in &backups {
        *names
            .entry(b["name"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let duplicates: Vec<_> = names.iter().filter(|(_, n)| **n > 1).collect();
    let known: std::collections::BTreeSet<String> =
        jobs.iter().filter_map(|j| j.backup_id.clone()).collect();
    let lost: Vec<_> = backups
        .iter()
        .filter(|b| !known.contains(b["id"].as_str().unwrap_or_default()))
        .collect();
    let (_, snaps) = peer.call(reqwest::Method::GET, "snapshots", None).await;
    let snapshots_left = snaps["snapshots"].as_array().map_or(0, Vec::len);
    let _ = writeln!(
        std::io::stderr(),
        "real-Cinder crash loop: {cycles} SIGKILL cycles, {} jobs, {} backups, {} duplicates, {} lost, {snapshots_left} snapshots left",
        jobs.len(),
        backups.len(),
        duplicates.len(),
        lost.len()
    );
    assert!(duplicates.is_empty(), "{duplicates:?}");
    assert!(lost.is_empty(), "{lost:#?}");
    assert_eq!(snapshots_left, 0, "{snaps}");
    for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
        let b = backups
            .iter()
            .find(|b| b["name"] == job.resource_name.as_str())
            .expect("succeeded job's backup exists");
        assert_eq!(b["status"], "available");
    }
    assert!(
        jobs.iter().any(|j| j.status == JobStatus::Succeeded),
        "{jobs:#?}"
    );
    peer.tidy(&volumes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_a_real_incremental_chain() {
    let Some(url) = cinder_url() else { return };
    let peer = Peer::new(url);
    let volume = peer.create_volume().await;
    let dir = tempfile::tempdir().unwrap();
    let path = peer.write_policy_with(
        dir.path(),
        std::slice::from_ref(&volume),
        "0 0 3 * * *",
        "    retention: { keep_last: 1 }\n    full_backup_every: 3\n",
    );
    let config = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let policy = config.policies[0].clone();
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), ClientSettings::default()).unwrap();
    let slot = Utc::now().trunc_subsecs(0);
    let mut chain = Vec::new();
    for n in 0..3 {
        let r = engine
            .run_policy(&policy, slot + TimeDelta::minutes(n), Trigger::Manual)
            .await
            .unwrap();
        assert_eq!(r.jobs[0].status, JobStatus::Succeeded, "{:#?}", r.jobs[0]);
        chain.push(r.jobs[0].clone());
    }
    let flags: Vec<_> = chain.iter().map(|j| j.is_incremental).collect();
    assert_eq!(
        flags,
        [Some(false), Some(true), Some(true)],
        "one full, then incrementals"
    );

    // Retention wants the full and the first incremental gone; Cinder's
    // chain forbids it. The plan says so, and nothing failed.
    let plan = engine.prune_target(&policy, &volume, true).await.unwrap();
    for old in &chain[..2] {
        let line = plan
            .lines
            .iter()
            .find(|l| Some(&l.decision.id) == old.backup_id.as_ref())
            .unwrap();
        assert_eq!(
            line.decision.verdict,
            Verdict::BlockedByDependants,
            "{:?}",
            line.decision
        );
    }
    let conn = rusqlite::Connection::open(config.history_path()).unwrap();
    let failed: i64 = conn
        .query_row(
            "SELECT count(*) FROM retention_actions WHERE action = 'delete_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0);

    // A new full backup; the old chain goes, tip first.
    let fourth = engine
        .run_policy(&policy, slot + TimeDelta::minutes(3), Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(fourth.jobs[0].is_incremental, Some(false));
    let mut stmt = conn
        .prepare("SELECT backup_id FROM retention_actions WHERE action = 'deleted' ORDER BY id")
        .unwrap();
    let deleted: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let tip_first: Vec<String> = chain
        .iter()
        .rev()
        .map(|j| j.backup_id.clone().unwrap())
        .collect();
    assert_eq!(deleted, tip_first);
    let (_, list) = peer
        .call(reqwest::Method::GET, "backups/detail", None)
        .await;
    let left: Vec<&str> = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(left, [fourth.jobs[0].backup_id.as_deref().unwrap()]);
    peer.tidy(&[volume]).await;
}
