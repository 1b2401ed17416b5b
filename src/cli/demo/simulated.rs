//! The demo proper: the simulator on 127.0.0.1, the agent against it, then
//! the history.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use vbs_sim::{SimConfig, SimProject, SimUser, SimVolume, VolumeFault};

use crate::cli::{history, table};
use crate::config;
use crate::daemon;
use crate::store::Store;

const PROJECT: &str = "0123456789abcdef0123456789abcdef";
const FAILING_VOLUME: &str = "d4c3b2a1-0000-4000-8000-00000000000f";
const FAIL_REASON: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";

pub async fn run(seconds: u64, state_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    // `shown` as the user gave it (or relative), for the closing hints; the
    // policy file gets the absolute path.
    let shown = state_dir.unwrap_or_else(default_state_dir);
    let state_dir = std::fs::create_dir_all(&shown)
        .and_then(|()| std::fs::canonicalize(&shown))
        .with_context(|| {
            format!(
                "creating {} (pass --state-dir DIR to keep the demo elsewhere)",
                shown.display()
            )
        })?;

    let sim = vbs_sim::start(sim_config(), "127.0.0.1:0".parse()?).await?;
    // The simulator's own demo password, not a secret of anyone's.
    let password_file = state_dir.join("password");
    std::fs::write(&password_file, "demo-password\n")?;
    let policy_path = state_dir.join("demo.yaml");
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
    let agent = invocation();
    let db = shown.join("history.db");
    outln!(
        "\nThe demo is kept in {}; look at its history again with:",
        shown.display()
    );
    outln!("  {agent} history --db {}", db.display());
    outln!(
        "  {agent} report --config {} --since 1d",
        shown.join("demo.yaml").display()
    );
    outln!(
        "  sqlite3 {} 'SELECT status, count(*) FROM jobs GROUP BY status'",
        db.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `vbs-agent-demo/<UTC time>` in the current directory: each demo starts a
/// history of its own, and none is removed.
fn default_state_dir() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    PathBuf::from("vbs-agent-demo").join(stamp)
}

/// How to run this binary again from here: its path relative to the current
/// directory when it lies below it (`target/release/vbs-agent`), else its name.
fn invocation() -> String {
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    match (exe, cwd) {
        (Some(exe), Some(cwd)) => exe
            .strip_prefix(&cwd)
            .map_or_else(|_| "vbs-agent".to_string(), |p| p.display().to_string()),
        _ => "vbs-agent".to_string(),
    }
}

fn sim_config() -> SimConfig {
    let volume = |id: &str, attached: bool, fault: Option<VolumeFault>| SimVolume {
        id: id.to_string(),
        size_gb: 10,
        attached,
        fault,
        ..SimVolume::default()
    };
    SimConfig {
        projects: vec![SimProject::new(
            PROJECT,
            vec![
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
        )],
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

fn policy_yaml(base_url: &str, state_dir: &Path, password_file: &Path) -> String {
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
