//! A closed stdout or stderr never stops the agent: `run … 2>&1 | head -3`
//! and `trigger … | head -1` leave jobs that finish and a process that
//! exits normally.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helper::{policy_yaml, signal, volume, volume_id, wait_for, World};
use chrono::{DateTime, Utc};
use vbs_agent::store::{JobStatus, Store};

/// Jobs of the history at `db` started after `since` that succeeded.
fn succeeded_since(db: &Path, since: DateTime<Utc>) -> usize {
    Store::open_read_only(db)
        .and_then(|s| s.recent_jobs(1000))
        .unwrap_or_default()
        .iter()
        .filter(|j| j.started_at > since && j.status == JobStatus::Succeeded)
        .count()
}

/// Starts `vbs-agent ARGS POLICY` logging at `info`, stdout to a pipe.
fn spawn(args: &[&str], policy: &Path, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(args)
        .arg(policy)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Panics when `child` has exited: it was meant to keep running.
fn assert_alive(child: &mut Child) {
    if let Some(status) = child.try_wait().unwrap() {
        panic!("the agent died: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_outlives_its_closed_stderr() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let path = world.write_config(
        "",
        "",
        &policy_yaml("often", "*/2 * * * * *", &[volume_id(1)], ""),
    );
    let mut agent = spawn(&["run", "--config"], &path, Stdio::piped());
    // Read one log line, as `head -1` would, then close both pipes.
    let mut stderr = BufReader::new(agent.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    drop(stderr);
    drop(agent.stdout.take());

    let closed_at = Utc::now();
    let db = world.path("state/history.db");
    wait_for("two jobs to succeed after the pipes closed", || {
        assert_alive(&mut agent);
        succeeded_since(&db, closed_at) >= 2
    })
    .await;

    signal(&agent, "-TERM");
    let status = agent.wait().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let history = Store::open_read_only(&db).unwrap();
    let running: Vec<_> = history
        .recent_jobs(1000)
        .unwrap()
        .into_iter()
        .filter(|j| j.status == JobStatus::Running)
        .collect();
    assert!(running.is_empty(), "no job left running: {running:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_finishes_its_jobs_when_stdout_is_closed() {
    let world = World::start(vec![volume(1, None), volume(2, None)]).await;
    let path = world.write_config(
        "",
        "",
        &policy_yaml("now", "0 0 3 1 1 *", &[volume_id(1), volume_id(2)], ""),
    );
    let mut trigger = spawn(
        &["trigger", "--policy", "now", "--config"],
        &path,
        Stdio::null(),
    );
    // Closed before the first progress line is written.
    drop(trigger.stdout.take());
    let status = tokio::task::spawn_blocking(move || trigger.wait())
        .await
        .unwrap()
        .unwrap();

    assert!(status.success(), "both jobs succeeded: {status}");
    let jobs = Store::open_read_only(&world.path("state/history.db"))
        .unwrap()
        .recent_jobs(10)
        .unwrap();
    let statuses: Vec<JobStatus> = jobs.iter().map(|j| j.status).collect();
    assert_eq!(statuses, [JobStatus::Succeeded, JobStatus::Succeeded]);
}
