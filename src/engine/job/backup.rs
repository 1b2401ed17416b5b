//! Kind `backup`: snapshot → VBS backup of the snapshot → sharing →
//! removing the snapshot. The snapshot steps are [`super::snapshot`]'s,
//! sharing is [`super::share`]'s.

use chrono::Utc;

use super::super::create::create_or_adopt;
use super::super::machine::Outcome;
use super::super::poll::{Cadence, Expected, PollEnd};
use super::watch::{Verdict, Watch};
use super::{share, snapshot, JobRunner};
use crate::api::types::Backup;
use crate::api::{ApiError, ErrorClass, NewBackup};
use crate::config::BackupWork;
use crate::store::{JobStatus, JobUpdate, Phase, StoreError};

/// One step of a backup job.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &BackupWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::SnapshotRequested => snapshot::request(runner, work.force).await,
        Phase::SnapshotCreating => match snapshot::available(runner).await? {
            Some((id, _)) => runner.advance(
                Outcome::Ready,
                JobUpdate::default(),
                &format!("snapshot {id} available"),
            ),
            None => Ok(()),
        },
        Phase::BackupRequested => request(runner, work).await,
        Phase::BackupCreating => settled(runner, work).await,
        Phase::Sharing => share::share(runner, &work.share_to).await,
        other => runner.misplaced(other),
    }
}

/// Backs up the job's snapshot, or adopts the backup an earlier call made.
async fn request(runner: &mut JobRunner, work: &BackupWork) -> Result<(), StoreError> {
    let Some(snapshot_id) = runner.job.snapshot_id.clone() else {
        return runner.give_up(
            JobStatus::Failed,
            "internal: backup phase without a snapshot id",
        );
    };
    let (name, volume, description) = (
        runner.job.resource_name.clone(),
        runner.job.target.clone(),
        runner.description(),
    );
    let force = work.force;
    // Cinder only makes an incremental backup when asked, and refuses to
    // without a parent; VBS decides by itself.
    let incremental = !full_backup_due(runner, work)?
        && runner
            .store
            .has_backup_to_build_on(&runner.job.cloud, &volume)?;
    let client = &runner.client;
    let created = create_or_adopt(
        "backup",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || async {
            Ok(client
                .find_backups(&name, &volume)
                .await?
                .into_iter()
                .next()
                .map(|b| b.id))
        },
        || async {
            let b = NewBackup {
                volume_id: &volume,
                snapshot_id: &snapshot_id,
                name: &name,
                description: &description,
                force,
                incremental,
            };
            match client.create_backup(&b).await {
                // The parent the history knew is gone (deleted behind the
                // agent's back): nothing was made, so a full backup is.
                Err(e) if incremental && refused_outright(&e) => {
                    let full = NewBackup {
                        incremental: false,
                        ..b
                    };
                    Ok(client.create_backup(&full).await?.id)
                }
                made => Ok(made?.id),
            }
        },
    )
    .await;
    let Some((id, how)) = runner.created(created)? else {
        return Ok(());
    };
    let update = JobUpdate {
        backup_id: Some(&id),
        ..Default::default()
    };
    runner.advance(Outcome::Created, update, &format!("backup {id} {how}"))
}

/// A 400 that is no busy volume: the cloud refused the request as it
/// stands and made nothing.
fn refused_outright(e: &ApiError) -> bool {
    e.status == Some(400) && e.class == ErrorClass::Permanent
}

/// Waits for the backup's terminal status and records it.
async fn settled(runner: &mut JobRunner, work: &BackupWork) -> Result<(), StoreError> {
    let Some(id) = runner.job.backup_id.clone() else {
        return runner.give_up(
            JobStatus::Failed,
            "internal: backup phase without a backup id",
        );
    };
    let client = runner.client.clone();
    let watch = Watch {
        what: "backup",
        id: &id,
        cadence: cadence(runner, work)?,
    };
    let end = runner
        .watch(
            watch,
            || client.backup(&id),
            |b| b.status.as_str(),
            |status| match status {
                // A backup being restored from was available.
                "available" | "error" | "restoring" | "error_restoring" => Verdict::Settled,
                "deleting" | "error_deleting" | "deleted" => Verdict::Lost(format!(
                    "backup {id} is being deleted by someone else (status `{status}`)"
                )),
                "creating" | "backing-up" => Verdict::Working,
                _ => Verdict::Unknown,
            },
            |_, _| {},
        )
        .await?;
    match end {
        Ok(backup) => record_result(runner, &id, &backup, !work.share_to.is_empty()),
        Err(PollEnd::Failed(reason)) => runner.fail_then_cleanup(JobStatus::Failed, &reason, false),
        Err(PollEnd::Deadline) => {
            // The snapshot is still being read by the backup and cannot be deleted.
            if let Some(snap) = runner.job.snapshot_id.clone() {
                runner.warn(&format!(
                    "snapshot {snap} left in place: backup {id} is still running"
                ))?;
            }
            let reason = format!(
                "backup {id} did not reach a terminal status within the completion timeout ({})",
                runner.timeout_text()
            );
            runner.give_up(JobStatus::TimedOut, &reason)
        }
    }
}

