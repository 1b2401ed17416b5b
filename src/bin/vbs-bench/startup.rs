//! Start-up: `check` and daemon READY on a large policy file.

use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fleet_file::{policy_file, TOKEN_ENV};
use crate::process::{agent_binary, Daemon};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policies in the file.
    #[arg(long, default_value_t = 100)]
    policies: usize,
    /// Volumes per policy.
    #[arg(long, default_value_t = 100)]
    volumes_each: usize,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 11)]
    runs: usize,
}

#[derive(Debug, Serialize)]
struct Result {
    bench: &'static str,
    volumes: usize,
    file_bytes: usize,
    check_median_ms: f64,
    ready_median_ms: f64,
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

pub fn run(args: &Args) -> std::result::Result<String, String> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let text = policy_file(
        &dir.path().display().to_string(),
        "http://127.0.0.1:9",
        args.policies,
        args.volumes_each,
        |i| format!("0 {} 1 * * *", i % 60),
    );
    let file = dir.path().join("fleet.yaml");
    std::fs::write(&file, &text).map_err(|e| e.to_string())?;
    let agent = agent_binary()?;
    let mut checks = Vec::new();
    for _ in 0..args.runs {
        let start = Instant::now();
        let out = Command::new(&agent)
            .args(["check", "--config"])
            .arg(&file)
            .output()
            .map_err(|e| e.to_string())?;
        checks.push(start.elapsed());
        if !out.status.success() {
            return Err(format!(
                "check failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let mut readies = Vec::new();
    for _ in 0..args.runs {
        let daemon = Daemon::start(&file, &[(TOKEN_ENV, "bench-token")])?;
        readies.push(daemon.wait_ready(Duration::from_secs(60))?);
    }
    let r = Result {
        bench: "startup",
        volumes: args.policies * args.volumes_each,
        file_bytes: text.len(),
        check_median_ms: median(checks),
        ready_median_ms: median(readies),
    };
    println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    Ok(format!(
        "| volumes (policies) | file | `check` (median of {n}) | daemon READY (median of {n}) |\n| ---: | ---: | ---: | ---: |\n| {} ({}) | {} KiB | {:.0} ms | {:.0} ms |\n",
        r.volumes, args.policies, r.file_bytes / 1024, r.check_median_ms, r.ready_median_ms, n = args.runs
    ))
}
