//! Coverage snapshots: at a moment, every volume and server of a cloud
//! judged against every policy. Protected targets are counted; the
//! unprotected and opted-out ones are listed, so the history answers
//! "which volumes existed and were not covered on date D".

use super::db::args;
use super::{format_ts, parse_ts, Store, StoreError};
use chrono::{DateTime, Utc};

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
        self.db.tx(|tx| {
            let id: i64 = tx
                .value(
                    "INSERT INTO coverage_snapshots
                         (taken_at, cloud, volumes, servers, protected, unprotected, opted_out,
                          error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     RETURNING id",
                    args![
                        format_ts(s.taken_at),
                        &s.cloud,
                        s.volumes,
                        s.servers,
                        s.protected,
                        s.unprotected,
                        s.opted_out,
                        &s.error
                    ],
                )?
                .ok_or_else(|| StoreError::Corrupt("a snapshot inserted without an id".into()))?;
            for g in &s.gaps {
                let status = if g.opted_out.is_some() {
                    "opted_out"
                } else {
                    "unprotected"
                };
                tx.execute(
                    "INSERT INTO coverage_gaps (snapshot_id, target, kind, name, status, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT DO NOTHING",
                    args![id, &g.target, g.kind, &g.name, status, &g.opted_out],
                )?;
            }
            Ok(id)
        })
    }

    /// When the newest snapshot of any cloud was taken, so a restarted
    /// daemon keeps the interval.
    pub fn last_coverage_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<String> = self
            .db
            .value("SELECT MAX(taken_at) FROM coverage_snapshots", args![])?
            .flatten();
        at.map(|t| parse_ts(&t)).transpose()
    }

    /// The targets the newest complete snapshot of each cloud found
    /// unprotected, as (cloud, target): what a restarted daemon has
    /// already told about.
    pub fn last_unprotected(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.db.rows(
            "SELECT s.cloud, g.target FROM coverage_gaps g
               JOIN coverage_snapshots s ON s.id = g.snapshot_id
              WHERE g.status = 'unprotected'
                AND s.id = (SELECT max(id) FROM coverage_snapshots n
                             WHERE n.cloud = s.cloud AND n.error IS NULL)
              ORDER BY s.cloud, g.target",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}
