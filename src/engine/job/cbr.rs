//! Kinds `backup` and `server` on a CBR cloud: the target's backup in the
//! run's checkpoint ([`super::cbr_run`]) → waiting for it → sharing.
//!
//! ```text
//! backup: pending → backup_requested (the run's checkpoint; this volume's backup found)
//!                 → backup_creating (polled to available or error) → [sharing →] cleanup → done
//! server: pending → protect_requested (the same, in a server vault)
//!                 → checkpoint_creating (polled; its disks' backups recorded) → cleanup → done
//! ```
//! A target CBR skipped, or that is not in the vault, fails with the
//! reason. A failed backup's reason comes from its operation log.

use chrono::Utc;

use super::super::machine::Outcome;
use super::super::poll::{Cadence, PollEnd};
use super::cbr_run::{self, Checkpointed, VaultWork, LISTING_GRACE};
use super::watch::{Verdict, Watch};
use super::{share, JobRunner};
use crate::api::types::CbrBackup;
use crate::api::{ApiError, CloudClient};
use crate::config::{BackupWork, ServerWork};
use crate::store::{JobStatus, JobUpdate, Phase, ServerVolumeBackup, StoreError};

/// One step of a backup job on CBR.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &BackupWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::BackupRequested => request(runner, &VaultWork::volumes(work)).await,
        Phase::BackupCreating => {
            let cadence = super::backup::cadence(runner, work)?;
            settled(runner, cadence, !work.share_to.is_empty()).await
        }
        Phase::Sharing => share::share(runner, &work.share_to).await,
        other => runner.misplaced(other),
    }
}

/// One step of a server job on CBR.
pub(super) async fn step_server(
    runner: &mut JobRunner,
    work: &ServerWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::ProtectRequested => request(runner, &VaultWork::servers(work)).await,
        Phase::CheckpointCreating => {
            let cadence = Cadence::new(&runner.policy.poll);
            settled(runner, cadence, false).await
        }
        other => runner.misplaced(other),
    }
}

/// The backup of the job's target named `name`, if CBR lists one.
async fn backup_named(
    client: &CloudClient,
    name: &str,
    volume: &str,
) -> Result<Option<CbrBackup>, ApiError> {
    Ok(client
        .cbr_backups(&[("name", name), ("resource_id", volume)])
        .await?
        .into_iter()
        .find(|b| b.resource_id.as_deref() == Some(volume)))
}

/// Finds the job's backup in the run's checkpoint, making the checkpoint
/// when no job of the run has yet.
async fn request(runner: &mut JobRunner, work: &VaultWork<'_>) -> Result<(), StoreError> {
    let name = cbr_run::checkpoint_name(runner);
    let volume = runner.job.target.clone();
    if runner.maybe_exists {
        if let Some(backup) = listed_late(runner, &name, &volume).await? {
            return adopt(runner, &backup, "adopted by name");
        }
    }
    let run = cbr_run::checkpoint(runner, work).await?;
    runner.maybe_exists = false;
    if let Some(why) = run.failure.as_ref().or_else(|| run.left_out.get(&volume)) {
        let (status, reason, retry) = (why.status, why.reason.clone(), why.retry_worthy);
        return runner.fail_then_cleanup(status, &reason, retry);
    }
    let Some(checkpoint) = run.checkpoint_id.clone() else {
        return runner.give_up(
            JobStatus::Failed,
            "internal: a CBR run without a checkpoint",
        );
    };
    match find_backup(runner, &run, &checkpoint, &volume).await? {
        Some(backup) => adopt(
            runner,
            &backup,
            if run.adopted {
                "adopted by name"
            } else {
                "found"
            },
        ),
        None => {
            let noun = runner.job.kind.target_noun();
            let reason = if run.adopted {
                format!("CBR backup run {checkpoint} (found by name after a lost answer) made no backup of {noun} {volume}; it was probably skipped")
            } else {
                format!(
                    "CBR backup run {checkpoint} listed no backup of {noun} {volume} within the completion timeout ({})",
                    runner.timeout_text()
                )
            };
            let status = if run.adopted {
                JobStatus::Failed
            } else {
                JobStatus::TimedOut
            };
            runner.fail_then_cleanup(status, &reason, run.adopted)
        }
    }
}

/// Records the job's backup and its CBR ids.
fn adopt(runner: &mut JobRunner, backup: &CbrBackup, how: &str) -> Result<(), StoreError> {
    let checkpoint = backup.checkpoint_id.as_deref().unwrap_or_default();
    let vault = backup.vault_id.as_deref().unwrap_or_default();
    runner
        .store
        .set_cbr_ids(runner.job.id, checkpoint, vault, Utc::now())?;
    runner.maybe_exists = false;
    let update = JobUpdate {
        backup_id: Some(&backup.id),
        ..Default::default()
    };
    let note = format!("CBR backup {} (run {checkpoint}) {how}", backup.id);
    runner.advance(Outcome::Created, update, &note)
}

/// The job's backup, by name, for a job continued after a restart: asked
/// again while the list is empty until [`LISTING_GRACE`] after the job
/// entered its phase.
async fn listed_late(
    runner: &JobRunner,
    name: &str,
    volume: &str,
) -> Result<Option<CbrBackup>, StoreError> {
    let client = &runner.client;
    runner
        .listed_since_phase(LISTING_GRACE, || backup_named(client, name, volume))
        .await
}

