//! `vbs-agent demo`: the whole agent against the built-in simulator on
//! 127.0.0.1, with Keystone password auth, a policy every few seconds over
//! several volumes (one of which the simulated cloud fails), then the history.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::{history, table};
use crate::config;
use crate::daemon;
use crate::sim::{self, SimConfig, SimProject, SimUser, SimVolume, VolumeFault};
use crate::store::Store;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const FAILING_VOLUME: &str = "d4c3b2a1-0000-4000-8000-00000000000f";
const FAIL_REASON: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";

pub async fn run(seconds: u64, state_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let temp = tempfile::Builder::new()
        .prefix("vbs-agent-demo-")
        .tempdir()?;
    let keep = state_dir.is_some();
    let state_dir = match state_dir {
        Some(dir) => dir,
        None => temp.path().join("state"),
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;

    let sim = sim::start(sim_config(), "127.0.0.1:0".parse()?).await?;
    let password_file = temp.path().join("password");
    std::fs::write(&password_file, "demo-password\n")?;
    let policy_path = temp.path().join("demo.yaml");
    std::fs::write(
        &policy_path,
        policy_yaml(&sim.base_url(), &state_dir, &password_file),
    )?;
    let config =
        config::load(&policy_path).map_err(|e| anyhow::anyhow!("demo policy is invalid: {e}"))?;

    outln!("Simulated cloud on {} (project {PROJECT}).", sim.base_url());
    outln!("Policy file: {}", policy_path.display());
    outln!("Backing up 4 volumes every 10 s for {seconds} s; volume {FAILING_VOLUME} fails in the cloud.\n");

    daemon::run(
        config.clone(),
        tokio::time::sleep(Duration::from_secs(seconds)),
    )
    .await?;
    sim.shutdown().await;

    let store = Store::open_read_only(&config.history_path())?;
    let jobs = store.recent_jobs(100)?;
    outln!();
    out!(
        "{}",
        table::render(history::HEADER, &history::job_rows(&jobs))
    );
    outln!(
        "\nHistory: {}  (try: sqlite3 {} 'SELECT status, count(*) FROM jobs GROUP BY status')",
        config.history_path().display(),
        config.history_path().display()
    );
    if !keep {
        outln!("(removed on exit; pass --state-dir DIR to keep it)");
    }
    Ok(ExitCode::SUCCESS)
}

fn sim_config() -> SimConfig {
    let volume = |id: &str, attached: bool, fault: Option<VolumeFault>| SimVolume {
        id: id.to_string(),
        size_gb: 10,
        attached,
        fault,
    };
    SimConfig {
        projects: vec![SimProject {
            id: PROJECT.to_string(),
            volumes: vec![
                volume("c5834fe1-577f-462e-9bf3-1b158e1dde9c", true, None),
                volume("2748f2f2-4394-4e6e-af8d-8dd34496c024", true, None),
                volume("a7d7783f-02b7-4645-b0e3-61df63f0ba10", false, None),
                volume(
                    FAILING_VOLUME,
                    false,
                    Some(VolumeFault::BackupError {
                        fail_reason: FAIL_REASON.to_string(),
                    }),
                ),
            ],
        }],
        users: vec![SimUser {
            name: "backup-bot".into(),
            domain: "Default".into(),
            password: "demo-password".into(),
        }],
        snapshot_duration: Duration::from_secs(1),
        backup_duration: Duration::from_secs(3),
        delete_duration: Duration::from_millis(500),
        ..SimConfig::default()
    }
}

fn policy_yaml(
    base_url: &str,
    state_dir: &std::path::Path,
    password_file: &std::path::Path,
) -> String {
    format!(
        r#"state_dir: {state}
defaults:
  timezone: Europe/Berlin
  completion_timeout: 60s
  poll: {{ initial: 1s, max: 2s }}
clouds:
  sim:
    project_id: {PROJECT}
    endpoints:
      volume: {base_url}
      backup: {base_url}
    auth:
      type: password
      auth_url: {base_url}/v3
      user: backup-bot
      user_domain: Default
      password_file: {password}
policies:
  - name: demo-every-10s
    kind: backup
    cloud: sim
    schedule: "*/10 * * * * *"
    force: true
    description: vbs-agent demo
    volumes:
      - c5834fe1-577f-462e-9bf3-1b158e1dde9c
      - 2748f2f2-4394-4e6e-af8d-8dd34496c024
      - a7d7783f-02b7-4645-b0e3-61df63f0ba10
      - {FAILING_VOLUME}
"#,
        state = state_dir.display(),
        password = password_file.display(),
    )
}
