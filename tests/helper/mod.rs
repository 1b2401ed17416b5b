//! The one test harness, included by every test crate (`#[path]`): a
//! simulator on 127.0.0.1 and a policy file pointing at it, in a temp dir;
//! the binary and the daemon ([`run`]), the engine ([`engine`]), the
//! suites written once for every policy kind ([`crash`], [`storm`],
//! [`nights`]), and a TCP proxy that partitions a test from a server
//! ([`proxy`]). Only this module names the simulator's crate: tests use
//! `crate::helper::sim`.
// Each crate uses a part of the harness; the rest is not dead.
#![allow(dead_code, unused_imports)]

pub mod crash;
pub mod engine;
pub mod ha;
pub mod nights;
pub mod proxy;
pub mod run;
pub mod storm;

pub use engine::Setup;
pub use run::{agent, agent_async, agent_env, signal, spawn_agent, text, Daemon};

use std::path::{Path, PathBuf};
use std::time::Duration;

use sim::{SimConfig, SimHandle, SimProject, SimServer, SimUser, SimVolume, VolumeFault};
use vbs_agent::config::{self, Config};
pub use vbs_sim as sim;

pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "static-test-token-5f2a9c";
pub const PASSWORD: &str = "pw-7d1e8b-secret";

/// A running simulator and a temp dir for the policy file and history.
pub struct World {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
}

/// A volume for the simulator.
pub fn volume(n: u32, fault: Option<VolumeFault>) -> SimVolume {
    SimVolume {
        id: volume_id(n),
        size_gb: 8,
        attached: n.is_multiple_of(2),
        fault,
        ..SimVolume::default()
    }
}

/// [`volume`] whose backups end in `error` with this reason.
pub fn failing_volume(n: u32, fail_reason: &str) -> SimVolume {
    volume(
        n,
        Some(VolumeFault::BackupError {
            fail_reason: fail_reason.into(),
        }),
    )
}

