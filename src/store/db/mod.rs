//! The history's two backends behind one interface: SQLite, embedded and
//! the default, and PostgreSQL, shared by the agents of an HA pair. The
//! store's queries are written once, with `?1`-style parameters, in the SQL
//! both understand; [`Dialect`] supplies the few phrases they spell
//! differently.

mod pg_types;
mod placeholders;
pub(crate) mod postgres;
mod sqlite;
mod value;

pub(crate) use value::{arg_vec, args};
pub use value::{FromValue, Row, Value};

pub use postgres::{PgConfig, PgDb};
pub(crate) use sqlite::SqliteDb;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::StoreError;

/// Which SQL a backend speaks, for the phrases that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// SQLite's `round(x)`, half away from zero (PostgreSQL's rounds a real
    /// half to even; the baseline defines SQLite's). Time arithmetic needs
    /// no such care: the baseline's `julianday()` is SQLite's.
    pub fn round(self) -> &'static str {
        match self {
            Dialect::Sqlite => "round",
            Dialect::Postgres => "round_half_away",
        }
    }

    /// A query listing the user's tables and views named in `names`
    /// (an SQL list of quoted names) by `name`.
    pub fn tables_named(self, names: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("SELECT name FROM sqlite_master WHERE name IN ({names})")
            }
            Dialect::Postgres => format!(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name IN ({names})"
            ),
        }
    }
}

/// Statements on one connection, in or outside a transaction.
pub trait Sql {
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError>;
    /// Runs a query; returns all its rows.
    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError>;
    /// Runs statements separated by `;`, without parameters (a migration).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// The names of a query's columns, in order.
    fn columns(&mut self, sql: &str) -> Result<Vec<String>, StoreError>;
    /// Which SQL this connection speaks.
    fn dialect(&self) -> Dialect;

    /// The first row of a query, if any.
    fn query_opt(&mut self, sql: &str, args: &[Value]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, args)?.into_iter().next())
    }
}

/// A write: a statement and its arguments, to be made now or held back.
pub type Write = (&'static str, Vec<Value>);

impl dyn Sql + '_ {
    /// Makes each write, in order.
    pub fn execute_all(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        for (sql, args) in writes {
            self.execute(sql, args)?;
        }
        Ok(())
    }

    /// [`Sql::query_value`] for a connection behind `dyn`.
    pub fn value<T: FromValue>(
        &mut self,
        sql: &str,
        args: &[Value],
    ) -> Result<Option<T>, StoreError> {
        self.query_opt(sql, args)?.map(|r| r.get(0)).transpose()
    }

    /// Every row mapped by `f`.
    pub fn rows<T>(
        &mut self,
        sql: &str,
        args: &[Value],
        f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.query(sql, args)?.iter().map(f).collect()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "events held back for the next commit could not be written");
        }
    }
}

/// The backend a history database is on.
pub enum Backend {
    Sqlite(SqliteDb),
    Postgres(Box<PgDb>),
}

/// Writes held back for the next commit, at most this many (a few hundred
/// KiB). Each commit writes every page it changed to the WAL again, so
/// fewer, larger commits write fewer pages per job: 1,024 instead of 256
/// measured 3 to 10 % less agent CPU in a fleet of 3,000 jobs.
const MAX_DEFERRED: usize = 1024;

/// How long a caller of [`Db::durable`] lets other callers' writes gather
/// before it commits them all with its own: the price of one commit for
/// many jobs' intents is this much delay before each call that changes the
/// cloud.
pub const GROUP_WINDOW: Duration = Duration::from_millis(20);

/// Proof of a write held back: [`Db::durable`] returns once it is committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(u64);

/// The writes held back, and the tickets given for them so far.
#[derive(Default)]
struct Held {
    /// Statements and their arguments, in the order they were deferred.
    writes: Vec<Write>,
    /// The last ticket given.
    issued: u64,
}

/// A history database on one of the backends, with the writes held back
/// for the next commit (see [`Db::defer`]).
pub struct Db {
    backend: Backend,
    held: Mutex<Held>,
    /// Whether [`Db::defer`] holds writes back at all.
    deferring: AtomicBool,
    /// Held for a transaction, from taking the writes held back to knowing
    /// whether they were committed, so that [`Db::committed`] never counts a
    /// write another transaction failed to commit.
    committing: Mutex<()>,
    /// The last ticket whose write is committed (with all before it).
    committed: AtomicU64,
}

