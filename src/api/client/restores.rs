//! Restore calls: Cinder's (`POST /v3/{project}/backups/{id}/restore`) and
//! the vendor's (`POST /v2/{project}/cloudbackups/{id}/restore`, answered
//! with a job), and the vendor's job status (`GET /v1/{project}/jobs/{id}`).

use reqwest::Method;
use serde_json::json;

use super::request::Service;
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::{Job, Restored};
use crate::config::RestoreApi;

impl CloudClient {
    /// Which restore call this cloud is configured to use.
    pub fn restore_api(&self) -> RestoreApi {
        self.inner.restore_api
    }

    /// Cinder's restore of `backup_id` into the existing `volume_id` (202;
    /// the volume goes `restoring-backup`, then `available` or
    /// `error_restoring`).
    pub async fn restore_backup(
        &self,
        backup_id: &str,
        volume_id: &str,
    ) -> Result<Restored, ApiError> {
        let url = self.url(
            Service::Backup,
            "v3",
            &format!("backups/{backup_id}/restore"),
        );
        let body = json!({"restore": {"volume_id": volume_id}});
        self.call(Method::POST, url, Some(body), decode::restored)
            .await
    }

    /// The vendor's restore of `backup_id` into `volume_id` (200); returns
    /// the id of the job to watch with [`CloudClient::job`].
    pub async fn restore_backup_job(
        &self,
        backup_id: &str,
        volume_id: &str,
    ) -> Result<String, ApiError> {
        let url = self.url(
            Service::Backup,
            "v2",
            &format!("cloudbackups/{backup_id}/restore"),
        );
        let body = json!({"restore": {"volume_id": volume_id}});
        self.call(Method::POST, url, Some(body), decode::job_id)
            .await
    }

    /// `GET /v1/{project}/jobs/{job_id}` on the backup service, which
    /// issued the job.
    pub async fn job(&self, job_id: &str) -> Result<Job, ApiError> {
        self.job_of(Service::Backup, job_id).await
    }

    /// `GET /v1/{project}/jobs/{job_id}` on `service`.
    pub(super) async fn job_of(&self, service: Service, job_id: &str) -> Result<Job, ApiError> {
        let url = self.url(service, "v1", &format!("jobs/{job_id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("job", job_id, decode::job(body))
        })
        .await
    }
}
