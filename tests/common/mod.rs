//! Shared set-up for end-to-end tests: a simulator on 127.0.0.1 and a
//! policy file pointing at it, in a temp dir.
#![allow(dead_code)]

pub mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vbs_agent::config::{self, Config};
use vbs_agent::sim::{self, SimConfig, SimHandle, SimProject, SimUser, SimVolume, VolumeFault};

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
    }
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

    async fn start_with(volumes: Vec<SimVolume>, snapshot: Duration, backup: Duration) -> Self {
        let config = SimConfig {
            projects: vec![SimProject {
                id: PROJECT.into(),
                volumes,
            }],
            tokens: vec![TOKEN.into()],
            users: vec![SimUser {
                name: "bot".into(),
                domain: "Default".into(),
                password: PASSWORD.into(),
            }],
            snapshot_duration: snapshot,
            backup_duration: backup,
            delete_duration: Duration::from_millis(200),
            ..SimConfig::default()
        };
        let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
        Self { sim, dir }
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
        format!(
            "clouds:\n  sim:\n    project_id: {PROJECT}\n{cloud_extra}    endpoints:\n      volume: {base}\n      backup: {base}\n    auth:\n      {auth}\n"
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

/// One policy entry for [`World::write_config`].
pub fn policy_yaml(name: &str, schedule: &str, volumes: &[String], extra: &str) -> String {
    let vols: String = volumes.iter().map(|v| format!("      - {v}\n")).collect();
    format!("  - name: {name}\n    kind: backup\n    cloud: sim\n    schedule: \"{schedule}\"\n    force: true\n{extra}    volumes:\n{vols}")
}

impl World {
    /// Writes `policy.yaml` from parts (top-level lines, cloud lines, the
    /// policies list as from [`policy_yaml`]) and returns its path.
    pub fn write_config(&self, top: &str, cloud_extra: &str, policies: &str) -> PathBuf {
        let text = format!(
            "state_dir: {state}\n{top}defaults:\n  completion_timeout: 30s\n  poll: {{ initial: 100ms, max: 300ms }}\n{clouds}policies:\n{policies}",
            state = self.path("state").display(),
            clouds = self.clouds_yaml_with(false, cloud_extra),
        );
        let path = self.path("policy.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
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

/// Snapshots `volume` and backs the snapshot up as `name`; returns the backup id.
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

/// Runs the `vbs-agent` binary with `args` (warnings only on stderr).
pub fn agent(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("vbs-agent runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Same as [`agent`], off the async runtime so an in-process simulator or
/// daemon keeps running.
pub async fn agent_async(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        agent(&args)
    })
    .await
    .unwrap()
}
