//! The fault storm, written once for every policy kind: 20% server errors,
//! 5% throttling, 2% dropped connections and 1% malformed answers on every
//! call while the daemon runs three slots, and every job still reaches the
//! terminal status it deserves, with the retries in the event log.

use std::time::Duration;

use vbs_agent::api::ClientSettings;
use vbs_agent::store::{JobRecord, JobStatus};

use super::sim::{Faults, LedgerEntry};
use super::{all_finished, jobs, load, wait_for, Daemon, World};

/// What the storm needs to know of one policy kind.
pub struct Kind {
    /// The policies list: one policy named `storm` on `schedule`.
    pub policy: fn(schedule: &str) -> String,
    /// How many targets the policy has.
    pub targets: usize,
    /// The targets the cloud always fails, and how their jobs must have ended.
    pub failing: fn() -> Vec<String>,
    pub check_failed: fn(&JobRecord),
    /// The ledger's kind of what a job makes; each succeeded job's, once.
    pub made: &'static str,
    /// Whether a ledger entry is what `job` made (by name; on CBR, by
    /// volume and run name).
    pub mine: fn(&LedgerEntry, &JobRecord) -> bool,
    /// Lines of the cloud's entry (`backup_service: cbr`).
    pub cloud_extra: &'static str,
    /// What must not be left in the cloud afterwards (temporary snapshots).
    pub leftovers: fn(&World) -> Vec<String>,
}

/// The faults of the storm, from `seed`.
pub fn faults(seed: u64) -> Faults {
    Faults {
        seed,
        server_error_rate: 0.20,
        throttle_rate: 0.05,
        drop_rate: 0.02,
        malformed_rate: 0.01,
        ..Faults::default()
    }
}

/// Runs the daemon on `kind`'s policy through the storm until three slots
/// of jobs have finished, drains what the stop interrupted, and checks
/// every job's end, the retries and what the cloud made. Returns the
/// finished jobs.
pub async fn storm(world: &World, kind: &Kind, seed: u64) -> Vec<JobRecord> {
    world.sim.set_faults(faults(seed));
    let config = load(&world.write_config("", kind.cloud_extra, &(kind.policy)("*/3 * * * * *")));
    let history = config.history_path();
    let settings = ClientSettings {
        retry_min_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(100),
        max_retries: 6,
        ..ClientSettings::default()
    };
    let daemon = Daemon::start_with(config, settings.clone());
    wait_for("three slots of jobs to finish", || {
        jobs(&history)
            .iter()
            .filter(|j| j.finished_at.is_some())
            .count()
            >= 3 * kind.targets
    })
    .await;
    daemon.stop().await;

    // Drain whatever the stop interrupted, still in the storm, with a
    // schedule that does not fire now.
    let config = load(&world.write_config("", kind.cloud_extra, &(kind.policy)("0 0 3 1 1 *")));
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
        if (kind.failing)().contains(&job.target) {
            (kind.check_failed)(job);
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
    // The cloud made what each succeeded job made once, and left nothing behind.
    let ledger = world.sim.ledger();
    for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
        let n = ledger
            .iter()
            .filter(|e| e.kind == kind.made && (kind.mine)(e, job))
            .count();
        assert_eq!(n, 1, "{}", job.resource_name);
    }
    let left = (kind.leftovers)(world);
    assert!(left.is_empty(), "left behind: {left:#?}");
    jobs
}
