//! The agent end to end against the simulator on 127.0.0.1 with a real
//! SQLite history: schedules fire, jobs reach terminal statuses, the
//! history tells the truth and temporary snapshots are cleaned up.

use crate::helper::failing_volume;
use crate::helper::sim::{Scripted, VolumeFault};
use crate::helper::{jobs, volume, volume_id, wait_for, Daemon, World, PROJECT};
use vbs_agent::config::Config;
use vbs_agent::store::{JobRecord, JobStatus, Store};

/// Runs the daemon until `done` holds for the jobs recorded so far, then
/// stops it (jobs still in flight finish within the shutdown grace) and
/// returns the whole history.
async fn run_daemon_until(config: Config, done: impl Fn(&[JobRecord]) -> bool) -> Vec<JobRecord> {
    let history = config.history_path();
    let daemon = Daemon::start(config);
    wait_for("the expected jobs to finish", || done(&jobs(&history))).await;
    daemon.stop().await;
    jobs(&history)
}

/// The jobs of the first slot that fired. Later slots of a 2-second
/// schedule may be skipped as overlaps on a loaded machine; the first never
/// is, because no job came before it.
fn first_slot(jobs: &[JobRecord]) -> Vec<&JobRecord> {
    let first = jobs.iter().map(|j| j.slot).min();
    jobs.iter().filter(|j| Some(j.slot) == first).collect()
}