impl Db {
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            held: Mutex::new(Held::default()),
            deferring: AtomicBool::new(false),
            committing: Mutex::new(()),
            committed: AtomicU64::new(0),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Lets [`Db::defer`] hold writes back until the next commit (or
    /// [`Db::flush`]): group commit, one commit for the writes of many
    /// callers.
    pub fn set_deferring(&self, on: bool) -> Result<(), StoreError> {
        self.deferring.store(on, Ordering::SeqCst);
        if on {
            Ok(())
        } else {
            self.flush()
        }
    }

    /// Writes each statement with its arguments in one transaction now,
    /// or, while deferring, with the next statement of any caller, in that
    /// caller's transaction and ahead of it: a write deferred is never
    /// overtaken by a later one, nor committed apart from its fellows.
    /// The ticket tells [`Db::durable`] which commit to wait for.
    pub fn defer(&self, writes: Vec<Write>) -> Result<Ticket, StoreError> {
        if !self.deferring.load(Ordering::SeqCst) {
            self.tx(|c| c.execute_all(&writes))?;
            return Ok(Ticket::default());
        }
        let (ticket, full) = {
            let mut held = self.held();
            held.writes.extend(writes);
            held.issued += 1;
            (Ticket(held.issued), held.writes.len() >= MAX_DEFERRED)
        };
        if full {
            self.flush()?;
        }
        Ok(ticket)
    }

    /// Returns once the write `ticket` stands for is committed: after
    /// [`GROUP_WINDOW`], in which other callers' writes gather, it commits
    /// whatever is held back unless another caller did. Fails when the
    /// commit fails, or when the write was discarded (see
    /// [`Db::discard_deferred`]).
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        if self.is_committed(ticket) {
            return Ok(());
        }
        tokio::time::sleep(GROUP_WINDOW).await;
        // Under the lock, a transaction that took the write has ended.
        let one = self.one_at_a_time();
        if self.is_committed(ticket) {
            return Ok(());
        }
        if self.held().writes.is_empty() {
            return Err(StoreError::Discarded);
        }
        self.tx_alone(&one, |_| Ok(()))
    }

    fn one_at_a_time(&self) -> MutexGuard<'_, ()> {
        self.committing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_committed(&self, ticket: Ticket) -> bool {
        ticket.0 <= self.committed.load(Ordering::SeqCst)
    }

    /// Commits the writes held back, if any.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.held().writes.is_empty() {
            return Ok(());
        }
        self.tx(|_| Ok(()))
    }

    /// Forgets the writes held back: an agent that lost its leader lease
    /// may not make them (the next leader continues from what was
    /// committed). Returns how many there were.
    pub fn discard_deferred(&self) -> usize {
        std::mem::take(&mut self.held().writes).len()
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection, each statement committed on its own
    /// (in one transaction with the writes held back, if there are any).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.held().writes.is_empty() {
            return self.tx(f);
        }
        self.with_committed(f)
    }

    /// Runs `f` on the connection without the writes held back: for reads
    /// of what earlier jobs left, which need no write of this moment and
    /// should not cost a commit.
    pub fn with_committed<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.backend {
            Backend::Sqlite(db) => db.with(f),
            Backend::Postgres(db) => db.with(f),
        }
    }

    /// Runs `f` in one transaction, after the writes held back: committed
    /// when it returns `Ok`, rolled back when it fails (the writes held
    /// back are then held again, for the next commit).
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.tx_alone(&self.one_at_a_time(), f)
    }

    /// [`Db::tx`] for a caller holding [`Db::committing`].
    fn tx_alone<T>(
        &self,
        _one: &MutexGuard<'_, ()>,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (taken, upto) = {
            let mut held = self.held();
            (std::mem::take(&mut held.writes), held.issued)
        };
        let body = |c: &mut dyn Sql| {
            c.execute_all(&taken)?;
            f(c)
        };
        let out = match &self.backend {
            Backend::Sqlite(db) => db.tx(body),
            Backend::Postgres(db) => db.tx(body),
        };
        match &out {
            Ok(_) => {
                self.committed.fetch_max(upto, Ordering::SeqCst);
            }
            Err(_) => self.put_back(taken),
        }
        out
    }

    /// Puts writes back, ahead of any held since, after the transaction
    /// that held them failed.
    fn put_back(&self, mut taken: Vec<Write>) {
        if taken.is_empty() {
            return;
        }
        let mut held = self.held();
        taken.append(&mut held.writes);
        held.writes = taken;
    }

    /// Which SQL the backend speaks.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }
    /// One statement, committed.
    pub fn execute(&self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        self.with(|c| c.execute(sql, args))
    }

    /// All rows of a query.
    pub fn query(&self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.with(|c| c.query(sql, args))
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, args: &[Value]) -> Result<Option<Row>, StoreError> {
        self.with(|c| c.query_opt(sql, args))
    }

    /// The first column of the first row, if there is a row.
    pub fn value<T: FromValue>(&self, sql: &str, args: &[Value]) -> Result<Option<T>, StoreError> {
        self.with(|c| c.value(sql, args))
    }

    /// Every row of a query mapped by `f`.
    pub fn rows<T>(
        &self,
        sql: &str,
        args: &[Value],
        f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.with(|c| c.rows(sql, args, f))
    }
}
