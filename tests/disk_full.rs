//! The history's disk fills up while the daemon runs, then space returns.
//! No slot may go unrecorded and no job may stay `running`: slots whose run
//! could not be written are recorded as `missed` with the reason, and jobs
//! a failed write stopped are continued, all without a restart.
//!
//! The state directory is a small tmpfs, which needs root (as in CI); the
//! test says it was skipped otherwise. A binary of its own, so that it can
//! be run alone as root (`cargo test --test disk_full`).

#[path = "helper/mod.rs"]
mod helper;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use helper::{policy_yaml, signal, spawn_agent, volume, volume_id, wait_for, World};
use vbs_agent::store::{JobStatus, Store};

/// A tmpfs of a few MiB mounted on a directory, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,mode=0750", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_slot_and_strands_no_job() {
    let world = World::start(vec![volume(1, None), volume(2, None)]).await;
    let Some(disk) = SmallDisk::mount(&world.path("state")) else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED disk-full test: mounting a tmpfs needs root"
        );
        return;
    };
    let volumes = [volume_id(1), volume_id(2)];
    let policy = world.write_config("", "", &policy_yaml("full", "*/2 * * * * *", &volumes, ""));
    let history = world.path("state/history.db");
    let log = world.path("agent.log");
    let mut agent = spawn_agent(&policy, &log);
    let succeeded = || {
        Store::open_read_only(&history)
            .and_then(|s| s.recent_jobs(10_000))
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j.status == JobStatus::Succeeded)
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for("the first backups", || succeeded() >= 2).await;

    let filler = disk.fill();
    wait_for("a history write to fail on the full disk", || {
        log_text(&log).contains("database or disk is full")
    })
    .await;
    // A few more slots fall while nothing can be written.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    std::fs::remove_file(&filler).unwrap();

    wait_for("the left-out slots recorded and every job finished", || {
        log_text(&log).contains("slot missed: the history could not be written")
            && Store::open_read_only(&history)
                .and_then(|s| s.unfinished_jobs())
                .is_ok_and(|u| u.is_empty())
    })
    .await;
    let after = succeeded();
    wait_for("backups again after the disk emptied", || {
        succeeded() > after
    })
    .await;
    signal(&agent, "-TERM");
    assert!(agent.wait().unwrap().success());

    let store = Store::open_read_only(&history).unwrap();
    let jobs = store.recent_jobs(100_000).unwrap();
    let stranded: Vec<_> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Running)
        .collect();
    assert!(stranded.is_empty(), "jobs left running: {stranded:#?}");
    // Every slot from the first to the last is in the history.
    let slots: BTreeSet<i64> = jobs.iter().map(|j| j.slot.timestamp()).collect();
    let (first, last) = (*slots.first().unwrap(), *slots.last().unwrap());
    let gaps: Vec<i64> = (first..=last)
        .step_by(2)
        .filter(|s| !slots.contains(s))
        .collect();
    assert!(gaps.is_empty(), "slots absent from the history: {gaps:?}");
    let missed: Vec<_> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Missed)
        .collect();
    assert!(!missed.is_empty(), "no slot fell while the disk was full");
    for job in &missed {
        let reason = job.fail_reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains("could not be written") && reason.contains("full"),
            "{job:#?}"
        );
    }
    drop(disk);
}
