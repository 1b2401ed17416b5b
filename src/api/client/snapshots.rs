//! Snapshot calls (EVS/Cinder `/{v}/{project}/snapshots`, v2 unless the
//! cloud says v3): create, read, find by name, list per volume, delete.

use reqwest::Method;
use serde_json::json;

use super::request::Service;
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::Snapshot;

/// What to snapshot.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    pub volume_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub force: bool,
}

impl CloudClient {
    /// `…/{v}/{project}/{tail}` of the volume service, in the cloud's
    /// snapshot API version.
    fn snapshot_url(&self, tail: &str) -> String {
        self.url(Service::Volume, self.inner.snapshot_api.segment(), tail)
    }

    /// `POST /{v}/{project}/snapshots` (v2 unless the cloud says v3).
    pub async fn create_snapshot(&self, s: &NewSnapshot<'_>) -> Result<Snapshot, ApiError> {
        let body = json!({"snapshot": {
            "volume_id": s.volume_id, "name": s.name, "description": s.description,
            "force": s.force, "metadata": {"created_by": "vbs-agent"}}});
        let url = self.snapshot_url("snapshots");
        self.call(Method::POST, url, Some(body), decode::snapshot)
            .await
    }

    /// `GET /{v}/{project}/snapshots/{id}`.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, ApiError> {
        let url = self.snapshot_url(&format!("snapshots/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("snapshot", id, decode::snapshot(body))
        })
        .await
    }

    /// `DELETE /{v}/{project}/snapshots/{id}` (202; the snapshot goes
    /// `deleting`, then disappears).
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), ApiError> {
        let url = self.snapshot_url(&format!("snapshots/{id}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Snapshots of `volume_id` named exactly `name`, across all pages.
    pub async fn find_snapshots(
        &self,
        name: &str,
        volume_id: &str,
    ) -> Result<Vec<Snapshot>, ApiError> {
        let url = self.snapshot_url("snapshots/detail");
        self.list_matching(
            url,
            &[("name", name), ("volume_id", volume_id)],
            decode::snapshots,
            |s| {
                s.name.as_deref() == Some(name)
                    && s.volume_id.as_deref().is_none_or(|v| v == volume_id)
            },
        )
        .await
    }

    /// Every snapshot of `volume_id` with its details, across all pages.
    pub async fn snapshots_of_volume(&self, volume_id: &str) -> Result<Vec<Snapshot>, ApiError> {
        let url = self.snapshot_url("snapshots/detail");
        self.list_all(url, &[("volume_id", volume_id)], decode::snapshots)
            .await
    }
}
