//! Opening a PostgreSQL history: connect, then bring the schema to the
//! agent's, under an advisory lock so that two agents starting together
//! migrate once.
//!
//! PostgreSQL histories start at migration 14, the schema every SQLite
//! history had by then (`migrations/postgres/0014_baseline.sql`); each later
//! migration comes as a pair, one file per dialect, with the same number.

use super::db::{args, Backend, Db, PgConfig, PgDb};
use super::{Store, StoreError, MIGRATIONS};

/// The PostgreSQL migrations by the number of the SQLite one they match.
const PG_MIGRATIONS: &[(i64, &str)] = &[
    (
        14,
        include_str!("../../migrations/postgres/0014_baseline.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_leader_lease.sql"),
    ),
    (
        16,
        include_str!("../../migrations/postgres/0016_backup_service.sql"),
    ),
    (
        17,
        include_str!("../../migrations/postgres/0017_lookup_indexes.sql"),
    ),
];

/// The advisory lock migrations hold (any number the agent alone uses).
const MIGRATION_LOCK: i64 = 0x0076_6273_5f6d_6967;

impl Store {
    /// Connects to a PostgreSQL history and migrates it. Writes carry no
    /// epoch until [`Store::set_epoch`] says the leader's.
    pub fn open_postgres(pg: &PgConfig) -> Result<Self, StoreError> {
        let db = PgDb::connect(pg, super::db::postgres::STATEMENT_DEADLINE)?;
        migrate(&db)?;
        Ok(Self {
            db: Db::new(Backend::Postgres(Box::new(db))),
            _lock: None,
        })
    }

    /// The lease epoch this store's writes carry from now on (PostgreSQL;
    /// SQLite's single writer has none).
    pub fn set_epoch(&self, epoch: i64) {
        if let Backend::Postgres(db) = self.db.backend() {
            db.set_epoch(epoch);
        }
    }

    /// `user@host:port/dbname` of a PostgreSQL history, for messages.
    pub fn describe_postgres(&self) -> Option<&str> {
        match self.db.backend() {
            Backend::Postgres(db) => Some(db.describe()),
            Backend::Sqlite(_) => None,
        }
    }
}

fn migrate(db: &PgDb) -> Result<(), StoreError> {
    db.tx(|tx| {
        tx.execute("SELECT pg_advisory_xact_lock(?1)", args![MIGRATION_LOCK])?;
        tx.batch("CREATE TABLE IF NOT EXISTS vbs_schema_version (version BIGINT NOT NULL)")?;
        let at: i64 = tx
            .value(
                "SELECT COALESCE(max(version), 0) FROM vbs_schema_version",
                args![],
            )?
            .unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if at > known {
            return Err(StoreError::PgConfig(format!(
                "the history's schema is version {at}, newer than this agent's {known}: \
                 a newer vbs-agent wrote it; upgrade this one"
            )));
        }
        for (version, sql) in PG_MIGRATIONS.iter().filter(|(v, _)| *v > at) {
            tx.batch(sql)?;
            tx.execute(
                "INSERT INTO vbs_schema_version (version) VALUES (?1)",
                args![*version],
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sqlite_migration_from_the_baseline_on_has_its_postgresql_twin() {
        let numbers: Vec<i64> = PG_MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let expected: Vec<i64> = (14..=MIGRATIONS.len() as i64).collect();
        assert_eq!(numbers, expected);
    }
}
