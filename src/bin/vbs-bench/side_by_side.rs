//! Side by side with what users do today: the same number of volumes
//! backed up three ways in one run, each in its own project of one
//! simulator (so each does the same work on fresh volumes) — `vbs-agent
//! trigger`, a cron-style shell loop over the `openstack` CLI, and a
//! Python script on openstacksdk's block-storage proxy. CPU is what the
//! way's processes used (this process's waited-for children, from
//! `/proc/self/stat`), API calls are what the simulator counted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use vbs_sim::{SimConfig, SimHandle, SimProject, SimUser, SimVolume};

use crate::process::{agent_binary, children_cpu_seconds};
use crate::simulator;

const CLI_LOOP: &str = include_str!("side_by_side/cli_loop.sh");
const SDK_SCRIPT: &str = include_str!("side_by_side/sdk_script.py");
const REQUIREMENTS: &str = "src/bin/vbs-bench/side_by_side/requirements.txt";
const USER: &str = "bench";
const PASSWORD: &str = "bench-password";
const PASSWORD_ENV: &str = "VBS_BENCH_PASSWORD";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Volumes each way backs up.
    #[arg(long, default_value_t = 100)]
    volumes: usize,
    /// Simulated snapshot, backup and delete durations.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    work: Duration,
    /// Poll interval of the shell loop and the SDK script
    /// (`wait_for_status` defaults to 2 s).
    #[arg(long, default_value_t = 2)]
    poll_seconds: u64,
}

/// The three ways, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Agent,
    CliLoop,
    SdkScript,
}

impl Way {
    const ALL: [Way; 3] = [Way::Agent, Way::CliLoop, Way::SdkScript];

    fn label(self) -> &'static str {
        match self {
            Way::Agent => "`vbs-agent trigger` (one policy)",
            Way::CliLoop => "shell loop over the `openstack` CLI (sequential, cron-style)",
            Way::SdkScript => "Python script, openstacksdk `wait_for_status` (sequential)",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Way::Agent => "vbs-agent-trigger",
            Way::CliLoop => "openstack-cli-loop",
            Way::SdkScript => "openstacksdk-script",
        }
    }

    /// Each way has its own project, so its volumes are untouched.
    fn project(self) -> String {
        format!("{:032x}", 0x5b5 + self as usize)
    }
}

#[derive(Debug, Serialize)]
struct Outcome {
    bench: &'static str,
    way: &'static str,
    volumes: usize,
    backups_available: usize,
    exit_ok: bool,
    cpu_seconds: f64,
    wall_seconds: f64,
    api_calls: u64,
}

pub fn run(args: &Args) -> Result<String, String> {
    if args.volumes == 0 {
        return Err("--volumes must be at least 1".into());
    }
    clients_installed()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sim = runtime.block_on(start_sim(args))?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for way in Way::ALL {
        let o = one_way(args, &sim, dir.path(), way)?;
        println!("{}", serde_json::to_string(&o).map_err(|e| e.to_string())?);
        rows.push((way, o));
    }
    runtime.block_on(sim.shutdown());
    Ok(table(&rows))
}

/// The clients must be installed beforehand; the bench installs nothing.
fn clients_installed() -> Result<(), String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [
        (
            "the `openstack` command",
            works("openstack", &["--version"]),
        ),
        (
            "the Python module `openstack` (openstacksdk)",
            works("python3", &["-c", "import openstack"]),
        ),
    ]
    .into_iter()
    .filter_map(|(what, ok)| (!ok).then_some(what))
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} not found; install the clients with `pip install -r {REQUIREMENTS}` \
             (python-openstackclient and openstacksdk) and run again",
            missing.join(" and ")
        ))
    }
}

fn volume_ids(way: Way, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("00000000-0000-4000-8{:03x}-{i:012x}", way as usize))
        .collect()
}

async fn start_sim(args: &Args) -> Result<SimHandle, String> {
    let projects = Way::ALL
        .iter()
        .map(|&way| {
            SimProject::new(
                &way.project(),
                volume_ids(way, args.volumes)
                    .into_iter()
                    .map(|id| SimVolume {
                        id,
                        size_gb: 10,
                        ..SimVolume::default()
                    })
                    .collect(),
            )
        })
        .collect();
    let config = SimConfig {
        projects,
        users: vec![SimUser {
            name: USER.into(),
            domain: "Default".into(),
            password: PASSWORD.into(),
        }],
        ..SimConfig::default()
    };
    simulator::start(config, args.work).await
}

