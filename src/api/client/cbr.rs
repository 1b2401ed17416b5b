//! CBR calls: find a vault and bind disks to it, run a backup of its disks
//! (a checkpoint), find the backups a run made and read one, delete one,
//! and read the operation logs that explain a failure. Paths are under
//! `endpoints.cbr` (or the catalog's `cbr` service), `/v3/{project}`.

use reqwest::Method;
use serde_json::{json, Value};

use super::request::{with_query, Service, MAX_PAGES, PAGE_SIZE};
use super::CloudClient;
use crate::api::decode::{self, CountedPage, DecodeError};
use crate::api::error::ApiError;
use crate::api::types::{
    CbrBackup, CbrBackupRecord, CbrCheckpoint, Job, Member, OperationLog, Vault,
};
use crate::config::BackupService;

/// The resource type of a server in CBR's requests and answers.
pub const SERVER: &str = "OS::Nova::Server";

/// The resource type of a disk in CBR's requests and answers.
pub const DISK: &str = "OS::Cinder::Volume";

/// A backup run of some of a vault's resources.
#[derive(Debug, Clone)]
pub struct NewCheckpoint<'a> {
    pub vault_id: &'a str,
    /// The resources to back up: `(id, type)`; at most 256.
    pub resources: &'a [(&'a str, &'a str)],
    /// 1–64 of `[A-Za-z0-9_-]`: the name every backup of the run gets.
    pub name: &'a str,
    pub description: &'a str,
    /// `false` asks for full backups.
    pub incremental: bool,
}

impl NewCheckpoint<'_> {
    /// The request body. `auto_trigger: false` marks the backups as made on
    /// request, not by a vault policy.
    pub fn body(&self) -> Value {
        let details: Vec<Value> = self
            .resources
            .iter()
            .map(|(id, kind)| json!({"id": id, "type": kind}))
            .collect();
        json!({"checkpoint": {
            "vault_id": self.vault_id,
            "parameters": {
                "resource_details": details,
                "name": self.name,
                "description": self.description,
                "incremental": self.incremental,
                "auto_trigger": false,
            }
        }})
    }
}

/// A new disk from a CBR backup (EVS `cloudvolumes`): the only way to
/// restore one anywhere but onto its own disk, and so how a drill tests it.
#[derive(Debug, Clone)]
pub struct NewDiskFromBackup<'a> {
    pub backup_id: &'a str,
    /// The backup's `resource_az`: EVS refuses another (EVS.1049).
    pub availability_zone: &'a str,
    /// At least the backup's `resource_size` (EVS.1022).
    pub size_gb: u64,
    pub volume_type: &'a str,
    pub name: &'a str,
    pub description: &'a str,
}

impl NewDiskFromBackup<'_> {
    /// The request body; EVS makes one disk from a backup at a time.
    pub fn body(&self) -> Value {
        json!({"volume": {
            "backup_id": self.backup_id, "availability_zone": self.availability_zone,
            "size": self.size_gb, "volume_type": self.volume_type, "name": self.name,
            "description": self.description, "count": 1}})
    }
}

impl CloudClient {
    fn cbr_url(&self, tail: &str) -> String {
        self.url(Service::Cbr, "v3", tail)
    }

