//! Coverage snapshots: at a moment, every volume and server of a cloud
//! judged against every policy. Protected targets are counted; the
//! unprotected and opted-out ones are listed, so the history answers
//! "which volumes existed and were not covered on date D".

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{format_ts, parse_ts, Store, StoreError};

/// One cloud's coverage at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageSnapshot {
    pub taken_at: DateTime<Utc>,
    pub cloud: String,
    pub volumes: u64,
    /// `None`: the cloud has no compute endpoint to list servers from.
    pub servers: Option<u64>,
    pub protected: u64,
    pub unprotected: u64,
    pub opted_out: u64,
    /// Why the listing failed; the counts then mean nothing.
    pub error: Option<String>,
    pub gaps: Vec<CoverageGap>,
}

/// A target no policy covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageGap {
    pub target: String,
    /// `volume` or `server`.
    pub kind: &'static str,
    pub name: Option<String>,
    /// `None`: unprotected; `Some`: opted out, with why.
    pub opted_out: Option<String>,
}

impl Store {
    /// Records one snapshot with its gaps, in one transaction.
    pub fn record_coverage(&self, s: &CoverageSnapshot) -> Result<i64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO coverage_snapshots
                 (taken_at, cloud, volumes, servers, protected, unprotected, opted_out, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                format_ts(s.taken_at),
                s.cloud,
                count(s.volumes),
                s.servers.map(count),
                count(s.protected),
                count(s.unprotected),
                count(s.opted_out),
                s.error
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO coverage_gaps (snapshot_id, target, kind, name, status, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for g in &s.gaps {
                let status = if g.opted_out.is_some() {
                    "opted_out"
                } else {
                    "unprotected"
                };
                stmt.execute(params![id, g.target, g.kind, g.name, status, g.opted_out])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    /// When the newest snapshot of any cloud was taken, so a restarted
    /// daemon keeps the interval.
    pub fn last_coverage_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<String> = self
            .conn()
            .query_row("SELECT MAX(taken_at) FROM coverage_snapshots", [], |r| {
                r.get(0)
            })
            .optional()?
            .flatten();
        at.map(|t| parse_ts(&t)).transpose()
    }

    /// The targets the newest complete snapshot of each cloud found
    /// unprotected, as (cloud, target): what a restarted daemon has
    /// already told about.
    pub fn last_unprotected(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT s.cloud, g.target FROM coverage_gaps g
               JOIN coverage_snapshots s ON s.id = g.snapshot_id
              WHERE g.status = 'unprotected'
                AND s.id = (SELECT max(id) FROM coverage_snapshots n
                             WHERE n.cloud = s.cloud AND n.error IS NULL)",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// SQLite integers are signed.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
