//! The history has one writer and is never silently replaced: a second
//! daemon (or a `trigger` beside the daemon) stops at once naming the
//! holder; a history that is gone, emptied, swapped, damaged or not a
//! vbs-agent history at all is refused and left as it is.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use crate::helper::{
    agent_async, policy_yaml, signal, spawn_agent, text, volume, volume_id, wait_for, World,
};

fn args(words: &[&str], policy: &Path) -> Vec<String> {
    let mut v: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    v.push("--config".into());
    v.push(policy.display().to_string());
    v
}

/// `trigger --policy p` on a fresh world's policy file, as a user would.
async fn trigger(policy: &Path) -> std::process::Output {
    agent_async(args(&["trigger", "--policy", "p"], policy)).await
}

async fn world_with_policy() -> (World, std::path::PathBuf) {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let policies = policy_yaml("p", "0 0 3 1 1 *", &[volume_id(1)], "");
    let policy = world.write_config("", "", &policies);
    (world, policy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_stops_at_once_and_names_the_daemon() {
    let (world, policy) = world_with_policy().await;
    let log = world.path("agent.log");
    let mut daemon = spawn_agent(&policy, &log);
    wait_for("the daemon to start", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("agent started"))
    })
    .await;

    let second = agent_async(args(&["run"], &policy)).await;
    let stderr = text(&second.stderr);
    assert_ne!(second.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("another vbs-agent is writing the history")
            && stderr.contains(&format!("vbs-agent run (PID {})", daemon.id())),
        "{stderr}"
    );
    assert!(!stderr.contains("agent started"), "{stderr}");

    let beside = trigger(&policy).await;
    assert_ne!(beside.status.code(), Some(0));
    assert!(
        text(&beside.stderr).contains(&format!("(PID {})", daemon.id())),
        "{}",
        text(&beside.stderr)
    );
    assert!(world.sim.backups(crate::helper::PROJECT).is_empty());

    signal(&daemon, "-TERM");
    assert!(daemon.wait().unwrap().success());
    // The lock went with its holder.
    let after = trigger(&policy).await;
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stderr));
}

/// Every byte of the files in `dir`, by name.
fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "agent.lock")
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emptied_or_swapped_history_is_refused_and_left_untouched() {
    let (world, policy) = world_with_policy().await;
    assert_eq!(trigger(&policy).await.status.code(), Some(0));
    let state = world.path("state");
    let db = state.join("history.db");

    // Truncated to 0 bytes, its WAL still there.
    std::fs::File::create(&db).unwrap();
    let before = snapshot_files(&state);
    let out = trigger(&policy).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("is missing or empty, but")
            && stderr.contains("history.id")
            && stderr.contains("will not start an empty history"),
        "{stderr}"
    );
    assert_eq!(snapshot_files(&state), before, "the state dir was changed");

    // Gone altogether.
    std::fs::remove_file(&db).unwrap();
    let out = trigger(&policy).await;
    assert!(
        text(&out.stderr).contains("is missing or empty"),
        "{}",
        text(&out.stderr)
    );
    assert!(!db.exists(), "a new database was created");

    // Another history in its place.
    let other = World::start_instant(vec![volume(1, None)]).await;
    let other_policy = other.write_config(
        "",
        "",
        &policy_yaml("p", "0 0 3 1 1 *", &[volume_id(1)], ""),
    );
    assert_eq!(trigger(&other_policy).await.status.code(), Some(0));
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("history.db{suffix}");
        std::fs::copy(other.path("state").join(&name), state.join(&name)).unwrap();
    }
    let out = trigger(&policy).await;
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("holds history")
            && stderr.contains("but")
            && stderr.contains("history.id says history"),
        "{stderr}"
    );
    assert_eq!(
        world.sim.backups(crate::helper::PROJECT).len(),
        1,
        "no job ran"
    );

    // Someone else's SQLite database: nothing is migrated into it.
    std::fs::remove_file(state.join("history.id")).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(state.join(format!("history.db{suffix}")));
    }
    std::fs::remove_file(&db).unwrap();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE inventory (id INTEGER PRIMARY KEY, item TEXT)")
            .unwrap();
    }
    let out = trigger(&policy).await;
    assert!(
        text(&out.stderr).contains("is not a vbs-agent history"),
        "{}",
        text(&out.stderr)
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "the foreign database was migrated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_history_is_refused() {
    let (world, policy) = world_with_policy().await;
    assert_eq!(trigger(&policy).await.status.code(), Some(0));
    let db = world.path("state/history.db");
    // Everything into the main file, so the damage is what SQLite reads.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
            .unwrap();
    }
    let len = std::fs::metadata(&db).unwrap().len();
    let page = 4096;
    assert!(len >= 4 * page, "a history of a few pages: {len}");
    let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.seek(SeekFrom::Start(len - 2 * page)).unwrap();
    file.write_all(&vec![0xA5; page as usize]).unwrap();
    drop(file);
    let damaged = std::fs::read(&db).unwrap();

    let out = trigger(&policy).await;
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("is damaged (integrity check:") && stderr.contains("will not write to it"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        damaged,
        "the damaged file was written"
    );
    assert_eq!(
        world.sim.backups(crate::helper::PROJECT).len(),
        1,
        "no job ran"
    );
}
