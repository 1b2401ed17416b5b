//! The SQLite backend: one connection behind a mutex. Writes are small and
//! the agent is the only writer; readers (`vbs-agent history`, `sqlite3`)
//! use their own connections, which WAL mode lets run while it writes.

use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{Dialect, Row, Sql, Value};
use crate::store::StoreError;

/// An open SQLite history.
pub struct SqliteDb {
    conn: Mutex<Connection>,
}

/// Statements kept prepared: every statement of a job's hot path, so that
/// none is parsed again (rusqlite's default keeps 16).
const STATEMENT_CACHE: usize = 128;

impl SqliteDb {
    pub fn new(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Self {
            conn: Mutex::new(conn),
        }
    }

    /// The connection, for what only SQLite has (pragmas, integrity checks).
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (statements are atomic), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn();
        f(&mut On(&conn))
    }

    /// Runs `f` in one transaction. `BEGIN` and `COMMIT` are cached
    /// statements: parsing them anew for every transaction (as rusqlite's
    /// `Transaction` does) cost a job more than its `UPDATE`s.
    pub fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn();
        let open = Open::begin(&conn)?;
        let out = f(&mut On(&conn))?;
        open.commit()?;
        Ok(out)
    }
}

/// A transaction under way, rolled back unless committed (also when the
/// code in it fails or panics).
struct Open<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> Open<'c> {
    fn begin(conn: &'c Connection) -> Result<Self, StoreError> {
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(Self { conn, done: false })
    }

    fn commit(mut self) -> Result<(), StoreError> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.done || self.conn.is_autocommit() {
            return;
        }
        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "cannot roll back a failed history transaction");
        }
    }
}

/// Statements on a borrowed connection (or transaction).
struct On<'c>(&'c Connection);

impl Sql for On<'_> {
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let n = self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(read(row.get_ref(i)?)?);
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn columns(&mut self, sql: &str) -> Result<Vec<String>, StoreError> {
        let stmt = self.0.prepare_cached(sql)?;
        Ok(stmt.column_names().into_iter().map(String::from).collect())
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
}

fn read(v: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| StoreError::Corrupt(format!("text that is not UTF-8: {e}")))?
                .to_string(),
        ),
        ValueRef::Blob(_) => {
            return Err(StoreError::Corrupt(
                "a blob where the history keeps none".into(),
            ))
        }
    })
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(r) => ToSqlOutput::Borrowed(ValueRef::Real(*r)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}
