//! Backup calls (VBS/Cinder `/{v}/{project}/backups`): create, read, find
//! by name, list per volume or by the vendor's filters, delete.

use reqwest::Method;
use serde_json::{json, Value};

use super::request::Service;
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::{Backup, BackupSummary};

/// What to back up.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub volume_id: &'a str,
    pub snapshot_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub force: bool,
    /// Ask for an incremental backup (Cinder refuses it without an earlier
    /// available backup; VBS decides by itself and ignores it).
    pub incremental: bool,
}

impl CloudClient {
    /// `POST /v3/{project}/backups` with both volume and snapshot.
    pub async fn create_backup(&self, b: &NewBackup<'_>) -> Result<BackupSummary, ApiError> {
        let mut backup = json!({
            "volume_id": b.volume_id, "snapshot_id": b.snapshot_id, "name": b.name,
            "description": b.description, "force": b.force});
        if b.incremental {
            backup["incremental"] = Value::Bool(true);
        }
        let url = self.url(Service::Backup, "v3", "backups");
        self.call(
            Method::POST,
            url,
            Some(json!({ "backup": backup })),
            decode::backup_created,
        )
        .await
    }

    /// `GET /v3/{project}/backups/{id}`.
    pub async fn backup(&self, id: &str) -> Result<Backup, ApiError> {
        let url = self.url(Service::Backup, "v3", &format!("backups/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("backup", id, decode::backup(body))
        })
        .await
    }

    /// `DELETE /v3/{project}/backups/{id}` (202; the backup goes `deleting`,
    /// then disappears).
    pub async fn delete_backup(&self, id: &str) -> Result<(), ApiError> {
        let url = self.url(Service::Backup, "v3", &format!("backups/{id}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Every backup of `volume_id` with its details
    /// (`GET /v2/{project}/backups/detail?volume_id=…`), across all pages.
    pub async fn backups_of_volume(&self, volume_id: &str) -> Result<Vec<Backup>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups/detail");
        self.list_all(url, &[("volume_id", volume_id)], decode::backups)
            .await
    }

    /// Backups of `volume_id` named exactly `name`, from the summary list
    /// (`GET /v2/{project}/backups?name=…&volume_id=…`), across all pages.
    pub async fn find_backups(
        &self,
        name: &str,
        volume_id: &str,
    ) -> Result<Vec<BackupSummary>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups");
        self.list_matching(
            url,
            &[("name", name), ("volume_id", volume_id)],
            decode::backup_summaries,
            |b| b.name.as_deref() == Some(name),
        )
        .await
    }

    /// The backup summary list (`GET /v2/{project}/backups`) with the
    /// vendor's filters (`name`, `status`, `volume_id`, as the cloud matches
    /// them), following `backups_links` across every page; at most `max`
    /// backups when given.
    pub async fn backup_summaries(
        &self,
        filters: &[(&str, &str)],
        max: Option<usize>,
    ) -> Result<Vec<BackupSummary>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups");
        self.list_up_to(url, filters, max, decode::backup_summaries)
            .await
    }
}