/// Records a backup in a terminal status: success with its size and
/// duration, or the cloud's reason for the failure.
/// `shares`: the policy shares its backups.
fn record_result(
    runner: &mut JobRunner,
    id: &str,
    b: &Backup,
    shares: bool,
) -> Result<(), StoreError> {
    let succeeded = b.status != "error";
    let reason = match (succeeded, b.fail_reason.as_deref()) {
        (true, _) => None,
        (false, Some(r)) if !r.trim().is_empty() => Some(r.to_string()),
        (false, _) => Some(format!(
            "backup {id} went to status `error` without a fail_reason"
        )),
    };
    let backup_took = succeeded
        .then(|| took(runner, b.created_at, b.updated_at))
        .flatten();
    let outcome = settled_outcome(succeeded, shares);
    let update = JobUpdate {
        status: Some(if succeeded {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        }),
        size_gb: b.size.and_then(|s| i64::try_from(s).ok()),
        is_incremental: b.is_incremental,
        fail_reason: reason.as_deref(),
        retry_at: if succeeded { None } else { runner.retry_at() },
        backup_took,
        ..Default::default()
    };
    let note = match &reason {
        None => format!("backup {id} available"),
        Some(r) => format!("backup {id} failed: {r}"),
    };
    runner.advance(outcome, update, &note)
}

/// How long a backup took on the cloud (`created_at` to `updated_at`), else
/// since the job's attempt began: what polling learns from.
pub(super) fn took(
    runner: &JobRunner,
    created_at: Option<chrono::DateTime<Utc>>,
    updated_at: Option<chrono::DateTime<Utc>>,
) -> Option<std::time::Duration> {
    let on_cloud = match (created_at, updated_at) {
        (Some(c), Some(u)) if u > c => (u - c).to_std().ok(),
        _ => None,
    };
    on_cloud.or_else(|| (Utc::now() - runner.job.attempt_started_at).to_std().ok())
}

/// Where a settled backup goes: sharing when it is good and shared.
pub(super) fn settled_outcome(succeeded: bool, shares: bool) -> Outcome {
    if succeeded && shares {
        Outcome::ReadyToShare
    } else {
        Outcome::Ready
    }
}

/// Whether `full_backup_every` asks for a full backup this time.
fn full_backup_due(runner: &JobRunner, work: &BackupWork) -> Result<bool, StoreError> {
    Ok(match work.full_backup_every {
        Some(n) => {
            runner
                .store
                .incrementals_since_full(&runner.policy.name, &runner.job.target)?
                + 1
                >= n
        }
        None => false,
    })
}

/// Whether any of `volumes` is due a full backup: a CBR run is one
/// checkpoint, full or incremental for all its volumes.
pub(super) fn full_backup_due_any(
    runner: &JobRunner,
    full_backup_every: Option<u32>,
    volumes: &[&str],
) -> Result<bool, StoreError> {
    let Some(n) = full_backup_every else {
        return Ok(false);
    };
    for volume in volumes {
        if runner
            .store
            .incrementals_since_full(&runner.policy.name, volume)?
            + 1
            >= n
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Polling waits for this job's backup: shaped by how long the volume's
/// earlier backups of the same kind took, or the plain growing waits for
/// its first backup.
pub(super) fn cadence(runner: &JobRunner, work: &BackupWork) -> Result<Cadence, StoreError> {
    let earlier = runner.store.backup_durations(
        &runner.job.cloud,
        &runner.job.target,
        Some(!full_backup_due(runner, work)?),
    )?;
    Ok(match Expected::from_history(&earlier) {
        Some(expected) => {
            let since = (Utc::now() - runner.job.attempt_started_at)
                .to_std()
                .unwrap_or_default();
            Cadence::expecting(&runner.policy.poll, expected, since)
        }
        None => Cadence::new(&runner.policy.poll),
    })
}
