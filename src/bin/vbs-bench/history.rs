//! History at audit scale: a database of a year's worth of a large fleet,
//! the audit commands against it, the agent's own event insert rate, and
//! bytes per job.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::Serialize;
use vbs_agent::store::{format_ts, Event, EventKind, Store};

use crate::fleet_file::{policy_file, volume_id, TOKEN_ENV};
use crate::process::agent_binary;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs to generate (nightly slots of `volumes` volumes, newest today).
    #[arg(long, default_value_t = 1_000_000)]
    jobs: usize,
    /// Events per job.
    #[arg(long, default_value_t = 10)]
    events_per_job: usize,
    /// Volumes, spread over policies of 100.
    #[arg(long, default_value_t = 10_000)]
    volumes: usize,
    /// Events inserted one by one through the agent's store, for the rate.
    #[arg(long, default_value_t = 200_000)]
    insert: usize,
    /// Runs of each command; the median is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Keep the generated history and policy file in this directory
    /// (default: a temporary one, removed at the end).
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

/// Volumes per generated policy.
const PER_POLICY: usize = 100;
/// One job in this many fails.
const FAIL_EVERY: usize = 50;

#[derive(Debug, Serialize)]
struct Timing {
    command: String,
    median_ms: f64,
}

#[derive(Debug, Serialize)]
struct Result {
    bench: &'static str,
    jobs: usize,
    events: usize,
    generate_seconds: f64,
    db_bytes: u64,
    bytes_per_job: f64,
    insert_events_per_second: f64,
    commands: Vec<Timing>,
}

pub fn run(args: &Args) -> std::result::Result<String, String> {
    if args.volumes == 0 || args.runs == 0 {
        return Err("--volumes and --runs must be at least 1".into());
    }
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = match &args.keep {
        Some(keep) => {
            std::fs::create_dir_all(keep).map_err(|e| format!("{}: {e}", keep.display()))?;
            keep.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let db = dir.join("history.db");
    if db.exists() {
        return Err(format!(
            "{} exists already; give an empty --keep directory",
            db.display()
        ));
    }
    let start = Instant::now();
    generate(&db, args).map_err(|e| format!("generating the history: {e}"))?;
    let generate_seconds = start.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&db).map_err(|e| e.to_string())?.len();
    let insert_events_per_second = insert_rate(&db, args.insert)?;

    let policies = args.volumes.div_ceil(PER_POLICY);
    let config = dir.as_path().join("policy.yaml");
    let text = policy_file(
        &dir.as_path().display().to_string(),
        "http://127.0.0.1:9",
        policies,
        PER_POLICY,
        |_| "0 30 1 * * *".into(),
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let db_arg = db.display().to_string();
    let config_arg = config.display().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "history", "--db", &db_arg, "--since", "7d", "--status", "failed",
        ],
        vec!["report", "--config", &config_arg, "--since", "30d"],
    ];
    let mut timings = Vec::new();
    for command in &commands {
        timings.push(Timing {
            command: format!(
                "vbs-agent {}",
                command
                    .join(" ")
                    .replace(&db_arg, "DB")
                    .replace(&config_arg, "FILE")
            ),
            median_ms: time_command(command, args.runs)?,
        });
    }
    let r = Result {
        bench: "history",
        jobs: args.jobs,
        events: args.jobs * args.events_per_job,
        generate_seconds,
        db_bytes,
        bytes_per_job: db_bytes as f64 / args.jobs.max(1) as f64,
        insert_events_per_second,
        commands: timings,
    };
    println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    let mut table = format!(
        "| measure | result |\n| --- | ---: |\n| history generated | {} jobs, {} events in {:.0} s |\n| database size | {:.0} MiB, {:.0} bytes per job (events included) |\n| event inserts through the agent's store (one commit each, WAL) | {:.0} /s |\n",
        r.jobs, r.events, r.generate_seconds, r.db_bytes as f64 / (1024.0 * 1024.0), r.bytes_per_job, r.insert_events_per_second
    );
    for t in &r.commands {
        table += &format!(
            "| `{}` (median of {}) | {:.0} ms |\n",
            t.command, args.runs, t.median_ms
        );
    }
    Ok(table)
}

