//! `retention_actions`, and what retention needs to know from the history:
//! which backups this policy made.

use std::collections::HashSet;

use super::db::args;
use super::{format_ts, Store, StoreError};
use crate::bounded;
use chrono::{DateTime, Utc};

/// One retention action, as recorded.
#[derive(Debug, Clone)]
pub struct RetentionAction<'a> {
    pub policy: &'a str,
    pub target: &'a str,
    pub backup_id: &'a str,
    pub backup_name: Option<&'a str>,
    pub created_at: Option<DateTime<Utc>>,
    /// `deleted`, `blocked_by_dependants` or `delete_failed`.
    pub action: &'a str,
    pub reason: &'a str,
}

/// The backups jobs of policy `?1` on target `?2` made, in any attempt.
const BACKUPS_MADE_BY: &str =
    "SELECT backup_id FROM jobs WHERE policy = ?1 AND target = ?2 AND backup_id IS NOT NULL
     UNION
     SELECT a.backup_id FROM job_attempts a JOIN jobs j ON j.id = a.job_id
     WHERE j.policy = ?1 AND j.target = ?2 AND a.backup_id IS NOT NULL";

/// The backups CBR made for jobs of policy `?1` on target `?2`.
const CBR_BACKUPS_MADE_BY: &str = "SELECT backup_id FROM jobs
     WHERE policy = ?1 AND target = ?2 AND service = 'cbr' AND backup_id IS NOT NULL
     UNION
     SELECT a.backup_id FROM job_attempts a JOIN jobs j ON j.id = a.job_id
     WHERE j.policy = ?1 AND j.target = ?2 AND j.service = 'cbr' AND a.backup_id IS NOT NULL";

/// The snapshots jobs of snapshot policy `?1` on target `?2` made, in any
/// attempt (a backup policy's snapshots are temporary, never kept).
const SNAPSHOTS_MADE_BY: &str = "SELECT snapshot_id FROM jobs
     WHERE policy = ?1 AND target = ?2 AND kind = 'snapshot' AND snapshot_id IS NOT NULL
     UNION
     SELECT a.snapshot_id FROM job_attempts a JOIN jobs j ON j.id = a.job_id
     WHERE j.policy = ?1 AND j.target = ?2 AND j.kind = 'snapshot' AND a.snapshot_id IS NOT NULL";

impl Store {
    /// Every backup id the history records for `policy` on `target`,
    /// earlier attempts included.
    pub fn backups_made_by(
        &self,
        policy: &str,
        target: &str,
    ) -> Result<HashSet<String>, StoreError> {
        self.ids_made_by(policy, target, BACKUPS_MADE_BY)
    }

    /// The backups of [`Self::backups_made_by`] that CBR made.
    pub fn cbr_backups_made_by(
        &self,
        policy: &str,
        target: &str,
    ) -> Result<HashSet<String>, StoreError> {
        self.ids_made_by(policy, target, CBR_BACKUPS_MADE_BY)
    }

    /// Every snapshot id the history records for a snapshot `policy` on
    /// `target`, earlier attempts included.
    pub fn snapshots_made_by(
        &self,
        policy: &str,
        target: &str,
    ) -> Result<HashSet<String>, StoreError> {
        self.ids_made_by(policy, target, SNAPSHOTS_MADE_BY)
    }

    /// Whether something `policy` made for `target` (backup, snapshot or
    /// server backup) has not been deleted by retention yet: whether a
    /// target that vanished still has anything to prune.
    pub fn has_undeleted(&self, policy: &str, target: &str) -> Result<bool, StoreError> {
        let mut made = self.backups_made_by(policy, target)?;
        made.extend(self.snapshots_made_by(policy, target)?);
        if made.is_empty() {
            return Ok(false);
        }
        let deleted = self.db.rows(
            "SELECT backup_id FROM retention_actions
              WHERE policy = ?1 AND target = ?2 AND action = 'deleted'",
            args![policy, target],
            |r| r.get::<String>(0),
        )?;
        for id in deleted {
            made.remove(&id);
        }
        Ok(!made.is_empty())
    }

    /// The ids `sql` selects for `policy` (`?1`) on `target` (`?2`).
    fn ids_made_by(
        &self,
        policy: &str,
        target: &str,
        sql: &str,
    ) -> Result<HashSet<String>, StoreError> {
        let ids = self
            .db
            .rows(sql, args![policy, target], |r| r.get::<String>(0))?;
        Ok(ids.into_iter().collect())
    }

    /// Records the outcome of sharing a job's backup with one project.
    pub fn record_share(
        &self,
        job_id: i64,
        backup_id: &str,
        to_project: &str,
        share_id: Option<&str>,
        message: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let status = if share_id.is_some() {
            "shared"
        } else {
            "failed"
        };
        self.db.execute(
            "INSERT INTO backup_shares (at, job_id, backup_id, to_project_id, share_id, status, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                format_ts(at),
                job_id,
                backup_id,
                to_project,
                share_id,
                status,
                message.map(bounded::message)
            ],
        )?;
        Ok(())
    }

    /// Appends a retention action.
    pub fn record_retention(
        &self,
        a: &RetentionAction<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT INTO retention_actions (at, policy, target, backup_id, backup_name, created_at,
                                            action, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                format_ts(at),
                a.policy,
                a.target,
                a.backup_id,
                a.backup_name,
                a.created_at.map(format_ts),
                a.action,
                bounded::message(a.reason)
            ],
        )?;
        Ok(())
    }
}
