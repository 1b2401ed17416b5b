//! Sharing an available backup with the policy's `share_to` projects. A
//! share that keeps failing is recorded and warned about; the backup still
//! counts as succeeded.

use std::future::Future;

use chrono::Utc;
use tokio::time::Instant;

use super::super::machine::Outcome;
use super::super::poll::Cadence;
use super::{JobRunner, CLEANUP_BUDGET};
use crate::api::types::Share;
use crate::api::{ApiError, CloudClient, Deadline};
use crate::store::{JobUpdate, StoreError};

/// Rounds of sharing before a share is recorded as failed.
const SHARE_ATTEMPTS: u32 = 3;

/// Shares the backup with every `share_to` project that does not have it
/// yet, confirmed by the share list, and records each share.
pub(super) async fn share(runner: &mut JobRunner, projects: &[String]) -> Result<(), StoreError> {
    let Some(backup_id) = runner.job.backup_id.clone() else {
        return runner.advance(Outcome::Shared, JobUpdate::default(), "nothing to share");
    };
    let mut cadence = Cadence::new(&runner.policy.poll);
    let mut last_error = String::new();
    let client = runner
        .client
        .until(Deadline::new(Instant::now() + CLEANUP_BUDGET));
    for attempt in 1..=SHARE_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(cadence.next_wait()).await;
        }
        let shared = if runner.job.on_cbr() {
            share_once_cbr(&client, &backup_id, projects).await
        } else {
            share_once(&client, &backup_id, projects).await
        };
        match shared {
            Ok(shared) => {
                for (project, share_id) in &shared {
                    runner.store.record_share(
                        runner.job.id,
                        &backup_id,
                        project,
                        Some(share_id),
                        None,
                        Utc::now(),
                    )?;
                }
                let note = format!("backup {backup_id} shared with {}", projects.join(", "));
                return runner.advance(Outcome::Shared, JobUpdate::default(), &note);
            }
            Err(e) => {
                last_error = e;
                runner.warn(&format!("sharing backup {backup_id} failed (try {attempt} of {SHARE_ATTEMPTS}): {last_error}"))?;
            }
        }
    }
    for project in projects {
        runner.store.record_share(
            runner.job.id,
            &backup_id,
            project,
            None,
            Some(&last_error),
            Utc::now(),
        )?;
    }
    let note = format!("backup {backup_id} not shared: {last_error}");
    runner.advance(Outcome::Shared, JobUpdate::default(), &note)
}

/// One round on VBS: the backup's shares, then the missing projects
/// shared with, then the shares again to confirm.
async fn share_once(
    client: &CloudClient,
    backup_id: &str,
    projects: &[String],
) -> Result<Vec<(String, String)>, String> {
    let filter = [("backup_id", backup_id)];
    let list = || async {
        Ok(client
            .shares(&filter)
            .await?
            .into_iter()
            .filter_map(|s: Share| Some((s.to_project_id?, s.id)))
            .collect())
    };
    let share = |missing: Vec<String>| async move {
        client.share_backup(backup_id, &missing).await.map(|_| ())
    };
    share_round(projects, "share list", list, share).await
}

/// One round on CBR: the members of the backup, then the missing projects
/// added, then the members again to confirm. A member's id is the project.
async fn share_once_cbr(
    client: &CloudClient,
    backup_id: &str,
    projects: &[String],
) -> Result<Vec<(String, String)>, String> {
    let list = || async {
        Ok(client
            .cbr_members(backup_id)
            .await?
            .into_iter()
            .filter_map(|m| m.dest_project_id)
            .map(|p| (p.clone(), p))
            .collect())
    };
    let share = |missing: Vec<String>| async move {
        let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
        client
            .share_cbr_backup(backup_id, &missing)
            .await
            .map(|_| ())
    };
    share_round(projects, "member list", list, share).await
}

/// One round: `list` who has the backup (project, share id), `share` it
/// with the projects missing, list again to confirm. Returns (project,
/// share id) for every project; `listing` names the list in messages.
async fn share_round<L, LFut, S, SFut>(
    projects: &[String],
    listing: &str,
    list: L,
    share: S,
) -> Result<Vec<(String, String)>, String>
where
    L: Fn() -> LFut,
    LFut: Future<Output = Result<Vec<(String, String)>, ApiError>>,
    S: FnOnce(Vec<String>) -> SFut,
    SFut: Future<Output = Result<(), ApiError>>,
{
    let have = list().await.map_err(|e| e.to_string())?;
    let missing: Vec<String> = projects
        .iter()
        .filter(|p| !have.iter().any(|(h, _)| h == *p))
        .cloned()
        .collect();
    if !missing.is_empty() {
        share(missing).await.map_err(|e| e.to_string())?;
    }
    let after = list().await.map_err(|e| e.to_string())?;
    projects
        .iter()
        .map(|p| {
            after
                .iter()
                .find(|(h, _)| h == p)
                .cloned()
                .ok_or_else(|| format!("the {listing} does not show project {p} after sharing"))
        })
        .collect()
}
