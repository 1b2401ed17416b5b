//! A storm of faults from the cloud — 20% server errors, 5% throttling, 2%
//! dropped connections, 1% malformed answers — and every job still reaches
//! the terminal status it deserves, with the retries in the event log.

use std::time::Duration;

use crate::helper::failing_volume;
use crate::helper::sim::Faults;
use crate::helper::{
    all_finished, jobs, load, policy_yaml, volume, volume_id, wait_for, Daemon, World, PROJECT,
};
use vbs_agent::api::ClientSettings;
use vbs_agent::store::JobStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_reaches_the_right_terminal_status_through_a_fault_storm() {
    let reason = "Connection to swift failed: [Errno 111] ECONNREFUSED";
    let mut volumes: Vec<_> = (1..=4).map(|n| volume(n, None)).collect();
    volumes.push(failing_volume(5, reason));
    let world = World::start(volumes).await;
    world.sim.set_faults(Faults {
        seed: 2026,
        server_error_rate: 0.20,
        throttle_rate: 0.05,
        drop_rate: 0.02,
        malformed_rate: 0.01,
        ..Faults::default()
    });
    let ids: Vec<String> = (1..=5).map(volume_id).collect();
    let policies = policy_yaml(
        "storm",
        "*/3 * * * * *",
        &ids,
        "    completion_timeout: 2m\n",
    );
    let config = load(&world.write_config("", "", &policies));
    let history = config.history_path();
    let settings = ClientSettings {
        retry_min_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(100),
        max_retries: 6,
        ..ClientSettings::default()
    };
    let daemon = Daemon::start_with(config, settings.clone());
    wait_for("three slots of five jobs to finish", || {
        jobs(&history)
            .iter()
            .filter(|j| j.finished_at.is_some())
            .count()
            >= 15
    })
    .await;
    daemon.stop().await;

    // Drain whatever the stop interrupted, still in the storm, with a
    // schedule that does not fire now.
    let quiet = policy_yaml("storm", "0 0 3 1 1 *", &ids, "    completion_timeout: 2m\n");
    let config = load(&world.write_config("", "", &quiet));
    let daemon = Daemon::start_with(config, settings);
    wait_for("interrupted jobs to finish", || all_finished(&history)).await;
    daemon.stop().await;

    let jobs: Vec<_> = jobs(&history)
        .into_iter()
        .filter(|j| j.finished_at.is_some())
        .collect();
    for job in &jobs {
        if job.status == JobStatus::SkippedOverlap {
            continue;
        }
        if job.target == volume_id(5) {
            assert_eq!(
                (job.status, job.fail_reason.as_deref()),
                (JobStatus::Failed, Some(reason)),
                "{job:#?}"
            );
        } else {
            assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
        }
    }
    let conn = rusqlite::Connection::open(&history).unwrap();
    let count = |class: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM events WHERE kind = 'api_call' AND class = ?1",
            [class],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(
        count("retryable") > 10,
        "retries recorded: {}",
        count("retryable")
    );
    assert!(count("ok") > 0);
    // The cloud created each backup once, and no snapshot is left.
    let ledger = world.sim.ledger();
    for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
        let n = ledger
            .iter()
            .filter(|e| e.kind == "backup" && e.name == job.resource_name)
            .count();
        assert_eq!(n, 1, "{}", job.resource_name);
    }
    let left = world.sim.snapshots(PROJECT);
    assert!(left.is_empty(), "snapshots left behind: {left:#?}");
}
