//! Sharing an available backup with the policy's `share_to` projects. A
//! share that keeps failing is recorded and warned about; the backup still
//! counts as succeeded.

use chrono::Utc;
use tokio::time::Instant;

use super::super::machine::Outcome;
use super::super::poll::Cadence;
use super::{JobRunner, CLEANUP_BUDGET};
use crate::api::types::Share;
use crate::api::{CloudClient, Deadline};
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

/// One round: list, share what is missing, list again to confirm.
/// Returns (project, share id) for every project.
async fn share_once(
    client: &CloudClient,
    backup_id: &str,
    projects: &[String],
) -> Result<Vec<(String, String)>, String> {
    let shared_with = |shares: &[Share]| -> Vec<(String, String)> {
        shares
            .iter()
            .filter_map(|s| Some((s.to_project_id.clone()?, s.id.clone())))
            .collect()
    };
    let filter = [("backup_id", backup_id)];
    let before = client.shares(&filter).await.map_err(|e| e.to_string())?;
    let have = shared_with(&before);
    let missing: Vec<String> = projects
        .iter()
        .filter(|p| !have.iter().any(|(h, _)| h == *p))
        .cloned()
        .collect();
    if !missing.is_empty() {
        client
            .share_backup(backup_id, &missing)
            .await
            .map_err(|e| e.to_string())?;
    }
    let after = shared_with(&client.shares(&filter).await.map_err(|e| e.to_string())?);
    projects
        .iter()
        .map(|p| {
            after
                .iter()
                .find(|(h, _)| h == p)
                .map(|(h, id)| (h.clone(), id.clone()))
                .ok_or_else(|| format!("the share list does not show project {p} after sharing"))
        })
        .collect()
}

/// One round on CBR: the members of the backup, then the missing projects
/// added, then the members again to confirm. A member's id is the project.
async fn share_once_cbr(
    client: &CloudClient,
    backup_id: &str,
    projects: &[String],
) -> Result<Vec<(String, String)>, String> {
    let members = |list: Vec<crate::api::types::Member>| -> Vec<String> {
        list.into_iter().filter_map(|m| m.dest_project_id).collect()
    };
    let have = members(
        client
            .cbr_members(backup_id)
            .await
            .map_err(|e| e.to_string())?,
    );
    let missing: Vec<&str> = projects
        .iter()
        .filter(|p| !have.contains(p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        client
            .share_cbr_backup(backup_id, &missing)
            .await
            .map_err(|e| e.to_string())?;
    }
    let after = members(
        client
            .cbr_members(backup_id)
            .await
            .map_err(|e| e.to_string())?,
    );
    projects
        .iter()
        .map(|p| {
            after
                .contains(p)
                .then(|| (p.clone(), p.clone()))
                .ok_or_else(|| format!("the member list does not show project {p} after sharing"))
        })
        .collect()
}
