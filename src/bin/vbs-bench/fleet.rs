//! Fleet scale: every policy of a large fleet fires in the same minute
//! against the simulator; the agent is the real `vbs-agent run` in a child
//! process, so its CPU time and peak memory are its own.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use vbs_agent::store::db::PgDb;
use vbs_agent::store::scratch::ScratchDatabase;
use vbs_sim::{SimConfig, SimHandle, SimProject, SimVolume};

use crate::fleet_file::{policy_file_with, volume_id, Limits, PROJECT, TOKEN_ENV};
use crate::process::{cpu_seconds, peak_rss_bytes, Daemon};
use crate::simulator;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Volumes in the unlimited run.
    #[arg(long, default_value_t = 10_000)]
    volumes: usize,
    /// Volumes per policy.
    #[arg(long, default_value_t = 100)]
    volumes_each: usize,
    /// `max_concurrent_jobs` of the run without a rate limit.
    #[arg(long, default_value_t = 500)]
    concurrency: usize,
    /// Volumes in the run with limits.
    #[arg(long, default_value_t = 1_000)]
    limited_volumes: usize,
    /// `max_concurrent_jobs` of the run with limits.
    #[arg(long, default_value_t = 50)]
    max_concurrent_jobs: usize,
    /// The cloud's `rate_limit` (requests per second) in the run with limits.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Simulated snapshot and backup durations.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    work: Duration,
    /// Where the agent keeps its history: `postgres` uses a scratch
    /// database on the server `VBS_PG_URL` names (`tests/postgres/setup.sh`).
    #[arg(long, value_enum, default_value_t = HistoryKind::Sqlite)]
    history: HistoryKind,
    /// Keeps each run's state directory (policy file, SQLite history) and
    /// prints where it is, for a look at what the agent wrote.
    #[arg(long)]
    keep_state: bool,
}

impl Args {
    /// The section of BENCHMARKS.md the run's table goes to: one per
    /// history backend.
    pub fn section(&self) -> &'static str {
        match self.history {
            HistoryKind::Sqlite => "fleet",
            HistoryKind::Postgres => "fleet-postgres",
        }
    }
}

/// The history backend a fleet run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryKind {
    Sqlite,
    Postgres,
}

/// The environment variable the agent reads a PostgreSQL history's URL from.
const HISTORY_URL_ENV: &str = "VBS_BENCH_HISTORY_URL";

/// Where a run's history is, for the bench to watch.
enum Watched {
    Sqlite(std::path::PathBuf),
    Postgres(Box<(ScratchDatabase, PgDb)>),
}

#[derive(Debug, Serialize)]
struct Outcome {
    bench: &'static str,
    history: &'static str,
    volumes: usize,
    policies: usize,
    max_concurrent_jobs: usize,
    rate_limit_per_s: Option<u32>,
    succeeded: usize,
    not_succeeded: usize,
    wall_seconds_to_all_terminal: f64,
    agent_cpu_seconds_per_1000_jobs: f64,
    agent_peak_rss_mib: f64,
    db_bytes_per_job: f64,
    api_requests: u64,
    max_in_flight_observed: usize,
    max_requests_per_second_observed: u64,
    /// Requests by method and path, ids replaced by `{id}`: where a job's
    /// requests go.
    requests_by_route: std::collections::BTreeMap<String, usize>,
}

pub fn run(args: &Args) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let unlimited = Limits {
        max_concurrent_jobs: args.concurrency,
        rate_limit: None,
    };
    let limited = Limits {
        max_concurrent_jobs: args.max_concurrent_jobs,
        rate_limit: Some(format!("{}/s", args.rate)),
    };
    let mut rows = Vec::new();
    for (volumes, limits, rate) in [
        (args.volumes, unlimited, None),
        (args.limited_volumes, limited, Some(args.rate)),
    ] {
        let o = runtime.block_on(one_run(args, volumes, &limits, rate))?;
        println!("{}", serde_json::to_string(&o).map_err(|e| e.to_string())?);
        rows.push(o);
    }
    let mut table = String::from(
        "| history | volumes (policies) | limits | succeeded | wall time to all terminal | agent CPU per 1,000 jobs | agent peak RSS | history per job | API requests | max in flight seen | max requests/s seen |\n\
         | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for o in &rows {
        let limits = match o.rate_limit_per_s {
            Some(r) => format!(
                "max_concurrent_jobs {}, rate_limit {r}/s",
                o.max_concurrent_jobs
            ),
            None => format!(
                "max_concurrent_jobs {}, no rate limit",
                o.max_concurrent_jobs
            ),
        };
        table += &format!(
            "| {} | {} ({}) | {limits} | {} of {} | {:.1} s | {:.2} s | {:.1} MiB | {:.0} bytes | {} | {} | {} |\n",
            o.history, o.volumes, o.policies, o.succeeded, o.volumes, o.wall_seconds_to_all_terminal,
            o.agent_cpu_seconds_per_1000_jobs, o.agent_peak_rss_mib, o.db_bytes_per_job,
            o.api_requests, o.max_in_flight_observed, o.max_requests_per_second_observed
        );
    }
    Ok(table)
}

