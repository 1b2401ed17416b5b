//! The daemon's memory when a SIGHUP reloads an alias bomb: the real
//! `vbs-agent run` in a child process, its resident memory (`VmRSS`,
//! `VmHWM`) read from `/proc` before and after each reload, and `check` on
//! the same bomb. A figure for BENCHMARKS.md, not a timed test.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::fleet_file::{policy_file, TOKEN_ENV};
use crate::process::{agent_binary, peak_rss_bytes, rss_bytes, Daemon};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Full levels of ten aliases each under the top one of the bomb
    /// (8: a billion laughs, 10^9 strings).
    #[arg(long, default_value_t = 8)]
    levels: u32,
}

#[derive(Debug, Serialize)]
struct Result {
    bench: &'static str,
    file: String,
    nodes_expanded: u128,
    check_exit: Option<i32>,
    check_ms: f64,
    rss_before_mib: f64,
    peak_rss_after_mib: f64,
    reload_ms: f64,
    daemon_alive: bool,
}

/// `l0` a string, each of `l1`…`l{levels}` ten aliases of the level below,
/// and a top level of `top` aliases of the last one.
fn laughs(levels: u32, top: u32) -> String {
    let mut text = "l0: &l0 lol\n".to_string();
    let alias_list = |n: u32, of: u32| vec![format!("*l{of}"); n as usize].join(", ");
    for level in 1..=levels {
        let aliases = alias_list(10, level - 1);
        text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
    }
    text.push_str(&format!("top: [{}]\n", alias_list(top, levels)));
    text
}

/// The YAML nodes of [`laughs`] once every alias is expanded.
fn laughs_nodes(levels: u32, top: u32) -> u128 {
    let mut level = 1u128; // l0's string
    let mut total = 1 + 2; // the mapping, key l0 and its string
    for _ in 1..=levels {
        level = 1 + 10 * level;
        total += 1 + level;
    }
    total + 1 + 1 + u128::from(top) * level
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub fn run(args: &Args) -> std::result::Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("policy.yaml");
    let valid = policy_file(
        &dir.path().display().to_string(),
        "http://127.0.0.1:9",
        1,
        1,
        |_| "0 0 3 1 1 *".into(),
    );
    std::fs::write(&config, valid).map_err(|e| e.to_string())?;
    let daemon = Daemon::start(&config, &[(TOKEN_ENV, "bench-token")])?;
    daemon.wait_ready(Duration::from_secs(60))?;
    // A billion laughs, then the largest bomb of that shape the bound lets
    // through (expanded, then rejected for its unknown keys).
    let files = [
        ("billion laughs", args.levels, 10),
        ("largest expansion let through", 4, 7),
    ];
    let mut rows = String::new();
    for (name, levels, top) in files {
        let text = laughs(levels, top);
        std::fs::write(&config, &text).map_err(|e| e.to_string())?;
        let r = reload(&daemon, &config, name, laughs_nodes(levels, top))?;
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        rows.push_str(&format!(
            "| {} | {} | exit {} in {:.0} ms | {:.1} MiB | {:.1} MiB | {:.0} ms | {} |\n",
            r.file,
            r.nodes_expanded,
            r.check_exit.map_or("?".into(), |c| c.to_string()),
            r.check_ms,
            r.rss_before_mib,
            r.peak_rss_after_mib,
            r.reload_ms,
            if r.daemon_alive {
                "running, old policies kept"
            } else {
                "**gone**"
            },
        ));
    }
    Ok(format!(
        "| file | YAML nodes if expanded | `check` | daemon RSS before | daemon peak RSS after the reload | SIGHUP → READY | daemon |\n\
         | --- | ---: | --- | ---: | ---: | ---: | --- |\n{rows}"
    ))
}

/// `check` on the file now at `config`, then a SIGHUP reload of it.
fn reload(
    daemon: &Daemon,
    config: &Path,
    name: &str,
    nodes: u128,
) -> std::result::Result<Result, String> {
    let started = Instant::now();
    let check = Command::new(agent_binary()?)
        .args(["check", "--config"])
        .arg(config)
        .output()
        .map_err(|e| e.to_string())?;
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    let pid = daemon.pid();
    let rss_before = rss_bytes(pid)?;
    let started = Instant::now();
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .map_err(|e| e.to_string())?;
    if !hup.success() {
        return Err(format!("kill -HUP {pid} failed"));
    }
    daemon.wait_ready(Duration::from_secs(60))?;
    let reload_ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(Result {
        bench: "yaml-bomb",
        file: name.to_string(),
        nodes_expanded: nodes,
        check_exit: check.status.code(),
        check_ms,
        rss_before_mib: mib(rss_before),
        peak_rss_after_mib: mib(peak_rss_bytes(pid)?),
        reload_ms,
        daemon_alive: Path::new(&format!("/proc/{pid}")).exists(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_count_matches_the_file() {
        // l0 key + string, l1 key + list of 10, top key + list of 2 × 11.
        assert_eq!(laughs_nodes(1, 2), 1 + 2 + 12 + 2 + 22);
        assert_eq!(laughs(1, 2).lines().count(), 3);
        assert_eq!(laughs_nodes(4, 7), 90_130);
    }
}
