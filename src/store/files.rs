//! How the history's files come out on disk, so that members of the
//! agent's group (auditors) can read the history with their own tools.
//!
//! - `history.db` is created 0640 whatever the umask; SQLite gives its
//!   `-wal` and `-shm` files the same mode.
//! - The `-wal` and `-shm` files are kept when the agent closes the
//!   database. A reader that may not write in the state directory cannot
//!   create them, and SQLite reads a WAL database read-only only when both
//!   exist; without them an auditor could read the history only while the
//!   agent runs.

use std::ffi::c_int;
use std::path::Path;

use rusqlite::{ffi, Connection};

use super::StoreError;

/// Mode of a new history database: the agent writes, its group reads.
pub const DB_MODE: u32 = 0o640;

/// Creates the database file as [`DB_MODE`]; an existing file keeps its mode.
pub(super) fn create_group_readable(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let create_err = |source| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DB_MODE)
        .open(path)
    {
        // The umask may have removed bits from the mode asked for.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(DB_MODE))
            .map_err(create_err),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(create_err(e)),
    }
}

/// Keeps `-wal` and `-shm` after the last connection closes
/// (`SQLITE_FCNTL_PERSIST_WAL`), which rusqlite has no safe call for.
pub(super) fn keep_wal_files(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mut on: c_int = 1;
    // SAFETY: the handle belongs to `conn`, which is open for the whole
    // call; this file control reads and writes the one `c_int` passed.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot keep the WAL files for read-only readers".into()),
        ))
    }
}
