//! The history: runs, jobs, the append-only event log and schedule marks,
//! in SQLite (the default) or PostgreSQL (shared by an HA pair; see
//! [`db`]). Schema lives in `migrations/*.sql` (and
//! `migrations/postgres/*.sql`) and is applied at open. Knows nothing of
//! HTTP.

mod audit;
mod coverage;
pub mod db;
mod durations;
mod events;
mod export;
mod files;
mod guard;
mod jobs;
mod marks;
mod pg_open;
mod projects;
mod restores;
mod retention;
mod runs;
mod scope;
pub mod scratch;
mod server;
mod state_dir;
mod successes;
mod time;

use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, M};

pub use audit::{FailureCount, JobCounts, JobFilter, JobRow, ServiceCount, WindowTotals};
pub use coverage::{CoverageGap, CoverageSnapshot};
pub use db::{Dialect, PgConfig, Ticket, GROUP_WINDOW};
pub use events::EventRecord;
pub use events::{Event, EventKind};
pub use export::{ExportError, ExportSummary, TableCopy, BATCH_ROWS};
pub use files::DB_MODE;
pub use guard::WriterLock;
pub use jobs::{AttemptRecord, JobRecord, JobStatus, JobUpdate, Phase};
pub use projects::CloudProject;
pub use restores::{NewRestore, RestoreColumns, ScratchLeft};
pub use retention::RetentionAction;
pub use runs::{NewRunJob, RunStatus, Trigger};
pub use scope::{Resolution, RunScope, ScopedTarget, Vanished};
pub use server::{ServerColumns, ServerVolumeBackup};
pub use state_dir::{check as check_state_dir, StateDirError, STATE_DIR_MODE};
pub use successes::LastSuccess;
pub use time::{format_ts, parse_ts};

/// The longest an event held back waits for its commit in the daemon.
pub const EVENT_DELAY: Duration = Duration::from_millis(100);

/// WAL pages between automatic checkpoints (about 40 MiB of WAL at most).
const WAL_CHECKPOINT_PAGES: i64 = 10_000;

/// How long a writer waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A migration file under `migrations/`: its name and its SQL.
macro_rules! migration {
    ($name:literal) => {
        ($name, include_str!(concat!("../../migrations/", $name)))
    };
}

/// The schema's migrations in the order they apply: every file under
/// `migrations/`, numbered from 0001 without a gap (a test holds the list
/// and the files to each other). SQLite's `user_version` counts those
/// applied, by position, so a released migration is never changed, and a
/// new one is only ever appended.
const MIGRATIONS: &[(&str, &str)] = &[
    migration!("0001_history.sql"),
    migration!("0002_attempts_overlap_catchup.sql"),
    migration!("0003_retention.sql"),
    migration!("0004_shares.sql"),
    migration!("0005_server_backups.sql"),
    migration!("0006_audit_views.sql"),
    migration!("0007_backup_duration.sql"),
    migration!("0008_audit_indexes.sql"),
    migration!("0009_cloud_projects.sql"),
    migration!("0010_history_id.sql"),
    migration!("0011_job_kind_phases.sql"),
    migration!("0012_restores.sql"),
    migration!("0013_compliance_verified.sql"),
    migration!("0014_selection_coverage.sql"),
    migration!("0015_leader_lease.sql"),
    migration!("0016_backup_service.sql"),
    migration!("0017_lookup_indexes.sql"),
];

/// The first `count` migrations, as the migrator takes them.
fn migrations(count: usize) -> Migrations<'static> {
    Migrations::new(
        MIGRATIONS
            .iter()
            .take(count)
            .map(|(_, sql)| M::up(sql))
            .collect(),
    )
}

/// Errors of the history store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error("cannot open history database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot migrate history database {path}: {source}")]
    Migrate {
        path: PathBuf,
        source: rusqlite_migration::Error,
    },
    #[error("history database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("PostgreSQL history: {0}")]
    Postgres(tokio_postgres::Error),
    #[error("PostgreSQL history: no answer within {0:?}")]
    PgTimeout(Duration),
    #[error("PostgreSQL history: {0}")]
    PgConfig(String),
    #[error(
        "write refused: this agent no longer holds the leader lease ({0}); the \
         leader that took over carries on"
    )]
    Fenced(String),
    #[error(
        "a write held back for the next commit was dropped: this agent lost its \
         leader lease before it was committed"
    )]
    Discarded,
    #[error("history database holds an unreadable value: {0}")]
    Corrupt(String),
    #[error("cannot create history database {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another vbs-agent is writing the history in {}: {holder}; two writers would \
         drive the same jobs and create their backups twice. Stop it first (the \
         service: systemctl stop vbs-agent), or wait until it is done",
        dir.display()
    )]
    Locked { dir: PathBuf, holder: String },
    #[error(
        "{} is missing or empty, but {} says history {id} lived there; the agent \
         will not start an empty history in its place. Restore the database from a \
         backup (docs/how-a-job-runs.md, \"The history is damaged or gone\"); to \
         start a new, empty history on purpose, delete {}",
        path.display(),
        marker.display(),
        marker.display()
    )]
    Missing {
        path: PathBuf,
        marker: PathBuf,
        id: String,
    },
    #[error(
        "{} holds history {found}, but {} says history {expected} lived there; put \
         the right database back, or delete {} to adopt this one",
        path.display(),
        marker.display(),
        marker.display()
    )]
    Replaced {
        path: PathBuf,
        marker: PathBuf,
        expected: String,
        found: String,
    },
    #[error(
        "{} is damaged (integrity check: {detail}); the agent will not write to it. \
         Recover it as docs/how-a-job-runs.md, \"The history is damaged or gone\", shows",
        path.display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "{holder} leads this PostgreSQL history (lease epoch {epoch}), and only the leader \
         drives jobs; stop the agents first (systemctl stop vbs-agent on every host), or \
         let the leader's schedule run"
    )]
    Led { holder: String, epoch: i64 },
    #[error("{0} is not a vbs-agent history")]
    NotHistory(PathBuf),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) if db.code().code() == db::postgres::FENCED_SQLSTATE => {
                StoreError::Fenced(db.message().to_string())
            }
            _ => StoreError::Postgres(e),
        }
    }
}

