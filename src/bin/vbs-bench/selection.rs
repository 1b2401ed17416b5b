//! Selection by label at scale: what one resolution of a selector costs
//! (API calls, CPU, wall time) on a project of 10,000 volumes, for
//! `select_by: metadata` and `select_by: tags`; that policies firing in
//! the same minute share one resolution; and the coverage audit of the
//! whole project.
//!
//! The agent's side runs in this process on a current-thread runtime on
//! the main thread (its HTTP connections included), the simulator on a
//! runtime of its own with one worker thread; so the CPU time of the main
//! thread (`getrusage(RUSAGE_THREAD)`) is the agent's alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DurationRound, TimeDelta, Utc};
use serde::Serialize;
use vbs_agent::api::{ClientSettings, CloudClient};
use vbs_agent::config::{Config, Policy};
use vbs_agent::coverage;
use vbs_agent::engine::{Engine, ScopeQuery};
use vbs_agent::store::{JobStatus, Store, Trigger};
use vbs_sim::{SimConfig, SimHandle, SimProject, SimVolume};

use crate::fleet_file::{volume_id, PROJECT};
use crate::simulator;

/// Volumes labelled `backup: nightly` (the main selector).
const NIGHTLY: std::ops::Range<usize> = 0..2_500;
/// Volumes labelled `backup: none` (opted out).
const OPTED_OUT: std::ops::Range<usize> = 2_500..2_600;
/// Volumes labelled `backup: hourly` (the snapshot policy's selector).
const HOURLY: std::ops::Range<usize> = 2_600..2_800;
/// Volumes labelled `backup: weekly` (the shared selector of five policies).
const WEEKLY: std::ops::Range<usize> = 2_800..2_804;
/// Listed by id in the listed policy (unlabelled).
const LISTED: std::ops::Range<usize> = 9_995..10_000;
/// The policies that share one selector in the same minute.
const SHARING: usize = 5;
/// Page size of the inventory lists and filters.
const PAGE: usize = 1_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Volumes in the project (the labelled ones are the first 2,804).
    #[arg(long, default_value_t = 10_000)]
    volumes: usize,
    /// Measured resolutions per `select_by` (after one warm-up).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Target: wall time of one resolution.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    resolution_target: Duration,
    /// Target: wall time of the coverage audit of one cloud.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    coverage_target: Duration,
}

