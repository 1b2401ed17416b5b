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

pub(crate) use value::args;
pub use value::{FromValue, Row, Value};

pub use postgres::{PgConfig, PgDb};
pub(crate) use sqlite::SqliteDb;

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

impl dyn Sql + '_ {
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

/// A history database on one of the backends.
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(Box<PgDb>),
}

impl Db {
    /// Runs `f` on the connection, each statement committed on its own.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Db::Sqlite(db) => db.with(f),
            Db::Postgres(db) => db.with(f),
        }
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`, rolled
    /// back when it fails.
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Db::Sqlite(db) => db.tx(f),
            Db::Postgres(db) => db.tx(f),
        }
    }

    /// Which SQL the backend speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
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
