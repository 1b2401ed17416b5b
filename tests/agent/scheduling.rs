//! Scheduling guarantees with the daemon in-process: catch-up of a slot
//! missed while the agent was down, overlap records, job-level retries,
//! and the concurrency and rate limits.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::helper::failing_volume;
use crate::helper::sim::VolumeFault;
use crate::helper::Setup;
use crate::helper::{
    fast, jobs, load, policy_yaml, volume, volume_id, wait_for, Daemon, World, PROJECT,
};
use chrono::{DateTime, TimeDelta, Utc};
use vbs_agent::config::Config;
use vbs_agent::store::{JobRecord, JobStatus};

fn runs(history: &Path) -> Vec<(String, String, String)> {
    let conn = rusqlite::Connection::open(history).unwrap();
    let mut stmt = conn
        .prepare("SELECT slot, trigger, status FROM runs ORDER BY slot")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The daemon, in-process, until `until` holds for the history.
async fn daemon_until(config: Config, until: impl Fn(&[JobRecord]) -> bool) {
    let history = config.history_path();
    let daemon = Daemon::start_with(config, fast());
    wait_for("the daemon to get there", || until(&jobs(&history))).await;
    daemon.stop().await;
}

fn finished(jobs: &[JobRecord]) -> usize {
    jobs.iter().filter(|j| j.finished_at.is_some()).count()
}

async fn catch_up_after_downtime(misfire: &str) -> (Vec<(String, String, String)>, DateTime<Utc>) {
    let world = World::start(vec![volume(1, None)]).await;
    let policies = policy_yaml(
        "cu",
        "*/2 * * * * *",
        &[volume_id(1)],
        &format!("    misfire: {misfire}\n"),
    );
    let config = load(&world.write_config("", "", &policies));
    let history = config.history_path();
    daemon_until(config.clone(), |j| finished(j) >= 1).await;
    let stopped_at = Utc::now();
    // Down across at least two slots.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let restarted_at = Utc::now();
    daemon_until(config, |j| {
        j.iter()
            .any(|j| j.started_at >= restarted_at && j.finished_at.is_some())
            || misfire == "skip"
    })
    .await;
    let down: Vec<_> = runs(&history)
        .into_iter()
        .filter(|(slot, _, _)| {
            let t = DateTime::parse_from_rfc3339(slot)
                .unwrap()
                .with_timezone(&Utc);
            t > stopped_at && t <= restarted_at
        })
        .collect();
    (down, restarted_at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_missed_slot_runs_once_and_older_ones_are_recorded() {
    let (down, _) = catch_up_after_downtime("run_once").await;
    assert!(down.len() >= 2, "two slots fell in the downtime: {down:?}");
    let (last, older) = down.split_last().unwrap();
    assert_eq!(
        (last.1.as_str(), last.2.as_str()),
        ("catch_up", "succeeded"),
        "{down:?}"
    );
    assert!(
        older.iter().all(|(_, _, status)| status == "missed"),
        "{down:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misfire_skip_records_every_missed_slot_without_running_it() {
    let (down, _) = catch_up_after_downtime("skip").await;
    assert!(down.len() >= 2, "{down:?}");
    assert!(
        down.iter()
            .all(|(_, trigger, status)| trigger == "schedule" && status == "missed"),
        "{down:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_policy_waits_for_its_first_slot() {
    let world = World::start(vec![volume(1, None)]).await;
    // Every minute at second 0: a fresh agent must not fire before then.
    let policies = policy_yaml("new", "0 * * * * *", &[volume_id(1)], "");
    let config = load(&world.write_config("", "", &policies));
    let history = config.history_path();
    let started = Utc::now();
    daemon_until(config, |_| {
        Utc::now() - started > TimeDelta::milliseconds(1500)
    })
    .await;
    for job in jobs(&history) {
        assert_eq!(job.slot.timestamp() % 60, 0, "fired off-schedule: {job:#?}");
        assert!(
            job.slot > started,
            "a slot before the start was fired: {job:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_firing_while_the_volume_is_still_busy_is_recorded_as_skipped() {
    // Backups never finish, so the first job keeps running past the next slot.
    let world = World::start(vec![volume(1, Some(VolumeFault::BackupNeverFinishes))]).await;
    let policies = policy_yaml(
        "ov",
        "*/2 * * * * *",
        &[volume_id(1)],
        "    completion_timeout: 5s\n",
    );
    let config = load(&world.write_config("", "", &policies));
    let history = config.history_path();
    daemon_until(config, |j| {
        j.iter().any(|j| j.status == JobStatus::SkippedOverlap)
    })
    .await;
    let all = jobs(&history);
    let skipped = all
        .iter()
        .find(|j| j.status == JobStatus::SkippedOverlap)
        .unwrap();
    let blocker = all
        .iter()
        .find(|j| Some(j.id) == skipped.blocked_by)
        .expect("blocking job recorded");
    assert!(blocker.slot < skipped.slot);
    assert!(
        blocker.finished_at.is_none_or(|f| f > skipped.started_at),
        "the blocker was still running"
    );
    assert_eq!(
        skipped.backup_id, None,
        "nothing was created for the skipped slot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_is_retried_under_its_own_name() {
    let reason = "backend hiccup";
    let world = World::start(vec![
        volume(
            1,
            Some(VolumeFault::BackupErrorTimes {
                fail_reason: reason.into(),
                times: 1,
            }),
        ),
        failing_volume(3, reason),
    ])
    .await;
    let policies = policy_yaml(
        "rt",
        "0 0 3 1 1 *",
        &[volume_id(1), volume_id(3)],
        "    retries: { max_attempts: 3, delay: 1s }\n",
    );
    let Setup {
        config,
        store,
        engine,
    } = Setup::of(&world, &policies);
    let slot = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let report = engine
        .run_policy(&config.policies[0], slot, vbs_agent::store::Trigger::Manual)
        .await
        .unwrap();

    let healed = &report.jobs[0];
    assert_eq!(
        (healed.status, healed.attempt),
        (JobStatus::Succeeded, 2),
        "{healed:#?}"
    );
    assert!(healed.resource_name.ends_with("-r2"));
    let earlier = store.earlier_attempts(healed.id).unwrap();
    assert_eq!(earlier.len(), 1);
    assert_eq!(
        (
            earlier[0].status.as_str(),
            earlier[0].fail_reason.as_deref()
        ),
        ("failed", Some(reason))
    );

    let broken = &report.jobs[1];
    assert_eq!(
        (broken.status, broken.attempt),
        (JobStatus::Failed, 3),
        "{broken:#?}"
    );
    assert_eq!(store.earlier_attempts(broken.id).unwrap().len(), 2);
    // Every attempt's backup exists under its own name, and no snapshot is left.
    let names: BTreeSet<String> = world
        .sim
        .ledger()
        .into_iter()
        .filter(|e| e.kind == "backup")
        .map(|e| e.name)
        .collect();
    assert_eq!(names.len(), 2 + 3);
    assert!(world.sim.snapshots(PROJECT).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_rate_limits_hold_and_nobody_is_dropped() {
    let world = World::start((1..=8).map(|n| volume(n, None)).collect()).await;
    let volumes: Vec<String> = (1..=8).map(volume_id).collect();
    let policies = policy_yaml("lim", "0 0 3 1 1 *", &volumes, "");
    let Setup { config, engine, .. } = Setup::new(
        load(&world.write_config(
            "max_concurrent_jobs: 2\n",
            "    rate_limit: 20/s\n",
            &policies,
        )),
        fast(),
    );
    let slot = chrono::SubsecRound::trunc_subsecs(Utc::now(), 0);
    let report = engine
        .run_policy(&config.policies[0], slot, vbs_agent::store::Trigger::Manual)
        .await
        .unwrap();
    assert!(
        report.jobs.iter().all(|j| j.status == JobStatus::Succeeded),
        "{:#?}",
        report.jobs
    );

    // At most two jobs between their first and last API call at any time.
    let conn = rusqlite::Connection::open(config.history_path()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT job_id, min(at), max(at) FROM events WHERE kind = 'api_call' GROUP BY job_id",
        )
        .unwrap();
    let spans: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(spans.len(), 8);
    for (_, start, _) in &spans {
        let inside = spans
            .iter()
            .filter(|(_, s, e)| s <= start && start <= e)
            .count();
        assert!(inside <= 2, "{inside} jobs in flight at {start}");
    }
    // At most 20 calls in any one-second window.
    let mut stmt = conn
        .prepare("SELECT at FROM events WHERE kind = 'api_call' ORDER BY at")
        .unwrap();
    let times: Vec<DateTime<Utc>> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|t| {
            DateTime::parse_from_rfc3339(&t.unwrap())
                .unwrap()
                .with_timezone(&Utc)
        })
        .collect();
    for (i, t) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .take_while(|u| **u - *t < TimeDelta::seconds(1))
            .count();
        assert!(window <= 21, "{window} calls within a second from {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_schedule_starts_afresh_instead_of_catching_up() {
    let world = World::start(vec![volume(1, None)]).await;
    let every_two = policy_yaml("chg", "*/2 * * * * *", &[volume_id(1)], "");
    let config = load(&world.write_config("", "", &every_two));
    let history = config.history_path();
    daemon_until(config, |j| finished(j) >= 1).await;
    // Down across slots of the new schedule too.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let every_three = policy_yaml("chg", "*/3 * * * * *", &[volume_id(1)], "");
    let config = load(&world.write_config("", "", &every_three));
    let restarted = Utc::now();
    daemon_until(config, |_| {
        Utc::now() - restarted > TimeDelta::milliseconds(500)
    })
    .await;
    let after: Vec<_> = runs(&history)
        .into_iter()
        .filter(|(_, trigger, status)| trigger == "catch_up" || status == "missed")
        .collect();
    assert!(
        after.is_empty(),
        "nothing caught up or recorded missed for a changed schedule: {after:?}"
    );
}
