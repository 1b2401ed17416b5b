//! Removing the volume a restore made when it is not wanted: a drill's
//! scratch volume always, and a new volume whose restore failed. The
//! volume is waited for while it is still being made or restored into,
//! deleted, and waited for until it is gone; what cannot be deleted is
//! recorded and warned about, and deleted again later (see
//! [`crate::engine::Engine::sweep_scratch`]).

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::super::prune::{wait_gone, Deleting};
use super::{JobRunner, CLEANUP_BUDGET};
use crate::api::{ApiError, CloudClient, Deadline, ErrorClass};
use crate::config::PollSettings;
use crate::store::{JobStatus, StoreError};

/// Volume statuses in which a delete is asked for: those Cinder accepts,
/// and `error_deleting`, where it is tried again (Cinder refuses it, and
/// its answer, saying why, ends the wait).
const DELETABLE: [&str; 7] = [
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
    "in-use",
    "error_deleting",
];

/// Deletes the job's volume when it is not wanted, and records it.
pub(super) async fn clean_up(runner: &mut JobRunner) -> Result<(), StoreError> {
    let columns = runner.store.restore_columns(runner.job.id)?;
    let wanted = match columns.into_volume.as_str() {
        "scratch" => false,
        "new" => runner.job.status == JobStatus::Succeeded,
        _ => true,
    };
    if wanted || columns.volume_deleted_at.is_some() {
        return Ok(());
    }
    let id = match columns.volume_id {
        Some(id) => Some(id),
        None => find_ours(runner).await,
    };
    let Some(id) = id else {
        return Ok(());
    };
    // As long as the restore itself had, and no longer than other cleanups.
    let budget = CLEANUP_BUDGET.min(runner.policy.completion_timeout);
    let client = runner.client.until(Deadline::new(Instant::now() + budget));
    match delete_volume(&client, &runner.policy.poll, &id, budget).await {
        Ok(()) => {
            runner.store.set_restore_volume(runner.job.id, &id)?;
            runner.store.scratch_deleted(runner.job.id, Utc::now())
        }
        Err(reason) => {
            runner.store.set_restore_volume(runner.job.id, &id)?;
            runner.warn(&format!(
                "volume {id} left behind and still costing money: {reason}; \
                 the agent deletes it again at its next start and before each drill"
            ))
        }
    }
}

/// The job's volume found by name, when its id was never recorded (the
/// create's answer was lost).
async fn find_ours(runner: &JobRunner) -> Option<String> {
    let found = runner
        .client
        .find_volumes(&runner.job.resource_name)
        .await
        .ok()?;
    let job = runner.job.id.to_string();
    found
        .into_iter()
        .find(|v| v.metadata.get(super::restore::VOLUME_MARK) == Some(&job))
        .map(|v| v.id)
}

/// Deletes volume `id` once it can be deleted and waits until it is gone,
/// within `budget`. Gone already counts as deleted; a volume still being
/// made or restored into, or a delete the cloud calls busy, is waited for.
pub(crate) async fn delete_volume(
    client: &CloudClient,
    poll: &PollSettings,
    id: &str,
    budget: Duration,
) -> Result<(), String> {
    let busy = |e: &ApiError| e.class == ErrorClass::Busy;
    let call = format!("DELETE volume {id}");
    wait_gone(poll, budget, call, || async {
        let status = match client.volume(id).await {
            Err(e) if busy(&e) => return Ok(Deleting::Present),
            other => other?.status,
        };
        if !DELETABLE.contains(&status.as_str()) {
            // Being deleted, or still being created or restored into.
            return Ok(Deleting::Present);
        }
        match client.delete_volume(id).await {
            Err(e) if !busy(&e) => Err(e),
            _ => Ok(Deleting::Present),
        }
    })
    .await
    .map_err(|e| e.to_string())
}
