//! Backup sharing with other projects (the vendor's
//! `os-vendor-backup-sharing`): share, and list the shares page by page.

use reqwest::Method;
use serde_json::json;

use super::request::{with_query, Service, MAX_PAGES, PAGE_SIZE};
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::Share;

impl CloudClient {
    /// (`POST /v2/{project}/os-vendor-backup-sharing`).
    pub async fn share_backup(
        &self,
        backup_id: &str,
        to: &[String],
    ) -> Result<Vec<Share>, ApiError> {
        let url = self.url(Service::Backup, "v2", "os-vendor-backup-sharing");
        let body = json!({"shared": {"backup_id": backup_id, "to_project_ids": to}});
        self.call(Method::POST, url, Some(body), decode::shares)
            .await
    }

    /// Backup shares matching `filters`
    /// (`GET /v2/{project}/os-vendor-backup-sharing/detail`). With `limit`
    /// or `offset` among the filters, that one page; otherwise every page.
    pub async fn shares(&self, filters: &[(&str, &str)]) -> Result<Vec<Share>, ApiError> {
        let url = self.url(Service::Backup, "v2", "os-vendor-backup-sharing/detail");
        if filters.iter().any(|(k, _)| *k == "limit" || *k == "offset") {
            return self
                .call(Method::GET, with_query(&url, filters), None, decode::shares)
                .await;
        }
        let limit = PAGE_SIZE.to_string();
        let mut all = Vec::new();
        for page_no in 0..MAX_PAGES {
            let offset = (page_no * PAGE_SIZE).to_string();
            let mut query = filters.to_vec();
            query.extend([("limit", limit.as_str()), ("offset", offset.as_str())]);
            let page = self
                .call(Method::GET, with_query(&url, &query), None, decode::shares)
                .await?;
            let last = page.len() < PAGE_SIZE;
            all.extend(page);
            if last {
                break;
            }
        }
        Ok(all)
    }
}