    /// Every item of a CBR list matching `filters`: pages of
    /// [`PAGE_SIZE`] by `offset` (sent from the second page on) until the
    /// reported `count` is reached or a page comes back empty.
    async fn cbr_list<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        decode: fn(&str) -> Result<CountedPage<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        let limit = PAGE_SIZE.to_string();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let offset = items.len().to_string();
            let mut query = filters.to_vec();
            query.push(("limit", &limit));
            if !items.is_empty() {
                query.push(("offset", &offset));
            }
            let page = self
                .call(Method::GET, with_query(&url, &query), None, decode)
                .await?;
            let more = page.more_after(items.len() as u64);
            items.extend(page.items);
            if !more {
                break;
            }
        }
        Ok(items)
    }

    /// Whether this cloud's volume backups go through CBR: as configured,
    /// or for `auto` whether the service catalog lists `cbr` but not `vbs`
    /// (authenticating first, to have the catalog).
    pub async fn backs_up_on_cbr(&self) -> Result<bool, ApiError> {
        Ok(match self.inner.backup_service {
            BackupService::Vbs => false,
            BackupService::Cbr => true,
            BackupService::Auto => {
                self.inner
                    .tokens
                    .token(&self.inner.http, self.observer.as_ref())
                    .await?;
                let catalog = self.inner.tokens.catalog().await;
                catalog.offers("cbr") && !catalog.offers("vbs")
            }
        })
    }

    /// The vault `name_or_id` names: the vault of that ID, else the one
    /// vault of `object_type` (`disk` or `server`) of that name. `None`
    /// when there is none; an error when several share the name.
    pub async fn vault_named(
        &self,
        name_or_id: &str,
        object_type: &str,
    ) -> Result<Option<Vault>, ApiError> {
        if uuid::Uuid::try_parse(name_or_id).is_ok() {
            match self.vault(name_or_id).await {
                Ok(v) => return Ok(Some(v)),
                Err(e) if e.status == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        let mut found = self
            .vaults(&[("name", name_or_id), ("object_type", object_type)])
            .await?
            .into_iter()
            .filter(|v| v.name.as_deref() == Some(name_or_id));
        match (found.next(), found.next()) {
            (Some(_), Some(_)) => Err(ApiError::unsendable(
                format!("find CBR vault {name_or_id}"),
                format!(
                    "several disk vaults are named `{name_or_id}`; give the vault's ID instead"
                ),
            )),
            (one, None) => Ok(one),
            (None, Some(_)) => Ok(None),
        }
    }

    /// Vaults matching `filters` (`name`, `object_type`, `resource_ids`, …),
    /// every page (`GET /v3/{project}/vaults`).
    pub async fn vaults(&self, filters: &[(&str, &str)]) -> Result<Vec<Vault>, ApiError> {
        self.cbr_list(self.cbr_url("vaults"), filters, decode::vaults)
            .await
    }

    /// `GET /v3/{project}/vaults/{id}`.
    pub async fn vault(&self, id: &str) -> Result<Vault, ApiError> {
        let url = self.cbr_url(&format!("vaults/{id}"));
        self.call(Method::GET, url, None, decode::vault).await
    }

    /// Binds resources of `resource_type` ([`DISK`] or [`SERVER`]) to a
    /// vault (`POST …/vaults/{id}/addresources`, at most 256 at once);
    /// returns the ids the vault took.
    pub async fn add_to_vault(
        &self,
        vault_id: &str,
        resource_type: &str,
        ids: &[&str],
    ) -> Result<Vec<String>, ApiError> {
        let resources: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "type": resource_type}))
            .collect();
        let url = self.cbr_url(&format!("vaults/{vault_id}/addresources"));
        let body = json!({ "resources": resources });
        self.call(Method::POST, url, Some(body), decode::added_resources)
            .await
    }

    /// Runs a backup (`POST /v3/{project}/checkpoints`). The answer names
    /// the checkpoint and the resources skipped, never the backups: find
    /// those with [`Self::cbr_backups`] by `checkpoint_id`.
    pub async fn create_checkpoint(
        &self,
        run: &NewCheckpoint<'_>,
    ) -> Result<CbrCheckpoint, ApiError> {
        let url = self.cbr_url("checkpoints");
        self.call(Method::POST, url, Some(run.body()), decode::cbr_checkpoint)
            .await
    }

    /// `GET /v3/{project}/checkpoints/{id}`.
    pub async fn cbr_checkpoint(&self, id: &str) -> Result<CbrCheckpoint, ApiError> {
        let url = self.cbr_url(&format!("checkpoints/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("checkpoint", id, decode::cbr_checkpoint(body))
        })
        .await
    }

    /// Backups matching `filters` (`checkpoint_id`, `resource_id`,
    /// `vault_id`, `name`, `status`), every page (`GET /v3/{project}/backups`).
    pub async fn cbr_backups(&self, filters: &[(&str, &str)]) -> Result<Vec<CbrBackup>, ApiError> {
        self.cbr_list(self.cbr_url("backups"), filters, decode::cbr_backups)
            .await
    }

    /// `GET /v3/{project}/backups/{id}`.
    pub async fn cbr_backup(&self, id: &str) -> Result<CbrBackup, ApiError> {
        let url = self.cbr_url(&format!("backups/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("backup", id, decode::cbr_backup(body))
        })
        .await
    }

    /// [`Self::cbr_backups`], each backup with every field the cloud sent.
    pub async fn cbr_backup_records(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<CbrBackupRecord>, ApiError> {
        self.cbr_list(self.cbr_url("backups"), filters, decode::cbr_backup_records)
            .await
    }

    /// [`Self::cbr_backup`] with every field the cloud sent.
    pub async fn cbr_backup_record(&self, id: &str) -> Result<CbrBackupRecord, ApiError> {
        let url = self.cbr_url(&format!("backups/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("backup", id, decode::cbr_backup_record(body))
        })
        .await
    }

    /// `DELETE /v3/{project}/backups/{id}` (204; the backup stays
    /// `deleting` until a GET answers 404).
    pub async fn delete_cbr_backup(&self, id: &str) -> Result<(), ApiError> {
        let url = self.cbr_url(&format!("backups/{id}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Restores a disk backup onto its own disk
    /// (`POST /v3/{project}/backups/{id}/restore`, 202 with an empty body).
    /// CBR restores a disk backup onto no other disk, and runs one restore
    /// at a time; the disk must be `available`.
    pub async fn restore_cbr_backup(
        &self,
        backup_id: &str,
        volume_id: &str,
    ) -> Result<(), ApiError> {
        let url = self.cbr_url(&format!("backups/{backup_id}/restore"));
        let body = json!({"restore": {"volume_id": volume_id}});
        self.call(Method::POST, url, Some(body), |_| Ok(())).await
    }

    /// Shares a backup with projects (`POST …/backups/{id}/members`); each
    /// member is `pending` until its project accepts.
    pub async fn share_cbr_backup(
        &self,
        backup_id: &str,
        projects: &[&str],
    ) -> Result<Vec<Member>, ApiError> {
        let url = self.cbr_url(&format!("backups/{backup_id}/members"));
        let body = json!({ "members": projects });
        let added = self
            .call(Method::POST, url, Some(body), decode::members)
            .await?;
        Ok(added.items)
    }

    /// The projects a backup is shared with, every page.
    pub async fn cbr_members(&self, backup_id: &str) -> Result<Vec<Member>, ApiError> {
        let url = self.cbr_url(&format!("backups/{backup_id}/members"));
        self.cbr_list(url, &[], decode::members).await
    }

    /// Ends a share (`DELETE …/backups/{id}/members/{project}`, 204).
    pub async fn unshare_cbr_backup(&self, backup_id: &str, project: &str) -> Result<(), ApiError> {
        let url = self.cbr_url(&format!("backups/{backup_id}/members/{project}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Starts a new disk from a CBR backup
    /// (`POST /v2/{project}/cloudvolumes` on EVS, 200); returns the job to
    /// follow with [`Self::volume_job`], whose `entities.volume_id` names
    /// the disk. A disk may show `available` before its data is in place:
    /// the job's `SUCCESS` is what says it is.
    pub async fn create_disk_from_backup(
        &self,
        disk: &NewDiskFromBackup<'_>,
    ) -> Result<String, ApiError> {
        let url = self.url(Service::Volume, "v2", "cloudvolumes");
        self.call(Method::POST, url, Some(disk.body()), decode::job_id)
            .await
    }

    /// `GET /v1/{project}/jobs/{job_id}` on EVS, which issued the job.
    pub async fn volume_job(&self, job_id: &str) -> Result<Job, ApiError> {
        self.job_of(Service::Volume, job_id).await
    }

    /// Operation logs matching `filters` (`operation_type`, `resource_id`,
    /// `vault_id`, `status`, …), every page. There is no `checkpoint_id`
    /// filter: callers match it on the logs.
    pub async fn operation_logs(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<OperationLog>, ApiError> {
        let url = self.cbr_url("operation-logs");
        self.cbr_list(url, filters, decode::operation_logs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::api_sample;

    #[test]
    fn a_run_is_sent_as_the_reference_documents_it() {
        let run = NewCheckpoint {
            vault_id: "3b5816b5-f29c-4172-9d9a-76c719a659ce",
            resources: &[("94eba8b2-acc9-4d82-badc-127144cc5526", DISK)],
            name: "backup_name",
            description: "backup_description",
            incremental: true,
        };
        let sent = run.body();
        let sample: Value =
            serde_json::from_str(&api_sample("cbr_checkpoint_create_request_otc.json")).unwrap();
        let (ours, theirs) = (&sent["checkpoint"], &sample["checkpoint"]);
        assert_eq!(ours["vault_id"], theirs["vault_id"]);
        for key in ["name", "description", "incremental"] {
            assert_eq!(ours["parameters"][key], theirs["parameters"][key], "{key}");
        }
        // The sample lists bare ids in `resources`; the agent names each
        // resource's type in `resource_details`, and marks the run manual.
        assert_eq!(
            ours["parameters"]["resource_details"][0]["id"],
            theirs["parameters"]["resources"][0]
        );
        assert_eq!(ours["parameters"]["resource_details"][0]["type"], DISK);
        assert_eq!(ours["parameters"]["auto_trigger"], false);
        assert!(ours["parameters"].get("resources").is_none());
    }

    #[test]
    fn a_disk_from_a_backup_is_asked_for_as_evs_documents_it() {
        let disk = NewDiskFromBackup {
            backup_id: "6df2b54c-dd62-4059-a07c-1b8f24f2725d",
            availability_zone: "az-dc-1",
            size_gb: 120,
            volume_type: "SSD",
            name: "test_volume_1",
            description: "test_volume_1",
        };
        let sent = disk.body();
        let sample: Value =
            serde_json::from_str(&api_sample("evs_cloudvolumes_create_request_otc.json")).unwrap();
        let (ours, theirs) = (&sent["volume"], &sample["volume"]);
        for key in [
            "availability_zone",
            "size",
            "volume_type",
            "name",
            "description",
            "count",
        ] {
            assert_eq!(ours[key], theirs[key], "{key}");
        }
        // The sample makes an empty disk; the agent names the backup.
        assert!(theirs["backup_id"].is_null());
        assert_eq!(ours["backup_id"], "6df2b54c-dd62-4059-a07c-1b8f24f2725d");
        let job = decode::job_id(&api_sample("evs_cloudvolumes_create_response_otc.json"));
        assert_eq!(job.unwrap(), "70a599e0-31e7-49b7-b260-868f441e862b");
    }
}