fn one_way(args: &Args, sim: &SimHandle, dir: &Path, way: Way) -> Result<Outcome, String> {
    let project = way.project();
    let volumes = volume_ids(way, args.volumes);
    let poll = args.poll_seconds.to_string();
    let mut cmd = match way {
        Way::Agent => {
            let file = dir.join("side-by-side.yaml");
            let text = policy_file(&dir.display().to_string(), &sim.base_url(), &volumes);
            std::fs::write(&file, text).map_err(|e| e.to_string())?;
            let mut c = Command::new(agent_binary()?);
            c.args(["trigger", "--policy", "side-by-side", "--config"])
                .arg(&file)
                .env(PASSWORD_ENV, PASSWORD)
                .env("RUST_LOG", "warn");
            c
        }
        Way::CliLoop => {
            let script = dir.join("cli_loop.sh");
            std::fs::write(&script, CLI_LOOP).map_err(|e| e.to_string())?;
            let mut c = Command::new("bash");
            c.arg(script).arg(&poll).args(&volumes);
            c
        }
        Way::SdkScript => {
            let script = dir.join("sdk_script.py");
            std::fs::write(&script, SDK_SCRIPT).map_err(|e| e.to_string())?;
            let mut c = Command::new("python3");
            c.arg(script).arg(&poll).args(&volumes);
            c
        }
    };
    if way != Way::Agent {
        openstack_env(&mut cmd, &sim.base_url(), &project);
    }
    let log = dir.join(format!("{}.log", way.key()));
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    cmd.stdout(log_file).stderr(err_file).stdin(Stdio::null());

    let cpu_before = children_cpu_seconds()?;
    let calls_before = sim.request_count();
    let start = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {}: {e}", way.key()))?;
    let wall = start.elapsed();
    let calls = sim.request_count() - calls_before;
    let cpu = children_cpu_seconds()? - cpu_before;
    if !status.success() {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        eprintln!(
            "{} exited with {status}; last lines:\n{}",
            way.key(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let backups_available = sim
        .backups(&project)
        .iter()
        .filter(|b| b.status == "available")
        .count();
    Ok(Outcome {
        bench: "side-by-side",
        way: way.key(),
        volumes: args.volumes,
        backups_available,
        exit_ok: status.success(),
        cpu_seconds: cpu,
        wall_seconds: wall.as_secs_f64(),
        api_calls: calls,
    })
}

/// Keystone password credentials for the Python clients, as an ops host
/// sets them (`OS_*`), for the simulator's loopback address only.
fn openstack_env(cmd: &mut Command, base: &str, project: &str) {
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
        cmd.env_remove(k);
    }
    cmd.env("OS_AUTH_URL", format!("{base}/v3"))
        .env("OS_AUTH_TYPE", "v3password")
        .env("OS_USERNAME", USER)
        .env("OS_PASSWORD", PASSWORD)
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_ID", project)
        .env("OS_REGION_NAME", "sim-1")
        .env("OS_INTERFACE", "public")
        .env("OS_VOLUME_API_VERSION", "3")
        .env("OS_BLOCK_STORAGE_API_VERSION", "3");
}

/// One backup policy over `volumes` with Keystone password auth.
fn policy_file(state_dir: &str, base: &str, volumes: &[String]) -> String {
    let mut y = format!(
        "state_dir: {state_dir}\n\
         clouds:\n  sim:\n    project_id: {}\n\
         \x20   endpoints: {{ volume: {base}, backup: {base} }}\n\
         \x20   auth: {{ type: password, auth_url: {base}/v3, user: {USER}, user_domain: Default, password_env: {PASSWORD_ENV} }}\n\
         policies:\n  - name: side-by-side\n    kind: backup\n    cloud: sim\n\
         \x20   schedule: \"0 0 1 * * *\"\n    force: true\n    volumes:\n",
        Way::Agent.project()
    );
    for v in volumes {
        y += &format!("      - {v}\n");
    }
    y
}

/// `x` as a multiple of `base`: `12.3×`, or `—` when `base` is zero.
fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 {
        let r = x / base;
        if r >= 10.0 {
            format!("{r:.0}×")
        } else {
            format!("{r:.1}×")
        }
    } else {
        "—".into()
    }
}

fn table(rows: &[(Way, Outcome)]) -> String {
    let mut t = String::from(
        "| way | backups available | wall time | CPU seconds | API calls | CPU vs agent | wall vs agent | API calls vs agent |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let Some((_, base)) = rows.iter().find(|(w, _)| *w == Way::Agent) else {
        return t;
    };
    for (way, o) in rows {
        t += &format!(
            "| {} | {} of {} | {:.1} s | {:.2} s | {} | {} | {} | {} |\n",
            way.label(),
            o.backups_available,
            o.volumes,
            o.wall_seconds,
            o.cpu_seconds,
            o.api_calls,
            ratio(o.cpu_seconds, base.cpu_seconds),
            ratio(o.wall_seconds, base.wall_seconds),
            ratio(o.api_calls as f64, base.api_calls as f64),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_multiples_of_the_agent() {
        assert_eq!(ratio(2.0, 1.0), "2.0×");
        assert_eq!(ratio(1.0, 4.0), "0.2×");
        assert_eq!(ratio(123.4, 2.0), "62×");
        assert_eq!(ratio(5.0, 0.0), "—");
    }

    #[test]
    fn the_agent_policy_file_is_valid_and_names_every_volume() {
        let volumes = volume_ids(Way::Agent, 3);
        let text = policy_file("/tmp/x", "http://127.0.0.1:9", &volumes);
        let config = vbs_agent::config::parse(&text, Path::new("s.yaml")).unwrap();
        assert_eq!(config.policies.len(), 1);
        assert_eq!(config.policies[0].targets(), volumes);
    }

    #[test]
    fn each_way_has_its_own_project_and_volumes() {
        let projects: std::collections::HashSet<String> =
            Way::ALL.iter().map(|w| w.project()).collect();
        assert_eq!(projects.len(), 3);
        assert!(projects.iter().all(|p| p.len() == 32));
        assert_ne!(volume_ids(Way::CliLoop, 1), volume_ids(Way::SdkScript, 1));
        assert!(volume_ids(Way::SdkScript, 2)
            .iter()
            .all(|v| uuid::Uuid::parse_str(v).is_ok()));
    }
}