/// Whether the first slot's `count` jobs are all recorded and finished.
fn first_slot_finished(jobs: &[JobRecord], count: usize) -> bool {
    let first = first_slot(jobs);
    first.len() == count && first.iter().all(|j| j.finished_at.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_fires_repeatedly_and_every_job_succeeds() {
    let world = World::start(vec![volume(1, None), volume(2, None)]).await;
    let volumes = [volume_id(1), volume_id(2)];
    let config = world.config("*/4 * * * * *", &volumes, "", false);

    // Two slots in which both volumes were backed up; a slot that fell
    // while a job of the one before still ran is skipped as an overlap,
    // which a loaded machine may see.
    let jobs = run_daemon_until(config, |jobs| {
        let mut succeeded = std::collections::BTreeMap::new();
        for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
            *succeeded.entry(job.slot).or_insert(0) += 1;
        }
        succeeded.values().filter(|&&n| n == 2).count() >= 2
    })
    .await;

    let (succeeded, others): (Vec<_>, Vec<_>) =
        jobs.iter().partition(|j| j.status == JobStatus::Succeeded);
    assert!(
        succeeded.len() >= 4,
        "two slots × two volumes, got {jobs:#?}"
    );
    assert!(
        others.iter().all(|j| j.status == JobStatus::SkippedOverlap),
        "only overlaps may not succeed: {others:#?}"
    );
    let jobs: Vec<JobRecord> = succeeded.into_iter().cloned().collect();
    for job in &jobs {
        let backup_id = job.backup_id.as_deref().expect("backup id recorded");
        assert!(job.snapshot_id.is_some());
        let backups = world.sim.backups(PROJECT);
        let backup = backups
            .iter()
            .find(|b| b.id == backup_id)
            .expect("backup exists in the cloud");
        assert_eq!(backup.status, "available");
        assert_eq!(backup.name, job.resource_name);
        assert_eq!(backup.volume_id, job.target);
    }
    // Slots fall on the schedule's 4-second grid.
    assert!(jobs.iter().all(|j| j.slot.timestamp() % 4 == 0));
    // Temporary snapshots are gone.
    let left: Vec<_> = world.sim.snapshots(PROJECT);
    assert!(left.is_empty(), "snapshots left behind: {left:#?}");
    // A volume's first backup is full; one started after an earlier backup
    // of the same volume was available is incremental.
    for volume in &volumes {
        let mut mine: Vec<_> = jobs.iter().filter(|j| &j.target == volume).collect();
        mine.sort_by_key(|j| j.slot);
        assert_eq!(mine[0].is_incremental, Some(false), "{:#?}", mine[0]);
        for later in &mine[1..] {
            if mine
                .iter()
                .any(|earlier| earlier.finished_at.is_some_and(|f| f < later.started_at))
            {
                assert_eq!(later.is_incremental, Some(true), "{later:#?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backup_is_recorded_with_the_clouds_reason() {
    let reason = "Connection to swift failed: [Errno 111] ECONNREFUSED";
    let world = World::start(vec![volume(1, None), failing_volume(2, reason)]).await;
    let config = world.config("*/2 * * * * *", &[volume_id(1), volume_id(2)], "", false);

    let jobs = run_daemon_until(config, |jobs| first_slot_finished(jobs, 2)).await;

    let first = first_slot(&jobs);
    let failed = first.iter().find(|j| j.target == volume_id(2)).unwrap();
    let ok = first.iter().find(|j| j.target == volume_id(1)).unwrap();
    assert_eq!(failed.status, JobStatus::Failed, "{failed:#?}");
    assert_eq!(failed.fail_reason.as_deref(), Some(reason));
    assert!(
        failed.backup_id.is_some(),
        "the failed backup's id is kept for the audit"
    );
    assert_eq!(ok.status, JobStatus::Succeeded, "{ok:#?}");
    assert!(
        world.sim.snapshots(PROJECT).is_empty(),
        "snapshot of the failed backup left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_that_never_finishes_times_out() {
    let world = World::start(vec![volume(1, Some(VolumeFault::BackupNeverFinishes))]).await;
    let config = world.config(
        "*/2 * * * * *",
        &[volume_id(1)],
        "    completion_timeout: 3s\n",
        false,
    );

    let jobs = run_daemon_until(config, |jobs| first_slot_finished(jobs, 1)).await;

    let job = first_slot(&jobs)[0];
    assert_eq!(job.status, JobStatus::TimedOut, "{job:#?}");
    let reason = job.fail_reason.as_deref().unwrap();
    assert!(
        reason.contains("did not reach a terminal status within the completion timeout (3s)"),
        "{reason}"
    );
    let elapsed = job.finished_at.unwrap() - job.started_at;
    assert!(
        elapsed >= chrono::TimeDelta::seconds(3),
        "gave up early: {elapsed}"
    );
}

/// A job's cleanup sends the DELETE of its snapshot without looking at
/// the snapshot first; when the cloud refuses it because the snapshot is
/// already on its way out (here: deleted, then answered with Cinder's
/// 400), a look finds it `deleting` or gone, which counts as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_deletes_at_once_and_a_refused_delete_of_a_snapshot_going_away_is_done() {
    let world = World::start(vec![volume(1, None)]).await;
    world.sim.script(Scripted {
        method: "DELETE".into(),
        path_contains: "/snapshots/".into(),
        status: 400,
        content_type: "application/json".into(),
        body: r#"{"badRequest": {"code": 400, "message": "Invalid snapshot: Snapshot status must be available or error, but current status is: deleting."}}"#.into(),
        after_handling: true,
        times: 1,
        ..Default::default()
    });
    let config = world.config("*/2 * * * * *", &[volume_id(1)], "", false);
    let history = config.history_path();

    let jobs = run_daemon_until(config, |jobs| first_slot_finished(jobs, 1)).await;

    let job = first_slot(&jobs)[0];
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let snapshot = job.snapshot_id.clone().unwrap();
    let events = Store::open_read_only(&history)
        .unwrap()
        .job_events(job.id)
        .unwrap();
    let lines: Vec<String> = events
        .iter()
        .map(|e| match e.kind.as_str() {
            "api_call" => format!(
                "{} {} {}",
                e.method.as_deref().unwrap_or(""),
                e.path.as_deref().unwrap_or(""),
                e.http_status.unwrap_or(0)
            ),
            kind => format!("{kind}: {}", e.message.as_deref().unwrap_or("")),
        })
        .collect();
    assert!(
        !lines.iter().any(|l| l.contains("left behind")),
        "{lines:#?}"
    );
    let cleanup = lines
        .iter()
        .position(|l| l.starts_with("state: cleanup ("))
        .unwrap();
    let path = format!("/v2/{PROJECT}/snapshots/{snapshot}");
    assert_eq!(
        lines[cleanup + 1],
        format!("DELETE {path} 400"),
        "the DELETE goes out first: {lines:#?}"
    );
    assert!(
        lines[cleanup + 2].starts_with(&format!("GET {path} ")),
        "then a look: {lines:#?}"
    );
    assert!(
        lines[cleanup..]
            .iter()
            .any(|l| *l == format!("GET {path} 404")),
        "and the wait until it is gone: {lines:#?}"
    );
    assert!(world
        .sim
        .snapshots(PROJECT)
        .iter()
        .all(|s| s.id != snapshot));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_obtains_a_keystone_token_and_uses_it() {
    let world = World::start(vec![volume(1, None)]).await;
    let config = world.config("*/2 * * * * *", &[volume_id(1)], "", true);
    let history = config.history_path();

    let jobs = run_daemon_until(config, |jobs| first_slot_finished(jobs, 1)).await;

    let job = first_slot(&jobs)[0];
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let store = Store::open_read_only(&history).unwrap();
    let events = store.job_events(job.id).unwrap();
    let calls: Vec<String> = events
        .iter()
        .filter(|e| e.kind == "api_call")
        .map(|e| {
            format!(
                "{} {} {}",
                e.method.as_deref().unwrap_or(""),
                e.path.as_deref().unwrap_or(""),
                e.http_status.unwrap_or(0)
            )
        })
        .collect();
    // The token is obtained by the first call of the process: the job's,
    // or the coverage snapshot's taken at start.
    let db = rusqlite::Connection::open(&history).unwrap();
    let tokens: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'api_call' AND method = 'POST'
               AND path = '/v3/auth/tokens' AND http_status = 201",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tokens, 1, "one token for the whole process: {calls:#?}");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with(&format!("POST /v3/{PROJECT}/backups")) && c.ends_with("202")),
        "{calls:#?}"
    );
    // Neither the password nor the token reaches the history.
    for file in ["history.db", "history.db-wal"] {
        let bytes = std::fs::read(history.with_file_name(file)).unwrap_or_default();
        for secret in [crate::helper::PASSWORD, crate::helper::TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} stored in {file}"
            );
        }
    }
}