#[derive(Debug, Serialize)]
struct Resolution {
    bench: &'static str,
    select_by: &'static str,
    volumes: usize,
    matching: usize,
    api_calls: u64,
    api_calls_target: u64,
    cpu_ms_median: f64,
    cpu_ms_max: f64,
    wall_ms_median: f64,
    wall_ms_max: f64,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Sharing {
    bench: &'static str,
    select_by: &'static str,
    policies: usize,
    jobs_succeeded: usize,
    jobs: usize,
    resolution_calls: u64,
    resolution_calls_of_one: u64,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Coverage {
    bench: &'static str,
    select_by: &'static str,
    volumes: usize,
    api_calls: u64,
    api_calls_target: u64,
    wall_ms: f64,
    cpu_ms: f64,
    simulator_cpu_ms: f64,
    protected: usize,
    opted_out: usize,
    unprotected: usize,
    unprotected_expected: usize,
    met: bool,
}

pub fn run(args: &Args) -> Result<String, String> {
    if args.volumes < LISTED.end {
        return Err(format!("--volumes must be at least {}", LISTED.end));
    }
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let agent = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sim = sim_runtime.block_on(start_sim(args.volumes))?;
    let result = agent.block_on(measure(args, &sim));
    sim_runtime.block_on(sim.shutdown());
    let (resolutions, sharing, coverages) = result?;

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    let mark = |met: bool| if met { "met" } else { "**FAIL**" };
    let mut table = format!(
        "Targets: one resolution ≤ ceil(matching ÷ {PAGE}) + 1 calls and ≤ {}; \
         {SHARING} policies of one selector in the same minute: the calls of one resolution; \
         coverage ≤ the pages its lists need and ≤ {}.\n\n\
         | measure | select_by: metadata | select_by: tags | target | |\n\
         | --- | ---: | ---: | --- | --- |\n",
        ms(args.resolution_target),
        ms(args.coverage_target)
    );
    let (r, sh, c) = (&resolutions, &sharing, &coverages);
    let both = |f: &dyn Fn(usize) -> bool| mark(f(0) && f(1));
    let cells = |f: &dyn Fn(usize) -> String| [f(0), f(1)];
    let coverage_ms = args.coverage_target.as_secs_f64() * 1e3;
    let rows = [
        (
            format!("one resolution, {} of {} volumes match: API calls", r[0].matching, r[0].volumes),
            cells(&|i| r[i].api_calls.to_string()),
            format!("≤ {} / ≤ {}", r[0].api_calls_target, r[1].api_calls_target),
            both(&|i| r[i].api_calls <= r[i].api_calls_target),
        ),
        (
            format!("one resolution: agent CPU, median (max) of {}", args.repeat),
            cells(&|i| format!("{:.1} ms ({:.1} ms)", r[i].cpu_ms_median, r[i].cpu_ms_max)),
            String::new(),
            "",
        ),
        (
            format!("one resolution: wall time, median (max) of {}", args.repeat),
            cells(&|i| format!("{:.1} ms ({:.1} ms)", r[i].wall_ms_median, r[i].wall_ms_max)),
            format!("≤ {}", ms(args.resolution_target)),
            both(&|i| r[i].met),
        ),
        (
            format!("{SHARING} policies, one selector ({} volumes), same slot: resolution calls (one resolution alone)", WEEKLY.len()),
            cells(&|i| format!("{} ({})", sh[i].resolution_calls, sh[i].resolution_calls_of_one)),
            "= one resolution".into(),
            both(&|i| sh[i].met),
        ),
        (
            "… their jobs succeeded".into(),
            cells(&|i| format!("{} of {}", sh[i].jobs_succeeded, sh[i].jobs)),
            String::new(),
            "",
        ),
        (
            format!("`coverage` of {} volumes, 3 policies: API calls", c[0].volumes),
            cells(&|i| c[i].api_calls.to_string()),
            format!("≤ {} / ≤ {}", c[0].api_calls_target, c[1].api_calls_target),
            both(&|i| c[i].api_calls <= c[i].api_calls_target),
        ),
        (
            "`coverage`: wall time (agent CPU; simulator CPU)".into(),
            cells(&|i| format!("{:.0} ms ({:.0} ms; {:.0} ms)", c[i].wall_ms, c[i].cpu_ms, c[i].simulator_cpu_ms)),
            format!("≤ {}", ms(args.coverage_target)),
            both(&|i| c[i].wall_ms <= coverage_ms),
        ),
        (
            "`coverage`: UNPROTECTED (expected from the labels) / protected / opted out".into(),
            cells(&|i| format!("{} ({}) / {} / {}", c[i].unprotected, c[i].unprotected_expected, c[i].protected, c[i].opted_out)),
            "= expected".into(),
            both(&|i| c[i].unprotected == c[i].unprotected_expected),
        ),
    ];
    for (measure, [metadata, tags], target, met) in rows {
        table += &format!("| {measure} | {metadata} | {tags} | {target} | {met} |\n");
    }
    let missed = resolutions.iter().any(|r| !r.met)
        || sharing.iter().any(|s| !s.met)
        || coverages.iter().any(|c| !c.met);
    if missed {
        println!("\n{table}");
        return Err("a target was missed (see the rows marked FAIL)".into());
    }
    Ok(table)
}

type Measured = (Vec<Resolution>, Vec<Sharing>, Vec<Coverage>);

async fn measure(args: &Args, sim: &SimHandle) -> Result<Measured, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let token = dir.path().join("token");
    std::fs::write(&token, "bench-token").map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }

    // 1. One resolution, as the engine asks it (its observed client: every
    // call recorded in the history).
    let state = dir.path().join("scale");
    let config = load(&state, &policy_file(&state, sim, &token, false))?;
    let store = Arc::new(Store::open(&config.history_path()).map_err(|e| e.to_string())?);
    let engine = Engine::new(&config, Arc::clone(&store), ClientSettings::default())
        .map_err(|e| e.to_string())?;
    let mut resolutions = Vec::new();
    for by in ["metadata", "tags"] {
        let policy = policy(&config, &format!("nightly-{by}"))?;
        let client = engine
            .observed_client(&policy.cloud)
            .map_err(|e| e.to_string())?;
        let r = resolve_repeatedly(args, sim, &client, policy, by).await?;
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
        resolutions.push(r);
    }

    // 2. Five policies with the same selector, run for the same slot.
    let shared = dir.path().join("shared");
    let shared_config = load(&shared, &policy_file(&shared, sim, &token, true))?;
    let mut sharing = Vec::new();
    for by in ["metadata", "tags"] {
        let s = share(sim, &shared_config, by).await?;
        println!("{}", serde_json::to_string(&s).map_err(|e| e.to_string())?);
        sharing.push(s);
    }

    // 3. Coverage of each cloud, as `vbs-agent coverage` asks it.
    let mut coverages = Vec::new();
    for by in ["metadata", "tags"] {
        let c = cover(args, sim, &config, &store, by).await?;
        println!("{}", serde_json::to_string(&c).map_err(|e| e.to_string())?);
        coverages.push(c);
    }
    Ok((resolutions, sharing, coverages))
}

async fn resolve_repeatedly(
    args: &Args,
    sim: &SimHandle,
    client: &CloudClient,
    policy: &Policy,
    by: &'static str,
) -> Result<Resolution, String> {
    let selector = policy.select.as_ref().ok_or("the policy has no selector")?;
    let query = ScopeQuery::of(policy, selector, client.select_by());
    // A warm-up: the connection and the first page are not the steady state.
    query.ask(client).await.map_err(|e| e.to_string())?;
    let (mut calls, mut cpu, mut wall) = (0, Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        let (requests, cpu0, t0) = (sim.request_count(), thread_cpu()?, Instant::now());
        let found = query.ask(client).await.map_err(|e| e.to_string())?;
        wall.push(t0.elapsed());
        cpu.push(thread_cpu()? - cpu0);
        calls = u64::max(calls, sim.request_count() - requests);
        if found.len() != NIGHTLY.len() {
            return Err(format!(
                "select_by {by}: the selector found {} volumes, {} are labelled",
                found.len(),
                NIGHTLY.len()
            ));
        }
    }
    let target = (NIGHTLY.len().div_ceil(PAGE) + 1) as u64;
    let (cpu_median, cpu_max) = median_max(&mut cpu);
    let (wall_median, wall_max) = median_max(&mut wall);
    Ok(Resolution {
        bench: "selection-resolution",
        select_by: by,
        volumes: args.volumes,
        matching: NIGHTLY.len(),
        api_calls: calls,
        api_calls_target: target,
        cpu_ms_median: cpu_median.as_secs_f64() * 1e3,
        cpu_ms_max: cpu_max.as_secs_f64() * 1e3,
        wall_ms_median: wall_median.as_secs_f64() * 1e3,
        wall_ms_max: wall_max.as_secs_f64() * 1e3,
        met: calls <= target && wall_max <= args.resolution_target,
    })
}

