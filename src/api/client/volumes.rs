//! Volume calls (EVS/Cinder `/v3/{project}/volumes`): the scratch volumes
//! restores go into. Create, read, find by name, delete.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;

use super::request::Service;
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::Volume;

/// A volume to create.
#[derive(Debug, Clone)]
pub struct NewVolume<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub size_gb: u64,
    /// Mandatory on OTC: the backup's zone, where a restore is sure to
    /// work. Left out when unknown (Cinder then takes its default).
    pub availability_zone: Option<&'a str>,
    /// String values only (Cinder and EVS refuse others).
    pub metadata: &'a BTreeMap<String, String>,
}

impl CloudClient {
    /// `POST /v3/{project}/volumes` (202, the volume `creating`).
    pub async fn create_volume(&self, v: &NewVolume<'_>) -> Result<Volume, ApiError> {
        let mut volume = json!({
            "name": v.name, "description": v.description, "size": v.size_gb,
            "metadata": v.metadata});
        if let Some(zone) = v.availability_zone {
            volume["availability_zone"] = json!(zone);
        }
        let body = json!({ "volume": volume });
        let url = self.url(Service::Volume, "v3", "volumes");
        self.call(Method::POST, url, Some(body), decode::volume)
            .await
    }

    /// `GET /v3/{project}/volumes/{id}`.
    pub async fn volume(&self, id: &str) -> Result<Volume, ApiError> {
        let url = self.url(Service::Volume, "v3", &format!("volumes/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("volume", id, decode::volume(body))
        })
        .await
    }

    /// Volumes named exactly `name`, across all pages
    /// (`GET /v3/{project}/volumes/detail?name=…`).
    pub async fn find_volumes(&self, name: &str) -> Result<Vec<Volume>, ApiError> {
        let url = self.url(Service::Volume, "v3", "volumes/detail");
        self.list_matching(url, &[("name", name)], decode::volumes, |v| {
            v.name.as_deref() == Some(name)
        })
        .await
    }

    /// `DELETE /v3/{project}/volumes/{id}` (202; the volume goes `deleting`,
    /// then disappears).
    pub async fn delete_volume(&self, id: &str) -> Result<(), ApiError> {
        let url = self.url(Service::Volume, "v3", &format!("volumes/{id}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }
}