/// The volume's backup in `checkpoint`, asked again while CBR does not
/// list it yet: until the deadline for a run made now, for
/// [`LISTING_GRACE`] for one found by name (which may have skipped it).
async fn find_backup(
    runner: &mut JobRunner,
    run: &Checkpointed,
    checkpoint: &str,
    volume: &str,
) -> Result<Option<CbrBackup>, StoreError> {
    let until = if run.adopted {
        let left = LISTING_GRACE.to_std().unwrap_or_default();
        (tokio::time::Instant::now() + left).min(runner.deadline)
    } else {
        runner.deadline
    };
    let client = runner.client.clone();
    let filters = [("checkpoint_id", checkpoint), ("resource_id", volume)];
    let (found, empty) = runner
        .find_listed(until, "CBR backup run", checkpoint, || async {
            Ok(client
                .cbr_backups(&filters)
                .await?
                .into_iter()
                .find(|b| b.resource_id.as_deref() == Some(volume)))
        })
        .await?;
    if empty > 1 {
        runner.note(&format!(
            "CBR backup run {checkpoint}: no backup of {volume} listed yet, {empty} time(s); asked again"
        ))?;
    }
    Ok(found)
}

/// Waits for the backup's terminal status and records it.
async fn settled(runner: &mut JobRunner, cadence: Cadence, shares: bool) -> Result<(), StoreError> {
    let Some(id) = runner.job.backup_id.clone() else {
        return runner.give_up(
            JobStatus::Failed,
            "internal: backup phase without a backup id",
        );
    };
    let client = runner.client.clone();
    let watch = Watch {
        what: "CBR backup",
        id: &id,
        cadence,
    };
    let end = runner
        .watch(
            watch,
            || client.cbr_backup(&id),
            |b| b.status.as_str(),
            |status| match status {
                // A backup being restored from was available.
                "available" | "error" | "restoring" | "waiting_restore" => Verdict::Settled,
                "deleting" | "waiting_delete" => Verdict::Lost(format!(
                    "CBR backup {id} is being deleted by someone else (status `{status}`)"
                )),
                "protecting" | "waiting_protect" => Verdict::Working,
                _ => Verdict::Unknown,
            },
            |_, _| {},
        )
        .await?;
    match end {
        Ok(backup) => record_result(runner, &backup, shares).await,
        Err(PollEnd::Failed(reason)) => runner.fail_then_cleanup(JobStatus::Failed, &reason, false),
        Err(PollEnd::Deadline) => {
            let reason = format!(
                "CBR backup {id} did not reach a terminal status within the completion timeout ({})",
                runner.timeout_text()
            );
            runner.give_up(JobStatus::TimedOut, &reason)
        }
    }
}

/// Records a backup in a terminal status: success with its size and
/// duration, or the reason its operation log gives for the failure.
async fn record_result(
    runner: &mut JobRunner,
    b: &CbrBackup,
    shares: bool,
) -> Result<(), StoreError> {
    let succeeded = b.status != "error";
    let reason = if succeeded {
        None
    } else {
        Some(failure_reason(&runner.client, b).await)
    };
    let backup_took = succeeded
        .then(|| super::backup::took(runner, b.created_at, b.updated_at))
        .flatten();
    let outcome = super::backup::settled_outcome(succeeded, shares);
    if !b.children.is_empty() {
        let disks: Vec<ServerVolumeBackup> = b
            .children
            .iter()
            .map(|c| ServerVolumeBackup {
                volume_backup_id: Some(c.id.clone()),
                source_volume_id: c.resource_id.clone(),
                source_volume_name: c.resource_name.clone(),
                status: Some(c.status.clone()),
                size_mb: c.resource_size.map(|gb| gb as f64 * 1024.0),
                incremental: c.extend_info.incremental,
                bootable: c.extend_info.bootable,
            })
            .collect();
        runner
            .store
            .record_server_result(runner.job.id, &b.id, None, &disks, Utc::now())?;
    }
    let update = JobUpdate {
        status: Some(if succeeded {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        }),
        size_gb: b.resource_size.and_then(|s| i64::try_from(s).ok()),
        is_incremental: b.extend_info.incremental,
        fail_reason: reason.as_deref(),
        retry_at: if succeeded { None } else { runner.retry_at() },
        backup_took,
        ..Default::default()
    };
    let note = match &reason {
        None => format!("CBR backup {} available", b.id),
        Some(r) => format!("CBR backup {} failed: {r}", b.id),
    };
    runner.advance(outcome, update, &note)
}

/// Why a backup went to `error`: the code and message of its failed
/// operation log, never guessed.
async fn failure_reason(client: &CloudClient, b: &CbrBackup) -> String {
    let mut filters = vec![("operation_type", "backup")];
    if let Some(volume) = b.resource_id.as_deref() {
        filters.push(("resource_id", volume));
    }
    if let Some(vault) = b.vault_id.as_deref() {
        filters.push(("vault_id", vault));
    }
    let logs = match client.operation_logs(&filters).await {
        Ok(logs) => logs,
        Err(e) => {
            return format!(
                "CBR backup {} went to status `error`; its operation log could not be read: {e}",
                b.id
            )
        }
    };
    let failed = logs.iter().find(|l| {
        l.backup_id() == Some(b.id.as_str())
            || (l.checkpoint_id.is_some() && l.checkpoint_id == b.checkpoint_id)
    });
    match failed.map(|l| (l.error_info.code(), l.error_info.message())) {
        Some((Some(code), message)) => format!(
            "CBR backup {} failed: {code} {}",
            b.id,
            message.unwrap_or("(no message)")
        ),
        Some((None, Some(message))) => format!("CBR backup {} failed: {message}", b.id),
        _ => format!(
            "CBR backup {} went to status `error`; its operation log gives no reason",
            b.id
        ),
    }
}
