//! Scheduler precision: how late the agent's timers fire with many
//! policies registered, and what the daemon costs while nothing is due.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use vbs_agent::daemon::scheduler;

use crate::fleet_file::{policy_file, TOKEN_ENV};
use crate::process::{cpu_seconds, Daemon};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policies (cron jobs) registered.
    #[arg(long, default_value_t = 1000)]
    policies: usize,
    /// How long to record firings.
    #[arg(long, default_value = "130s", value_parser = humantime::parse_duration)]
    fire_for: Duration,
    /// How long to measure the idle daemon's CPU.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    idle_for: Duration,
}

#[derive(Debug, Serialize)]
struct Result {
    bench: &'static str,
    policies: usize,
    firings: usize,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
    idle_seconds: f64,
    idle_cpu_percent_of_a_core: f64,
}

pub fn run(args: &Args) -> std::result::Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut late = fire(args, dir.path())?;
    if late.is_empty() {
        return Err("no policy fired; raise --fire-for".into());
    }
    late.sort();
    let ms = |p: f64| late[((late.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    let idle = idle_cpu(args, dir.path())?;
    let r = Result {
        bench: "scheduler",
        policies: args.policies,
        firings: late.len(),
        lateness_p50_ms: ms(0.5),
        lateness_p99_ms: ms(0.99),
        lateness_max_ms: ms(1.0),
        idle_seconds: args.idle_for.as_secs_f64(),
        idle_cpu_percent_of_a_core: idle * 100.0,
    };
    println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    Ok(format!(
        "| cron jobs | firings | lateness p50 / p99 / max | idle CPU (daemon, {:.0} s) |\n| ---: | ---: | --- | ---: |\n| {} | {} | {:.1} ms / {:.1} ms / {:.1} ms | {:.3} % of a core |\n",
        r.idle_seconds, r.policies, r.firings, r.lateness_p50_ms, r.lateness_p99_ms, r.lateness_max_ms, r.idle_cpu_percent_of_a_core
    ))
}

/// Every policy fires once a minute at its own second; returns how late
/// each firing arrived after its slot.
fn fire(args: &Args, dir: &Path) -> std::result::Result<Vec<Duration>, String> {
    let text = policy_file(
        &dir.display().to_string(),
        "http://127.0.0.1:9",
        args.policies,
        1,
        |i| format!("{} * * * * *", i % 60),
    );
    let config =
        vbs_agent::config::parse(&text, Path::new("bench.yaml")).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let (tx, mut rx) = mpsc::channel(4096);
        let timers = scheduler::start(&config.policies, chrono::Utc::now(), tx);
        let end = Instant::now() + args.fire_for;
        let mut late = Vec::new();
        while let Ok(Some(f)) = tokio::time::timeout_at(end.into(), rx.recv()).await {
            late.push((chrono::Utc::now() - f.slot).to_std().unwrap_or_default());
        }
        drop(timers);
        Ok(late)
    })
}

/// CPU share of one core the real daemon uses with every policy registered
/// and none due (yearly schedules).
fn idle_cpu(args: &Args, dir: &Path) -> std::result::Result<f64, String> {
    let text = policy_file(
        &dir.display().to_string(),
        "http://127.0.0.1:9",
        args.policies,
        1,
        |i| format!("0 {} 3 1 1 *", i % 60),
    );
    let file = dir.join("idle.yaml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let daemon = Daemon::start(&file, &[(TOKEN_ENV, "bench-token")])?;
    daemon.wait_ready(Duration::from_secs(30))?;
    let before = cpu_seconds(daemon.pid())?;
    std::thread::sleep(args.idle_for);
    let used = cpu_seconds(daemon.pid())? - before;
    Ok(used / args.idle_for.as_secs_f64())
}
