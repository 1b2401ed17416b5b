//! Retention for server (CSBS) backups: the candidates are the server's
//! checkpoint items; deleting one deletes its checkpoint, which CSBS does
//! asynchronously (up to 30 minutes), at most five per project at once.

use std::time::Duration;

use super::prune::{wait_gone, Deleting};
use super::retention::Candidate;
use crate::api::{ApiError, CloudClient};
use crate::config::{Policy, Work, DEFAULT_CSBS_PROVIDER};

/// How long one checkpoint deletion may take once CSBS has started it.
pub(super) const CHECKPOINT_DELETE_BUDGET: Duration = Duration::from_secs(30 * 60);

/// The server's backups as retention candidates (CSBS has no incremental
/// dependants the agent must respect: any backup restores the server).
pub(super) async fn candidates(
    client: &CloudClient,
    server: &str,
) -> Result<Vec<Candidate>, ApiError> {
    Ok(client
        .checkpoint_items_of_server(server)
        .await?
        .into_iter()
        .map(|i| Candidate {
            id: i.id,
            name: i.name,
            status: i.status,
            created_at: i.created_at,
            has_dependents: false,
        })
        .collect())
}

/// Deletes the checkpoint of item `item_id` within the project's deletion
/// slots, and waits until the item is gone.
pub(super) async fn delete_and_wait(
    client: &CloudClient,
    policy: &Policy,
    item_id: &str,
) -> Result<(), ApiError> {
    let item = match client.checkpoint_item(item_id).await {
        Ok(item) => item,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(checkpoint) = item.checkpoint_id.clone() else {
        return Err(failure(
            item_id,
            "the checkpoint item names no checkpoint_id to delete".into(),
        ));
    };
    let _slot = client.checkpoint_deletion_slot().await;
    let provider = match &policy.work {
        Work::Server(w) => w.provider_id.as_str(),
        _ => DEFAULT_CSBS_PROVIDER,
    };
    match client.delete_checkpoint(provider, &checkpoint).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        // A repeated delete (a restarted agent, a lost answer) is refused
        // while the first one runs: wait for it like for our own.
        Err(e) if matches!(e.status, Some(400 | 409)) => {
            tracing::info!(policy = %policy.name, checkpoint, error = %e, "checkpoint already being deleted");
        }
        Err(e) => return Err(e),
    }
    let call = format!("DELETE server backup {item_id} (checkpoint {checkpoint})");
    wait_gone(&policy.poll, CHECKPOINT_DELETE_BUDGET, call, || async {
        let item = client.checkpoint_item(item_id).await?;
        Ok(match item.status.as_str() {
            "deleted" => Deleting::Gone,
            "error" if item.extend_info.fail_op.as_deref() == Some("delete") => {
                Deleting::Failed(format!(
                    "CSBS failed to delete it: {}",
                    item.failure().unwrap_or_else(|| "no fail_reason".into())
                ))
            }
            _ => Deleting::Present,
        })
    })
    .await
}

fn failure(item_id: &str, message: String) -> ApiError {
    ApiError::failed(format!("DELETE server backup {item_id}"), message)
}
