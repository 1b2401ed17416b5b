//! CSBS calls: protect a server, find and read its checkpoint items, delete
//! a checkpoint. Paths are under `endpoints.server_backup` (or the catalog's
//! `csbs`/`data-protect` service), `/v1/{project}`.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::request::{with_query, Service, MAX_PAGES, PAGE_SIZE};
use super::CloudClient;
use crate::api::decode;
use crate::api::error::ApiError;
use crate::api::types::{Checkpoint, CheckpointItem};

/// CSBS runs at most this many checkpoint deletions per project at once
/// (it queues the rest); the agent keeps within it itself.
pub const MAX_CHECKPOINT_DELETIONS: usize = 5;

impl CloudClient {
    fn csbs_url(&self, tail: &str) -> String {
        self.url(Service::ServerBackup, "v1", tail)
    }

    /// Starts a backup of `server_id`
    /// (`POST /v1/{project}/providers/{provider}/resources/{server}/action`).
    /// The answer's `checkpoint.id` is the backup record, not the item.
    pub async fn protect_server(
        &self,
        provider_id: &str,
        server_id: &str,
        backup_name: &str,
        description: &str,
    ) -> Result<Checkpoint, ApiError> {
        let url = self.csbs_url(&format!(
            "providers/{provider_id}/resources/{server_id}/action"
        ));
        let body = json!({"protect": {
            "backup_name": backup_name, "description": description,
            "resource_type": "OS::Nova::Server", "extra_info": {}}});
        self.call(Method::POST, url, Some(body), decode::checkpoint)
            .await
    }

    /// `GET /v1/{project}/checkpoint_items/{id}`.
    pub async fn checkpoint_item(&self, id: &str) -> Result<CheckpointItem, ApiError> {
        let url = self.csbs_url(&format!("checkpoint_items/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("checkpoint item", id, decode::checkpoint_item(body))
        })
        .await
    }

    /// Checkpoint items matching `filters` (`checkpoint_id`, `resource_id`,
    /// `name`, `status`), every page: the next page starts after the
    /// `marker` of a `next` link or, without links, after the last item of
    /// a full page.
    pub async fn checkpoint_items(
        &self,
        filters: &[(&str, &str)],
    ) -> Result<Vec<CheckpointItem>, ApiError> {
        let url = self.csbs_url("checkpoint_items");
        let limit = PAGE_SIZE.to_string();
        let mut items: Vec<CheckpointItem> = Vec::new();
        let mut seen = HashSet::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = filters.to_vec();
            query.push(("limit", &limit));
            if let Some(m) = &marker {
                query.push(("marker", m));
            }
            let page = self
                .call(
                    Method::GET,
                    with_query(&url, &query),
                    None,
                    decode::checkpoint_items,
                )
                .await?;
            let full = page.items.len() >= PAGE_SIZE;
            let last = page.items.last().map(|i| i.id.clone());
            items.extend(page.items);
            let next = page.next_marker.or(if full { last } else { None });
            match next {
                Some(m) if seen.insert(m.clone()) => marker = Some(m),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Items of `server_id` named exactly `name` (adopting a backup whose
    /// protect answer was lost).
    pub async fn find_checkpoint_items(
        &self,
        name: &str,
        server_id: &str,
    ) -> Result<Vec<CheckpointItem>, ApiError> {
        let found = self
            .checkpoint_items(&[("name", name), ("resource_id", server_id)])
            .await?;
        Ok(found
            .into_iter()
            .filter(|i| {
                i.name.as_deref() == Some(name)
                    && i.resource_id.as_deref().is_none_or(|r| r == server_id)
            })
            .collect())
    }

    /// Every backup of `server_id`.
    pub async fn checkpoint_items_of_server(
        &self,
        server_id: &str,
    ) -> Result<Vec<CheckpointItem>, ApiError> {
        let found = self.checkpoint_items(&[("resource_id", server_id)]).await?;
        Ok(found
            .into_iter()
            .filter(|i| i.resource_id.as_deref().is_none_or(|r| r == server_id))
            .collect())
    }

    /// `DELETE /v1/{project}/providers/{provider}/checkpoints/{checkpoint}`:
    /// asynchronous; the items disappear when it is done.
    pub async fn delete_checkpoint(
        &self,
        provider_id: &str,
        checkpoint_id: &str,
    ) -> Result<(), ApiError> {
        let url = self.csbs_url(&format!(
            "providers/{provider_id}/checkpoints/{checkpoint_id}"
        ));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Waits for one of this project's [`MAX_CHECKPOINT_DELETIONS`]
    /// deletion slots; hold it until the deletion has finished.
    pub async fn checkpoint_deletion_slot(&self) -> Option<OwnedSemaphorePermit> {
        std::sync::Arc::clone(&self.inner.checkpoint_deletions)
            .acquire_owned()
            .await
            .ok()
    }
}
