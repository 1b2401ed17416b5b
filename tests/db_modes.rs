//! The history database and its `-wal` and `-shm` files are readable by the
//! agent's group (auditors) and nobody else, whatever the umask: 0640 under
//! the unit's `UMask=0027`, and under a looser or stricter one too. The
//! state directory the agent creates is 0750, even under umask 000, so no
//! other user can replace the history.
//!
//! The `-wal` and `-shm` files stay after the agent closes the database, so
//! auditors can read it while the agent is stopped too.
//!
//! One test in its own binary, because it sets the process-wide umask.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vbs_agent::store::{JobStatus, NewRunJob, Store, Trigger};

/// Asserts that each `history.db{suffix}` in `dir` exists with mode 0640.
fn assert_0640(dir: &Path, suffixes: &[&str], when: &str) {
    for suffix in suffixes {
        assert_mode(&dir.join(format!("history.db{suffix}")), "0640", when);
    }
}

/// Asserts that `path` exists with `mode` (octal, four digits).
fn assert_mode(path: &Path, mode: &str, when: &str) {
    let actual = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} {when}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(format!("{actual:04o}"), mode, "{} {when}", path.display());
}

#[test]
fn db_files_are_0640_and_the_state_dir_0750_under_any_umask() {
    for umask in [0o027, 0o022, 0o077, 0o000] {
        // SAFETY: umask only swaps the process's file-creation mask; this
        // binary runs this one test, so no other thread creates files.
        unsafe { libc::umask(umask) };
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state").join("history.db");
        let store = Store::open(&db).unwrap();
        let job = NewRunJob {
            target: "vol-1",
            kind: "backup",
            cloud: "prod",
            resource_name: "nightly-vol-1",
            status: JobStatus::Running,
            blocked_by: None,
            note: None,
            restore: None,
            service: None,
        };
        let now = chrono::Utc::now();
        store
            .create_run("nightly", now, Trigger::Manual, &[job], None, now)
            .unwrap()
            .expect("a new run");
        let state = dir.path().join("state");
        assert_mode(&state, "0750", &format!("the state dir, umask {umask:04o}"));
        // While the agent holds the database open, all three files exist.
        assert_0640(
            &state,
            &["", "-wal", "-shm"],
            &format!("under umask {umask:04o}"),
        );
        // And after it closed it: a reader without write access to the
        // state directory needs both to open the database.
        drop(store);
        assert_0640(
            &state,
            &["-wal", "-shm"],
            &format!("after close, umask {umask:04o}"),
        );
        let reader = Store::open_read_only(&db).unwrap();
        assert_eq!(reader.recent_jobs(10).unwrap().len(), 1);
    }
}