async fn one_run(
    args: &Args,
    volumes: usize,
    limits: &Limits,
    rate: Option<u32>,
) -> Result<Outcome, String> {
    let sim = start_sim(args, volumes).await?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // Every policy fires at the same second, far enough ahead for start-up.
    let slot = next_whole_second(Utc::now() + chrono::Duration::seconds(8));
    let berlin = slot.with_timezone(&chrono_tz::Europe::Berlin);
    let cron = berlin.format("%-S %-M %-H %-d %-m *").to_string();
    let policies = volumes.div_ceil(args.volumes_each);
    let text = policy_file_with(
        &dir.path().display().to_string(),
        &sim.base_url(),
        limits,
        policies,
        args.volumes_each,
        |_| cron.clone(),
    );
    let (watched, text) = match args.history {
        HistoryKind::Sqlite => (Watched::Sqlite(dir.path().join("history.db")), text),
        HistoryKind::Postgres => {
            let scratch = ScratchDatabase::from_env()
                .ok_or("--history postgres needs VBS_PG_URL (bash tests/postgres/setup.sh start)")?
                .map_err(|e| e.to_string())?;
            let db = PgDb::connect(&scratch.config, Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            let text = format!("history:\n  postgres:\n    url_env: {HISTORY_URL_ENV}\n{text}");
            (Watched::Postgres(Box::new((scratch, db))), text)
        }
    };
    let url = match &watched {
        Watched::Postgres(pg) => pg.0.config.url.clone(),
        Watched::Sqlite(_) => String::new(),
    };
    let file = dir.path().join("fleet.yaml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let daemon = Daemon::start(
        &file,
        &[(TOKEN_ENV, "bench-token"), (HISTORY_URL_ENV, url.as_str())],
    )?;
    daemon.wait_ready(Duration::from_secs(60))?;
    let cpu_before = cpu_seconds(daemon.pid())?;
    let requests_before = sim.request_count();

    let mut max_rate = 0;
    let mut window = std::collections::VecDeque::from([(Instant::now(), requests_before)]);
    let deadline = Instant::now() + Duration::from_secs(1800);
    // The rate is sampled every tick; the history, which costs a scan of
    // every job on the machine the agent runs on, every fifth.
    let mut tick = 0u64;
    let (succeeded, not_succeeded, last_finish) = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tick += 1;
        let now = Instant::now();
        let count = sim.request_count();
        window.push_back((now, count));
        while window
            .front()
            .is_some_and(|(t, _)| now - *t > Duration::from_secs(1))
        {
            window.pop_front();
        }
        if let Some((t, c)) = window.front() {
            if now - *t >= Duration::from_millis(900) {
                max_rate = max_rate.max(count - c);
            }
        }
        if tick.is_multiple_of(5) {
            if let Some(done) = finished(&watched, volumes)? {
                break done;
            }
        }
        if now > deadline {
            return Err("jobs not terminal after 30 minutes".into());
        }
    };
    let cpu = cpu_seconds(daemon.pid())? - cpu_before;
    let rss = peak_rss_bytes(daemon.pid())?;
    let api_requests = sim.request_count() - requests_before;
    drop(daemon);
    let db_bytes = history_bytes(&watched, dir.path())?;
    if args.keep_state {
        eprintln!("state kept in {}", dir.keep().display());
    }
    let in_flight = max_live_snapshots(&sim);
    let by_route = requests_by_route(&sim);
    sim.shutdown().await;
    Ok(Outcome {
        bench: "fleet",
        history: match args.history {
            HistoryKind::Sqlite => "SQLite",
            HistoryKind::Postgres => "PostgreSQL",
        },
        volumes,
        policies,
        max_concurrent_jobs: limits.max_concurrent_jobs,
        rate_limit_per_s: rate,
        succeeded,
        not_succeeded,
        wall_seconds_to_all_terminal: (last_finish - slot).num_milliseconds() as f64 / 1e3,
        agent_cpu_seconds_per_1000_jobs: cpu / volumes as f64 * 1000.0,
        agent_peak_rss_mib: rss as f64 / (1024.0 * 1024.0),
        db_bytes_per_job: db_bytes as f64 / volumes as f64,
        api_requests,
        max_in_flight_observed: in_flight,
        max_requests_per_second_observed: max_rate,
        requests_by_route: by_route,
    })
}