/// A stable UUID per test volume number, distinct in its first 8 digits
/// (the part that goes into resource names).
pub fn volume_id(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

impl World {
    /// Starts a simulator with these volumes, a static token and a
    /// Keystone user `bot` / [`PASSWORD`].
    pub async fn start(volumes: Vec<SimVolume>) -> Self {
        Self::start_with(
            volumes,
            Duration::from_millis(300),
            Duration::from_millis(800),
        )
        .await
    }

    /// Like [`World::start`], with resources that settle at once.
    pub async fn start_instant(volumes: Vec<SimVolume>) -> Self {
        Self::start_with(volumes, Duration::ZERO, Duration::ZERO).await
    }

    /// Like [`World::start`], the simulator accepting each of `tokens` too
    /// (one for each agent of a pair, so that its request log tells their
    /// calls apart).
    pub async fn start_with_tokens(volumes: Vec<SimVolume>, tokens: &[&str]) -> Self {
        let mut config = Self::timed(
            volumes,
            Duration::from_millis(300),
            Duration::from_millis(800),
        );
        config.tokens.extend(tokens.iter().map(|t| t.to_string()));
        Self::start_config(config).await
    }

    async fn start_with(volumes: Vec<SimVolume>, snapshot: Duration, backup: Duration) -> Self {
        Self::start_config(Self::timed(volumes, snapshot, backup)).await
    }

    /// A simulator's configuration whose snapshots take `snapshot` and
    /// backups `backup`.
    fn timed(volumes: Vec<SimVolume>, snapshot: Duration, backup: Duration) -> SimConfig {
        SimConfig {
            snapshot_duration: snapshot,
            backup_duration: backup,
            ..Self::sim_config(volumes)
        }
    }

    /// A simulator with these volumes whose snapshots and backups settle
    /// quickly, where a volume takes `create` to be made and a restore
    /// `restore` to finish (drills).
    pub async fn start_restores(
        volumes: Vec<SimVolume>,
        create: Duration,
        restore: Duration,
    ) -> Self {
        Self::start_config(SimConfig {
            snapshot_duration: Duration::from_millis(100),
            backup_duration: Duration::from_millis(200),
            volume_create_duration: create,
            restore_duration: restore,
            ..Self::sim_config(volumes)
        })
        .await
    }

    /// A simulator with `servers` for CSBS (server backups take `backup`,
    /// items are listed after `item_delay`, a deletion takes 300 ms).
    pub async fn start_servers(
        servers: Vec<SimServer>,
        backup: Duration,
        item_delay: Duration,
    ) -> Self {
        Self::start_config(SimConfig {
            servers,
            server_backup_duration: backup,
            checkpoint_item_delay: item_delay,
            checkpoint_delete_duration: Duration::from_millis(300),
            ..Self::sim_config(Vec::new())
        })
        .await
    }

    /// A simulator with these servers and CBR `vaults`; backups are
    /// available and listed at once.
    pub async fn start_cbr_servers(servers: Vec<SimServer>, vaults: Vec<sim::SimVault>) -> Self {
        Self::start_config(SimConfig {
            servers,
            cbr_vaults: vaults,
            backup_duration: Duration::ZERO,
            cbr_listing_delay: Duration::ZERO,
            ..Self::sim_config(Vec::new())
        })
        .await
    }

    fn sim_config(volumes: Vec<SimVolume>) -> SimConfig {
        SimConfig {
            projects: vec![SimProject::new(PROJECT, volumes)],
            tokens: vec![TOKEN.into()],
            users: vec![SimUser {
                name: "bot".into(),
                domain: "Default".into(),
                password: PASSWORD.into(),
            }],
            delete_duration: Duration::from_millis(200),
            ..SimConfig::default()
        }
    }

    /// A simulator with these volumes and CBR `vaults`: backups take
    /// `backup` and show up in lists `listing` after their run.
    pub async fn start_cbr(
        volumes: Vec<SimVolume>,
        vaults: Vec<sim::SimVault>,
        backup: Duration,
        listing: Duration,
    ) -> Self {
        Self::start_config(SimConfig {
            backup_duration: backup,
            cbr_vaults: vaults,
            cbr_listing_delay: listing,
            ..Self::sim_config(volumes)
        })
        .await
    }

    async fn start_config(config: SimConfig) -> Self {
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        Self { sim, dir }
    }

    /// Posts `body` to the cloud at `path` as someone other than the agent
    /// would (a resource made by hand); returns the answer.
    pub async fn post_by_hand(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.sim.base_url()))
            .header("X-Auth-Token", TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Deletes at `path` as someone other than the agent would; returns
    /// the answer's status.
    pub async fn delete_by_hand(&self, path: &str) -> u16 {
        reqwest::Client::new()
            .delete(format!("{}{path}", self.sim.base_url()))
            .header("X-Auth-Token", TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `clouds:` block: token auth (or password auth via the simulator's Keystone).
    pub fn clouds_yaml(&self, password_auth: bool) -> String {
        self.clouds_yaml_with(password_auth, "")
    }

    /// The `clouds:` block with extra lines for the cloud (`rate_limit: …`).
    pub fn clouds_yaml_with(&self, password_auth: bool, cloud_extra: &str) -> String {
        let base = self.sim.base_url();
        let auth = if password_auth {
            format!(
                "type: password\n      auth_url: {base}/v3\n      user: bot\n      user_domain: Default\n      password_file: {}",
                self.path("password").display()
            )
        } else {
            format!(
                "type: token\n      token_file: {}",
                self.path("token").display()
            )
        };
        self.clouds_yaml_auth(&auth, cloud_extra)
    }

    /// The `clouds:` block with these `auth:` lines (as from
    /// [`token_env_auth`]) and extra lines for the cloud.
    pub fn clouds_yaml_auth(&self, auth: &str, cloud_extra: &str) -> String {
        let base = self.sim.base_url();
        format!(
            "clouds:\n  sim:\n    project_id: {PROJECT}\n{cloud_extra}    endpoints:\n      volume: {base}\n      backup: {base}\n      server_backup: {base}\n      cbr: {base}/cbr\n      compute: {base}\n    auth:\n      {auth}\n"
        )
    }

    /// Writes a policy file with one policy over `volumes` and loads it.
    pub fn config(
        &self,
        schedule: &str,
        volumes: &[String],
        extra: &str,
        password_auth: bool,
    ) -> Config {
        let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
        let text = format!(
            "state_dir: {state}\ndefaults:\n  completion_timeout: 30s\n  poll: {{ initial: 200ms, max: 500ms }}\n{clouds}policies:\n  - name: e2e\n    kind: backup\n    cloud: sim\n    schedule: \"{schedule}\"\n    force: true\n{extra}    volumes:\n{vols}",
            state = self.path("state").display(),
            clouds = self.clouds_yaml(password_auth),
        );
        let path = self.path("policy.yaml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }
}

/// The `auth:` lines of a cloud whose token each agent reads from the
/// environment variable `var`: one policy file, a token per process.
pub fn token_env_auth(var: &str) -> String {
    format!("type: token\n      token_env: {var}")
}

/// One policy entry for [`World::write_config`].
pub fn policy_yaml(name: &str, schedule: &str, volumes: &[String], extra: &str) -> String {
    volume_policy_yaml("backup", name, schedule, volumes, extra)
}

/// The cloud lines that make the simulated cloud back up through CBR.
pub const CBR_CLOUD: &str = "    backup_service: cbr\n";

/// One backup policy entry for a CBR cloud (no `force`, which CBR refuses);
/// `extra` names the `vault`.
pub fn cbr_policy_yaml(name: &str, schedule: &str, volumes: &[String], extra: &str) -> String {
    let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
    format!("  - name: {name}\n    kind: backup\n    cloud: sim\n    schedule: \"{schedule}\"\n{extra}    volumes:\n{vols}")
}

/// A CBR disk vault of the project holding volumes `numbers`.
pub fn disk_vault(name: &str, numbers: &[u32]) -> sim::SimVault {
    sim::SimVault {
        project: PROJECT.into(),
        id: uuid::Uuid::new_v4().to_string(),
        name: name.into(),
        object_type: "disk".into(),
        resources: numbers.iter().map(|n| volume_id(*n)).collect(),
        policy_id: None,
    }
}

/// A CBR server vault of the project holding servers `numbers`.
pub fn server_vault(name: &str, numbers: &[u32]) -> sim::SimVault {
    sim::SimVault {
        object_type: "server".into(),
        resources: numbers.iter().map(|n| server_id(*n)).collect(),
        ..disk_vault(name, &[])
    }
}

/// The name of the CBR checkpoint `job`'s last attempt belongs to, which
/// its backup carries: the run's for a first attempt, the attempt's own
/// for a retry.
pub fn cbr_checkpoint_name(job: &vbs_agent::store::JobRecord) -> String {
    if job.attempt <= 1 {
        vbs_agent::naming::run_name(&job.policy, job.slot)
    } else {
        job.resource_name.clone()
    }
}

/// The ids of the project's live CBR backups.
pub fn cbr_backup_ids(world: &World) -> Vec<String> {
    world
        .sim
        .cbr_backups(PROJECT)
        .into_iter()
        .map(|b| b.id)
        .collect()
}

/// One `kind: snapshot` policy entry for [`World::write_config`].
pub fn snapshot_policy_yaml(name: &str, schedule: &str, volumes: &[String], extra: &str) -> String {
    volume_policy_yaml("snapshot", name, schedule, volumes, extra)
}

fn volume_policy_yaml(
    kind: &str,
    name: &str,
    schedule: &str,
    volumes: &[String],
    extra: &str,
) -> String {
    let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
    format!("  - name: {name}\n    kind: {kind}\n    cloud: sim\n    schedule: \"{schedule}\"\n    force: true\n{extra}    volumes:\n{vols}")
}

impl World {
    /// Writes `policy.yaml` from parts (top-level lines, cloud lines, the
    /// policies list as from [`policy_yaml`]) and returns its path.
    pub fn write_config(&self, top: &str, cloud_extra: &str, policies: &str) -> PathBuf {
        self.write_config_clouds(top, &self.clouds_yaml_with(false, cloud_extra), policies)
    }

    /// [`World::write_config`] with a `clouds:` block of the caller's (as
    /// from [`World::clouds_yaml_auth`]).
    pub fn write_config_clouds(&self, top: &str, clouds: &str, policies: &str) -> PathBuf {
        let text = format!(
            "state_dir: {state}\n{top}defaults:\n  completion_timeout: 30s\n  poll: {{ initial: 100ms, max: 300ms }}\n{clouds}policies:\n{policies}",
            state = self.path("state").display(),
        );
        let path = self.path("policy.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Client settings with short retries, so a test through faults stays quick.
pub fn fast() -> vbs_agent::api::ClientSettings {
    vbs_agent::api::ClientSettings {
        retry_min_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..Default::default()
    }
}

/// Every job in the history at `path` (none while it cannot be read yet).
pub fn jobs(history: &Path) -> Vec<vbs_agent::store::JobRecord> {
    vbs_agent::store::Store::open_read_only(history)
        .and_then(|s| s.recent_jobs(100_000))
        .unwrap_or_default()
}

/// Whether the history at `path` has no unfinished job.
pub fn all_finished(history: &Path) -> bool {
    vbs_agent::store::Store::open_read_only(history)
        .and_then(|s| s.unfinished_jobs())
        .is_ok_and(|u| u.is_empty())
}

pub fn load(path: &Path) -> Config {
    config::load(path).unwrap_or_else(|e| panic!("policy file rejected:\n{e}"))
}

/// Waits (up to a generous bound, so a slow machine only makes the test
/// slower, never wrong) until `cond` holds.
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Snapshots `volume` and backs the snapshot up as `name` once the
/// snapshot is available; returns the backup id.
pub async fn make_backup(client: &vbs_agent::api::CloudClient, volume: &str, name: &str) -> String {
    use vbs_agent::api::{NewBackup, NewSnapshot};
    let snap = client
        .create_snapshot(&NewSnapshot {
            volume_id: volume,
            name,
            description: "t",
            force: false,
        })
        .await
        .unwrap();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    while client.snapshot(&snap.id).await.unwrap().status != "available" {
        assert!(
            tokio::time::Instant::now() < give_up,
            "snapshot {}",
            snap.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .create_backup(&NewBackup {
            volume_id: volume,
            snapshot_id: &snap.id,
            name,
            description: "t",
            force: false,
            incremental: false,
        })
        .await
        .unwrap()
        .id
}

/// A server for the simulator with two disks, in the test project.
pub fn server(n: u32) -> SimServer {
    SimServer {
        project: PROJECT.into(),
        id: server_id(n),
        name: format!("web-{n}"),
        volumes: vec![(volume_id(100 + n), 40), (volume_id(200 + n), 100)],
        ..SimServer::default()
    }
}

/// [`server`] whose backups end in `error` with this reason and code.
pub fn failing_server(n: u32, fail_reason: &str, fail_code: i64) -> SimServer {
    SimServer {
        fault: Some(sim::ServerFault::BackupError {
            fail_reason: fail_reason.into(),
            fail_code,
        }),
        ..server(n)
    }
}

/// A stable UUID per test server number (first 8 digits distinct).
pub fn server_id(n: u32) -> String {
    format!("5e{n:06x}-0000-4000-8000-{n:012x}")
}

/// One `kind: server` policy entry for [`World::write_config`].
pub fn server_policy_yaml(name: &str, schedule: &str, servers: &[String], extra: &str) -> String {
    let list: String = servers.iter().map(|s| format!("      - {s}\n")).collect();
    format!("  - name: {name}\n    kind: server\n    cloud: sim\n    schedule: \"{schedule}\"\n{extra}    servers:\n{list}")
}

/// The ids of the backups the cloud holds now.
pub fn backup_ids(world: &World) -> Vec<String> {
    world
        .sim
        .backups(PROJECT)
        .into_iter()
        .map(|b| b.id)
        .collect()
}

/// The ids of the snapshots the cloud holds now.
pub fn snapshot_ids(world: &World) -> Vec<String> {
    world
        .sim
        .snapshots(PROJECT)
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// The item ids (as jobs record them) of the server backups the cloud holds now.
pub fn server_backup_ids(world: &World) -> Vec<String> {
    world
        .sim
        .checkpoints(PROJECT)
        .into_iter()
        .map(|c| c.item_id)
        .collect()
}

/// The volumes the agent made for restores that are still in the cloud.
pub fn restore_volumes_left(world: &World) -> Vec<String> {
    world
        .sim
        .volumes(PROJECT)
        .into_iter()
        .filter(|v| v.metadata.contains_key("vbs-agent-restore-job"))
        .map(|v| format!("{} {} {}", v.id, v.status, v.name.unwrap_or_default()))
        .collect()
}

/// Every volume the agent made through the API (the ledger's `volume`
/// entries), deleted ones included.
pub fn volumes_made(world: &World) -> Vec<sim::LedgerEntry> {
    world
        .sim
        .ledger()
        .into_iter()
        .filter(|e| e.kind == "volume")
        .collect()
}

/// Names that occur more than once, with their counts.
pub fn names_made_twice<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, usize)> {
    let mut per_name: std::collections::BTreeMap<&str, usize> = Default::default();
    for name in names {
        *per_name.entry(name).or_default() += 1;
    }
    per_name
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, n)| (name.to_string(), n))
        .collect()
}

/// A server on 127.0.0.1 that accepts every connection and never answers:
/// a hung cloud or webhook.
pub fn silent_server() -> std::net::SocketAddr {
    raw_server("")
}

/// A server on 127.0.0.1 that reads each request and writes `answer`
/// (raw HTTP, which may stop half-way through a body), then waits for the
/// next request on the same connection and never closes it. Its threads are
/// not driven by tokio, so it works on a paused clock too.
pub fn raw_server(answer: &'static str) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut body_len = 0;
                    let mut line = String::new();
                    while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            body_len = v.trim().parse().unwrap_or(0);
                        }
                        line.clear();
                    }
                    let mut body = vec![0u8; body_len];
                    if line.is_empty() || reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
