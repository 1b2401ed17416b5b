//! What server (CSBS) jobs record besides the common job columns: the
//! checkpoint id, the last progress, the failure code and the per-volume
//! backups of each server backup.

use super::db::args;
use super::{format_ts, Store, StoreError};
use chrono::{DateTime, Utc};

/// One volume's backup inside a server backup.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerVolumeBackup {
    pub volume_backup_id: Option<String>,
    pub source_volume_id: Option<String>,
    pub source_volume_name: Option<String>,
    pub status: Option<String>,
    pub size_mb: Option<f64>,
    pub incremental: Option<bool>,
    pub bootable: Option<bool>,
}

/// A server job's CSBS columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerColumns {
    pub checkpoint_id: Option<String>,
    pub progress: Option<f64>,
    pub fail_code: Option<String>,
}

impl Store {
    /// Records the checkpoint a protect call started (or that was adopted).
    pub fn set_checkpoint(
        &self,
        job_id: i64,
        checkpoint_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET checkpoint_id = ?2, progress = NULL, fail_code = NULL, updated_at = ?3
             WHERE id = ?1",
            args![job_id, checkpoint_id, format_ts(now)],
        )?;
        Ok(())
    }

    /// Records the CBR checkpoint (a run) and vault a job's backup is in.
    pub fn set_cbr_ids(
        &self,
        job_id: i64,
        checkpoint_id: &str,
        vault_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET checkpoint_id = ?2, vault_id = ?3, updated_at = ?4 WHERE id = ?1",
            args![job_id, checkpoint_id, vault_id, format_ts(now)],
        )?;
        Ok(())
    }

    /// Records the latest `extend_info.progress`.
    pub fn set_progress(
        &self,
        job_id: i64,
        progress: f64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1",
            args![job_id, progress, format_ts(now)],
        )?;
        Ok(())
    }

    /// Records the outcome details of a server backup: its failure code and
    /// its volumes' backups (replacing what an earlier look recorded).
    pub fn record_server_result(
        &self,
        job_id: i64,
        item_id: &str,
        fail_code: Option<&str>,
        volumes: &[ServerVolumeBackup],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE jobs SET fail_code = ?2, updated_at = ?3 WHERE id = ?1",
                args![job_id, fail_code, format_ts(now)],
            )?;
            tx.execute(
                "DELETE FROM server_volume_backups WHERE job_id = ?1 AND checkpoint_item_id = ?2",
                args![job_id, item_id],
            )?;
            for v in volumes {
                tx.execute(
                    "INSERT INTO server_volume_backups (at, job_id, checkpoint_item_id,
                         volume_backup_id, source_volume_id, source_volume_name, status, size_mb,
                         incremental, bootable)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    args![
                        format_ts(now),
                        job_id,
                        item_id,
                        &v.volume_backup_id,
                        &v.source_volume_id,
                        &v.source_volume_name,
                        &v.status,
                        v.size_mb,
                        v.incremental,
                        v.bootable
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// A job's CSBS columns.
    pub fn server_columns(&self, job_id: i64) -> Result<ServerColumns, StoreError> {
        self.db
            .query_opt(
                "SELECT checkpoint_id, progress, fail_code FROM jobs WHERE id = ?1",
                args![job_id],
            )?
            .map_or(Ok(ServerColumns::default()), |r| {
                Ok(ServerColumns {
                    checkpoint_id: r.get(0)?,
                    progress: r.get(1)?,
                    fail_code: r.get(2)?,
                })
            })
    }

    /// The volume backups recorded for a job's server backup.
    pub fn server_volume_backups(
        &self,
        job_id: i64,
    ) -> Result<Vec<ServerVolumeBackup>, StoreError> {
        self.db.rows(
            "SELECT volume_backup_id, source_volume_id, source_volume_name, status, size_mb,
                    incremental, bootable
             FROM server_volume_backups WHERE job_id = ?1 ORDER BY id",
            args![job_id],
            |r| {
                Ok(ServerVolumeBackup {
                    volume_backup_id: r.get(0)?,
                    source_volume_id: r.get(1)?,
                    source_volume_name: r.get(2)?,
                    status: r.get(3)?,
                    size_mb: r.get(4)?,
                    incremental: r.get(5)?,
                    bootable: r.get(6)?,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::test_support::temp_store;
    use crate::store::{JobStatus, NewRunJob, Trigger};

    #[test]
    fn server_columns_and_volume_backups_round_trip() {
        let (_dir, store) = temp_store();
        let now = Utc::now();
        let spec = NewRunJob {
            target: "f8ddc472-cf00-4384-851e-5f2a68c33762",
            kind: "server",
            cloud: "c",
            resource_name: "p-x-f8ddc472",
            status: JobStatus::Running,
            blocked_by: None,
            note: None,
            restore: None,
            service: None,
        };
        let run = store
            .create_run("p", now, Trigger::Manual, &[spec], None, now)
            .unwrap()
            .unwrap();
        let job = store.jobs_of_run(run).unwrap()[0].id;
        store.set_checkpoint(job, "cp-1", now).unwrap();
        store.set_progress(job, 29.9, now).unwrap();
        let vol = ServerVolumeBackup {
            volume_backup_id: Some("vb-1".into()),
            source_volume_id: Some("v-1".into()),
            source_volume_name: Some("root".into()),
            status: Some("available".into()),
            size_mb: Some(47960.0),
            incremental: Some(false),
            bootable: Some(true),
        };
        // A second look replaces, it does not duplicate.
        for _look in 0..2 {
            store
                .record_server_result(
                    job,
                    "item-1",
                    Some("1234: disk gone"),
                    std::slice::from_ref(&vol),
                    now,
                )
                .unwrap();
        }
        assert_eq!(
            store.server_columns(job).unwrap(),
            ServerColumns {
                checkpoint_id: Some("cp-1".into()),
                progress: Some(29.9),
                fail_code: Some("1234: disk gone".into()),
            }
        );
        assert_eq!(store.server_volume_backups(job).unwrap(), [vol]);
    }
}