/// Runs the sharing policies of cloud `by` one after the other for the
/// same slot, and counts the selector calls the history recorded.
async fn share(sim: &SimHandle, config: &Config, by: &'static str) -> Result<Sharing, String> {
    let store = Arc::new(Store::open(&config.history_path()).map_err(|e| e.to_string())?);
    let engine = Engine::new(config, Arc::clone(&store), ClientSettings::default())
        .map_err(|e| e.to_string())?;
    // One resolution alone, for comparison.
    let first = policy(config, &format!("weekly-0-{by}"))?;
    let client = engine
        .observed_client(&first.cloud)
        .map_err(|e| e.to_string())?;
    let selector = first.select.as_ref().ok_or("the policy has no selector")?;
    let before = sim.request_count();
    ScopeQuery::of(first, selector, client.select_by())
        .ask(&client)
        .await
        .map_err(|e| e.to_string())?;
    let of_one = sim.request_count() - before;

    let recorded_before = selector_calls(&config.history_path())?;
    let slot = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .map_err(|e| e.to_string())?;
    let (mut jobs, mut succeeded) = (0, 0);
    for i in 0..SHARING {
        let p = policy(config, &format!("weekly-{i}-{by}"))?;
        let report = engine
            .run_policy(p, slot, Trigger::Schedule)
            .await
            .map_err(|e| e.to_string())?;
        jobs += report.jobs.len();
        succeeded += report
            .jobs
            .iter()
            .filter(|j| j.status == JobStatus::Succeeded)
            .count();
    }
    if Utc::now().duration_trunc(TimeDelta::minutes(1)).ok() != Some(slot) {
        // The cache is by the slot's minute, not the clock's, so this only
        // notes that the runs took longer than the minute.
        eprintln!("note: the {SHARING} runs of cloud {by} crossed a minute boundary");
    }
    let calls = selector_calls(&config.history_path())? - recorded_before;
    Ok(Sharing {
        bench: "selection-sharing",
        select_by: by,
        policies: SHARING,
        jobs_succeeded: succeeded,
        jobs,
        resolution_calls: calls,
        resolution_calls_of_one: of_one,
        met: calls == of_one && succeeded == SHARING * WEEKLY.len(),
    })
}

async fn cover(
    args: &Args,
    sim: &SimHandle,
    config: &Config,
    store: &Store,
    by: &'static str,
) -> Result<Coverage, String> {
    let cloud = format!("cloud-{by}");
    let settings = config.clouds.get(&cloud).ok_or("no such cloud")?;
    let client =
        CloudClient::new(settings, ClientSettings::default()).map_err(|e| e.to_string())?;
    let process0 = cpu_of(libc::RUSAGE_SELF)?;
    let (requests, cpu0, t0) = (sim.request_count(), thread_cpu()?, Instant::now());
    let c = coverage::audit(config, &cloud, &client, Some(store))
        .await
        .map_err(|e| e.to_string())?;
    let wall = t0.elapsed();
    let cpu = thread_cpu()? - cpu0;
    let process = cpu_of(libc::RUSAGE_SELF)? - process0;
    let calls = sim.request_count() - requests;
    let snapshot = c.snapshot(Utc::now());
    let pages = |n: usize| (n.div_ceil(PAGE) + 1) as u64;
    // Every volume, then each selector; on a cloud of tags, the opt-out
    // label is asked of the tag filter too.
    let mut target = pages(args.volumes) + pages(NIGHTLY.len()) + pages(HOURLY.len());
    if by == "tags" {
        target += pages(OPTED_OUT.len());
    }
    let expected = args.volumes - NIGHTLY.len() - OPTED_OUT.len() - HOURLY.len() - LISTED.len();
    let unprotected = c.unprotected();
    let wall_ok = wall <= args.coverage_target;
    Ok(Coverage {
        bench: "selection-coverage",
        select_by: by,
        volumes: snapshot.volumes as usize,
        api_calls: calls,
        api_calls_target: target,
        wall_ms: wall.as_secs_f64() * 1e3,
        cpu_ms: cpu.as_secs_f64() * 1e3,
        simulator_cpu_ms: process.saturating_sub(cpu).as_secs_f64() * 1e3,
        protected: snapshot.protected as usize,
        opted_out: snapshot.opted_out as usize,
        unprotected,
        unprotected_expected: expected,
        met: calls <= target && wall_ok && unprotected == expected,
    })
}

/// Calls to the selector endpoints the history recorded.
fn selector_calls(db: &Path) -> Result<u64, String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| e.to_string())?;
    conn.query_row(
        "SELECT count(*) FROM events WHERE kind = 'api_call'
           AND (path LIKE '%/volumes/detail%' OR path LIKE '%/resource_instances/action%')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(|e| e.to_string())
}