/// The agent's history database.
pub struct Store {
    db: db::Db,
    /// Held by the commands that drive jobs (see [`Store::open_writer`]).
    _lock: Option<WriterLock>,
}

impl Store {
    /// Opens the history for a command that drives jobs (`role`: `run`,
    /// `trigger`, `prune`), holding the writer lock for the store's life.
    /// Refuses, before writing anything, a history another writer holds,
    /// one that is gone or empty where one lived, one that fails its
    /// integrity check, and one that is not the history that lived here.
    pub fn open_writer(path: &Path, role: &str) -> Result<Self, StoreError> {
        let lock = guard::lock(path, role)?;
        guard::refuse_lost_history(path)?;
        let mut store = Self::open_checked(path, |conn| {
            guard::refuse_damaged(conn, path)?;
            guard::refuse_foreign(conn, path)
        })?;
        guard::check_identity(&*store.sqlite()?, path)?;
        store._lock = Some(lock);
        Ok(store)
    }

    /// Opens (creating if needed) the database read-write and migrates it,
    /// without the writer lock: for tools that know they are alone.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_checked(path, |_| Ok(()))
    }

    /// [`Store::open`], running `check` on the connection before migrating.
    fn open_checked(
        path: &Path,
        check: impl FnOnce(&Connection) -> Result<(), StoreError>,
    ) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            state_dir::create(dir)?;
        }
        files::create_group_readable(path)?;
        // Setting the journal mode reads the schema: damage there shows
        // before `quick_check` can run, and is refused as damage all the same.
        let open_err = |source: rusqlite::Error| match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
                path: path.to_path_buf(),
                detail: source.to_string(),
            },
            _ => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        files::keep_wal_files(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // Jobs rewrite the same few pages many times; checkpointing every
        // WAL_CHECKPOINT_PAGES instead of SQLite's 1,000 copies each back once.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        check(&conn)?;
        migrations(MIGRATIONS.len())
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            db: db::Db::new(db::Backend::Sqlite(db::SqliteDb::new(conn))),
            _lock: None,
        })
    }

    /// Opens an existing database for reading only (audit commands), so
    /// they never take a write lock from the running daemon.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        if !is_history(&conn).map_err(open_err)? {
            return Err(StoreError::NotHistory(path.to_path_buf()));
        }
        Ok(Self {
            db: db::Db::new(db::Backend::Sqlite(db::SqliteDb::new(conn))),
            _lock: None,
        })
    }

    /// Holds events and transitions back for the next write's commit
    /// (group commit: one commit for the writes of many jobs), or stops
    /// doing so, writing what is held. The daemon turns it on and calls
    /// [`Store::flush`] every [`EVENT_DELAY`]; a job waits for its intent's
    /// commit with [`Store::durable`] before the call that changes the
    /// cloud.
    pub fn defer_events(&self, on: bool) -> Result<(), StoreError> {
        self.db.set_deferring(on)
    }

    /// Returns once the write of `ticket` is committed, committing the
    /// writes held back (those of other jobs with it) after at most
    /// [`GROUP_WINDOW`].
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.db.durable(ticket).await
    }

    /// Commits the writes held back.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()
    }

    /// Forgets the writes held back, for an agent that lost its leader
    /// lease; returns how many there were.
    pub fn discard_deferred(&self) -> usize {
        self.db.discard_deferred()
    }

    /// Which SQL the history speaks.
    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// The SQLite connection, for what only SQLite has.
    fn sqlite(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        match self.db.backend() {
            db::Backend::Sqlite(db) => Ok(db.conn()),
            db::Backend::Postgres(_) => Err(StoreError::PgConfig(
                "an SQLite-only operation on a PostgreSQL history".into(),
            )),
        }
    }
}

/// Whether `conn` holds a vbs-agent history (its `runs` and `jobs`
/// tables), so that a foreign file is named as such rather than by the
/// first query that misses a table.
fn is_history(conn: &Connection) -> Result<bool, rusqlite::Error> {
    let tables = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'jobs')",
        [],
        |r| r.get::<_, i64>(0),
    );
    match tables {
        Ok(n) => Ok(n == 2),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::Store;

    /// A migrated store in a fresh temp dir (kept alive by the returned guard).
    pub fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("history.db")).unwrap();
        (dir, store)
    }

    /// A migrated PostgreSQL store in a scratch database (dropped with the
    /// returned guard), when `VBS_PG_URL` names a server.
    pub fn pg_store() -> Option<(super::scratch::ScratchDatabase, Store)> {
        let scratch = super::scratch::ScratchDatabase::from_env()?.unwrap();
        let store = Store::open_postgres(&scratch.config).unwrap();
        Some((scratch, store))
    }
}

#[cfg(test)]
mod tests;