/// Median wall time of `vbs-agent ARGS` over `runs`; an error if it fails.
fn time_command(command: &[&str], runs: usize) -> std::result::Result<f64, String> {
    let agent = agent_binary()?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(&agent)
            .args(command)
            .env(TOKEN_ENV, "bench-token")
            .output()
            .map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        // `report` exits 3 when a target is out of its RPO: that is an answer.
        if !matches!(out.status.code(), Some(0 | 3)) {
            return Err(format!(
                "`vbs-agent {}` failed: {}",
                command.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    times.sort();
    Ok(times[times.len() / 2].as_secs_f64() * 1e3)
}

/// Writes runs, jobs and events straight into a migrated database: nightly
/// slots of every volume going back from today, one job in 50 failed.
fn generate(db: &Path, args: &Args) -> std::result::Result<(), Box<dyn std::error::Error>> {
    drop(Store::open(db)?);
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut run = tx.prepare(
            "INSERT INTO runs (policy, slot, trigger, status, started_at, finished_at)
             VALUES (?1, ?2, 'schedule', ?3, ?2, ?2)",
        )?;
        let mut job = tx.prepare(
            "INSERT INTO jobs (run_id, policy, kind, cloud, target, slot, resource_name, status, phase,
                               snapshot_id, backup_id, size_gb, is_incremental, fail_reason,
                               started_at, finished_at, updated_at, attempt_started_at, backup_seconds)
             VALUES (?1, ?2, 'backup', 'bench', ?3, ?4, ?5, ?6, 'done', ?7, ?8, 10, ?9, ?10, ?4, ?11, ?11, ?4, 600)",
        )?;
        let mut event = tx.prepare(
            "INSERT INTO events (at, run_id, job_id, kind, method, path, http_status, latency_ms, class, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 35, ?8, ?9)",
        )?;
        let today = Utc::now()
            .date_naive()
            .and_hms_opt(0, 30, 0)
            .ok_or("no time")?
            .and_utc();
        let nights = args.jobs.div_ceil(args.volumes);
        let mut made = 0;
        'nights: for night in 0..nights {
            let slot: DateTime<Utc> = today - chrono::Duration::days((nights - 1 - night) as i64);
            let slot_s = format_ts(slot);
            let done_s = format_ts(slot + chrono::Duration::minutes(10));
            let mut run_id = 0;
            for v in 0..args.volumes {
                if made == args.jobs {
                    break 'nights;
                }
                let policy = format!("bench-{:04}", v / PER_POLICY);
                if v % PER_POLICY == 0 {
                    run.execute(params![policy, slot_s, "succeeded"])?;
                    run_id = tx.last_insert_rowid();
                }
                let target = volume_id(v);
                let failed = made % FAIL_EVERY == 0;
                let name = format!(
                    "{policy}-{}-{}",
                    slot.format("%Y%m%dT%H%M%SZ"),
                    &target[28..]
                );
                job.execute(params![
                    run_id,
                    policy,
                    target,
                    slot_s,
                    name,
                    if failed { "failed" } else { "succeeded" },
                    format!("snap-{made}"),
                    (!failed).then(|| format!("backup-{made}")),
                    night % 7 != 0,
                    failed.then_some("Connection to swift failed: [Errno 111] ECONNREFUSED"),
                    done_s,
                ])?;
                let job_id = tx.last_insert_rowid();
                for e in 0..args.events_per_job {
                    let at = format_ts(slot + chrono::Duration::seconds(e as i64 * 60));
                    if e % 2 == 0 {
                        event.execute(params![
                            at,
                            run_id,
                            job_id,
                            "api_call",
                            "GET",
                            format!("/v3/0123456789abcdef0123456789abcdef/backups/backup-{made}"),
                            200,
                            "ok",
                            None::<&str>
                        ])?;
                    } else {
                        event.execute(params![
                            at,
                            run_id,
                            job_id,
                            "state",
                            None::<&str>,
                            None::<&str>,
                            None::<u16>,
                            None::<&str>,
                            Some("backup_creating (running): backup created")
                        ])?;
                    }
                }
                made += 1;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Events per second through [`Store::record_event`], one commit each.
fn insert_rate(db: &Path, count: usize) -> std::result::Result<f64, String> {
    let store = Store::open(db).map_err(|e| e.to_string())?;
    let event = Event {
        job_id: Some(1),
        method: Some("GET"),
        path: Some("/v3/0123456789abcdef0123456789abcdef/backups/x"),
        http_status: Some(200),
        latency_ms: Some(35),
        class: Some("ok"),
        ..Default::default()
    };
    let start = Instant::now();
    for _ in 0..count {
        store
            .record_event(EventKind::ApiCall, &event, Utc::now())
            .map_err(|e| e.to_string())?;
    }
    Ok(count as f64 / start.elapsed().max(Duration::from_nanos(1)).as_secs_f64())
}