/// User + system CPU time of the calling thread.
fn thread_cpu() -> Result<Duration, String> {
    cpu_of(libc::RUSAGE_THREAD)
}

/// User + system CPU time of `who` (`RUSAGE_THREAD`, `RUSAGE_SELF`).
fn cpu_of(who: libc::c_int) -> Result<Duration, String> {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Err(format!("getrusage: {}", std::io::Error::last_os_error()));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(tv(usage.ru_utime) + tv(usage.ru_stime))
}

fn median_max(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

fn policy<'a>(config: &'a Config, name: &str) -> Result<&'a Policy, String> {
    config
        .policies
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("no policy {name}"))
}

fn load(state: &Path, text: &str) -> Result<Config, String> {
    std::fs::create_dir_all(state).map_err(|e| e.to_string())?;
    let file = state.join("policy.yaml");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    vbs_agent::config::parse(text, &file).map_err(|e| e.to_string())
}

/// Two clouds on the simulator's one project, `cloud-metadata` and
/// `cloud-tags`; on each either the three policies of the coverage audit
/// (a selector backup policy, a listed one, a snapshot policy with another
/// selector) or, with `sharing`, five policies of one selector.
fn policy_file(state: &Path, sim: &SimHandle, token: &Path, sharing: bool) -> String {
    let base = sim.base_url();
    let mut y = format!(
        "state_dir: {}\nmax_concurrent_jobs: 16\n\
         defaults:\n  timezone: UTC\n  completion_timeout: 5m\n  poll: {{ initial: 100ms, max: 300ms }}\n\
         clouds:\n",
        state.display()
    );
    for by in ["metadata", "tags"] {
        y += &format!(
            "  cloud-{by}:\n    project_id: {PROJECT}\n    select_by: {by}\n\
             \x20   endpoints: {{ volume: {base}, backup: {base} }}\n\
             \x20   auth: {{ type: token, token_file: {} }}\n",
            token.display()
        );
    }
    y += "policies:\n";
    for by in ["metadata", "tags"] {
        let head = |name: &str, kind: &str| {
            format!("  - name: {name}\n    kind: {kind}\n    cloud: cloud-{by}\n    schedule: \"0 30 1 * * *\"\n    force: true\n")
        };
        if sharing {
            for i in 0..SHARING {
                y += &head(&format!("weekly-{i}-{by}"), "backup");
                y += "    select:\n      match: {backup: weekly}\n";
            }
            continue;
        }
        y += &head(&format!("nightly-{by}"), "backup");
        y += "    select:\n      match: {backup: nightly}\n";
        y += &head(&format!("listed-{by}"), "backup");
        y += "    volumes:\n";
        for n in LISTED {
            y += &format!("      - {}\n", volume_id(n));
        }
        y += &head(&format!("hourly-{by}"), "snapshot");
        y += "    retention: { keep_last: 2 }\n    select:\n      match: {backup: hourly}\n";
    }
    y
}

async fn start_sim(volumes: usize) -> Result<SimHandle, String> {
    let label = |n: usize| -> Option<&'static str> {
        [
            (NIGHTLY, "nightly"),
            (OPTED_OUT, "none"),
            (HOURLY, "hourly"),
            (WEEKLY, "weekly"),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(&n))
        .map(|(_, v)| v)
    };
    let config = SimConfig {
        projects: vec![SimProject::new(
            PROJECT,
            (0..volumes)
                .map(|n| {
                    let labels: BTreeMap<String, String> = label(n)
                        .map(|v| BTreeMap::from([("backup".to_string(), v.to_string())]))
                        .unwrap_or_default();
                    SimVolume {
                        id: volume_id(n),
                        size_gb: 10,
                        metadata: labels.clone(),
                        tags: labels,
                        ..SimVolume::default()
                    }
                })
                .collect(),
        )],
        tokens: vec!["bench-token".into()],
        ..SimConfig::default()
    };
    simulator::start(config, Duration::from_millis(100)).await
}