async fn start_sim(args: &Args, volumes: usize) -> Result<SimHandle, String> {
    let config = SimConfig {
        projects: vec![SimProject::new(
            PROJECT,
            (0..volumes)
                .map(|i| SimVolume {
                    id: volume_id(i),
                    size_gb: 10,
                    ..SimVolume::default()
                })
                .collect(),
        )],
        tokens: vec!["bench-token".into()],
        ..SimConfig::default()
    };
    simulator::start(config, args.work).await
}

fn next_whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t) + chrono::Duration::seconds(1)
}

/// (succeeded, other terminal, last finish) once all `jobs` are done.
fn finished(
    watched: &Watched,
    jobs: usize,
) -> Result<Option<(usize, usize, DateTime<Utc>)>, String> {
    let q = "SELECT count(*) FILTER (WHERE status = 'succeeded'),
                    count(*) FILTER (WHERE status <> 'succeeded'),
                    count(*) FILTER (WHERE phase = 'done'), max(finished_at) FROM jobs";
    let row = match watched {
        Watched::Sqlite(db) => {
            if !db.exists() {
                return Ok(None);
            }
            let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| e.to_string())?;
            conn.query_row(q, [], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| e.to_string())
        }
        Watched::Postgres(pg) => {
            pg.1.with(|c| c.query_opt(q, &[]))
                .map_err(|e| e.to_string())
                .and_then(|row| row.ok_or_else(|| "no row".to_string()))
                .and_then(|r| {
                    let get = |i| r.get::<i64>(i).map_err(|e| e.to_string());
                    Ok((
                        get(0)?,
                        get(1)?,
                        get(2)?,
                        r.get(3).map_err(|e| e.to_string())?,
                    ))
                })
        }
    };
    let Ok((ok, other, done, last)) = row else {
        return Ok(None); // not migrated yet
    };
    if usize::try_from(done).unwrap_or(0) < jobs {
        return Ok(None);
    }
    let last = last
        .and_then(|s| vbs_agent::store::parse_ts(&s).ok())
        .ok_or("a finished job without finished_at")?;
    Ok(Some((ok as usize, other as usize, last)))
}

/// The history's size on disk: SQLite's file and WAL, or the PostgreSQL
/// database's.
fn history_bytes(watched: &Watched, dir: &Path) -> Result<u64, String> {
    match watched {
        Watched::Sqlite(_) => Ok(["history.db", "history.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()),
        Watched::Postgres(pg) => {
            pg.1.with(|c| c.value::<i64>("SELECT pg_database_size(current_database())", &[]))
                .map_err(|e| e.to_string())
                .map(|b| b.map_or(0, |b| u64::try_from(b).unwrap_or(0)))
        }
    }
}

/// The requests the simulator logged, by method and path with every
/// UUID-shaped or hex segment written `{id}`.
fn requests_by_route(sim: &SimHandle) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for r in sim.requests() {
        let path: Vec<&str> = r
            .path
            .split('/')
            .map(|seg| {
                let hexish =
                    seg.len() >= 32 && seg.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if hexish {
                    "{id}"
                } else {
                    seg
                }
            })
            .collect();
        *counts
            .entry(format!("{} {}", r.method, path.join("/")))
            .or_insert(0) += 1;
    }
    counts
}

/// The most snapshots alive at once: each job holds one from its first
/// step to its cleanup, so this is a floor for the jobs in flight.
fn max_live_snapshots(sim: &SimHandle) -> usize {
    let parse = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok();
    let mut edges: Vec<(chrono::NaiveDateTime, i32)> = Vec::new();
    for e in sim.ledger().iter().filter(|e| e.kind == "snapshot") {
        if let Some(c) = parse(&e.created_at) {
            edges.push((c, 1));
            if let Some(d) = e.deleted_at.as_deref().and_then(parse) {
                edges.push((d, -1));
            }
        }
    }
    edges.sort();
    let (mut live, mut max) = (0i32, 0i32);
    for (_, step) in edges {
        live += step;
        max = max.max(live);
    }
    usize::try_from(max).unwrap_or(0)
}
