//! What stands between a writer and the history:
//!
//! - **One writer at a time.** `run`, `trigger` and `prune` hold an
//!   exclusive lock on `agent.lock` in the state directory for as long as
//!   they run. A second daemon would resume the first one's unfinished jobs
//!   and drive them too, creating every backup twice; it stops at once
//!   instead, naming the holder. The kernel drops the lock when its holder
//!   dies, even by SIGKILL.
//! - **No silent new history.** `history.id` beside the database names the
//!   history that lives there (its ID is also inside it). A database that is
//!   missing or empty where that file says one existed, or that holds
//!   another history, is refused: an empty history would otherwise replace
//!   the audit trail without a word. Creating a history is logged.
//! - **No damaged or foreign history.** `PRAGMA quick_check` runs before a
//!   writer uses the database; a database that fails it is refused with the
//!   recovery steps, and so is another program's SQLite file, before any
//!   migration writes into it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use super::StoreError;

/// Name of the lock file in the state directory.
const LOCK_FILE: &str = "agent.lock";
/// Name of the file that remembers which history lives in the state directory.
const MARKER_FILE: &str = "history.id";
/// Problems `quick_check` reports, at most, in the error.
const MAX_PROBLEMS: usize = 5;

/// The exclusive right to write the history; released when dropped.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

/// Takes the writer lock of the history at `db`, recording who holds it
/// (`role`, e.g. `run`) so that a refused writer can say so.
pub fn lock(db: &Path, role: &str) -> Result<WriterLock, StoreError> {
    let dir = state_dir(db);
    super::state_dir::create(&dir)?;
    let path = dir.join(LOCK_FILE);
    let io_err = |source| StoreError::Create {
        path: path.clone(),
        source,
    };
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .open(&path)
            .map_err(io_err)?
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(StoreError::Locked {
                dir,
                holder: holder.trim().to_string(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    let holder = format!(
        "vbs-agent {role} (PID {}) since {}",
        std::process::id(),
        super::format_ts(chrono::Utc::now())
    );
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{holder}"))
        .map_err(io_err)?;
    Ok(WriterLock { _file: file })
}

/// Refuses a database that is gone or empty while `history.id` says a
/// history lived there. Runs before SQLite creates anything.
pub(super) fn refuse_lost_history(db: &Path) -> Result<(), StoreError> {
    let empty = std::fs::metadata(db).map_or(true, |m| m.len() == 0);
    match (empty, read_marker(db)?) {
        (true, Some(id)) => Err(StoreError::Missing {
            path: db.to_path_buf(),
            marker: marker_path(db),
            id,
        }),
        _ => Ok(()),
    }
}

/// Refuses a database that fails `PRAGMA quick_check`.
pub(super) fn refuse_damaged(conn: &Connection, db: &Path) -> Result<(), StoreError> {
    let damaged = |detail: String| StoreError::Damaged {
        path: db.to_path_buf(),
        detail,
    };
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| damaged(e.to_string()))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(e.to_string()))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let shown: Vec<&str> = problems
        .iter()
        .take(MAX_PROBLEMS)
        .map(String::as_str)
        .collect();
    let more = problems.len().saturating_sub(MAX_PROBLEMS);
    let mut detail = shown.join("; ");
    if more > 0 {
        detail.push_str(&format!("; and {more} more"));
    }
    Err(damaged(detail))
}

/// Refuses a database that has tables but is not a vbs-agent history, so
/// that no migration writes into someone else's SQLite file.
pub(super) fn refuse_foreign(conn: &Connection, db: &Path) -> Result<(), StoreError> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| r.get(0),
    )?;
    if tables > 0 && !super::is_history(conn)? {
        return Err(StoreError::NotHistory(db.to_path_buf()));
    }
    Ok(())
}

/// The history's ID after migration: the one inside the database (a new
/// one for a new or older database), checked against `history.id`, which
/// is written when missing.
pub(super) fn check_identity(conn: &Connection, db: &Path) -> Result<(), StoreError> {
    let inside: Option<String> = conn
        .query_row(
            "SELECT value FROM history_meta WHERE key = 'history_id'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let id = match inside {
        Some(id) => id,
        None => {
            let id = uuid::Uuid::new_v4().to_string();
            conn.execute(
                "INSERT INTO history_meta (key, value) VALUES ('history_id', ?1), ('created_at', ?2)",
                rusqlite::params![id, super::format_ts(chrono::Utc::now())],
            )?;
            let earlier: bool =
                conn.query_row("SELECT EXISTS (SELECT 1 FROM runs)", [], |r| r.get(0))?;
            if earlier {
                tracing::info!(history = %db.display(), id = %id, "named the existing history");
            } else {
                tracing::warn!(history = %db.display(), id = %id, "created a new history");
            }
            id
        }
    };
    match read_marker(db)? {
        Some(marked) if marked == id => Ok(()),
        Some(marked) => Err(StoreError::Replaced {
            path: db.to_path_buf(),
            marker: marker_path(db),
            expected: marked,
            found: id,
        }),
        None => write_marker(db, &id),
    }
}

fn state_dir(db: &Path) -> PathBuf {
    match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn marker_path(db: &Path) -> PathBuf {
    state_dir(db).join(MARKER_FILE)
}

fn read_marker(db: &Path) -> Result<Option<String>, StoreError> {
    let path = marker_path(db);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|id| !id.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Create { path, source }),
    }
}

fn write_marker(db: &Path, id: &str) -> Result<(), StoreError> {
    let path = marker_path(db);
    std::fs::write(&path, format!("{id}\n")).map_err(|source| StoreError::Create { path, source })
}
