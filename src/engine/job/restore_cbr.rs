//! Kind `restore` of a CBR backup. CBR restores a disk backup only onto
//! its own disk, one restore at a time, so a restore into a new or scratch
//! volume (every drill) is a new disk made from the backup through EVS
//! (`POST /v2/{project}/cloudvolumes`, followed as an EVS job); a restore
//! into the backup's own disk is CBR's restore.
//!
//! ```text
//! new disk:  volume_requested (cloudvolumes; its job recorded) → volume_creating (job, then
//!            the disk available) → restore_requested → restoring (nothing left to do)
//!            → verifying → cleanup → done
//! own disk:  volume_requested → volume_creating → restore_requested (CBR restore)
//!            → restoring (the disk back to available) → verifying → cleanup → done
//! ```

use chrono::Utc;

use super::super::create::create_or_adopt;
use super::super::machine::Outcome;
use super::restore::{
    accept, ended, pick_one, restored, settle_choice, volume_id, volume_ready, watch_job,
    whole_seconds, Seen,
};
use super::{verify, JobRunner};
use crate::api::types::{CbrBackup, JobState};
use crate::api::NewDiskFromBackup;
use crate::config::{Pick, RestoreInto, RestoreWork};
use crate::store::{JobStatus, JobUpdate, Phase, StoreError};

/// The disk type of a new disk when the backup's own disk is gone.
const FALLBACK_VOLUME_TYPE: &str = "SATA";

/// One step of a restore job of a CBR backup.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &RestoreWork,
    phase: Phase,
) -> Result<(), StoreError> {
    let onto_own_disk = matches!(work.into, RestoreInto::Existing(_));
    match phase {
        Phase::VolumeRequested => request_volume(runner, work).await,
        Phase::VolumeCreating if onto_own_disk => volume_ready(runner).await,
        Phase::VolumeCreating => disk_made(runner, work).await,
        Phase::RestoreRequested if onto_own_disk => request_restore(runner).await,
        Phase::RestoreRequested => runner.advance(
            Outcome::Created,
            JobUpdate::default(),
            "the disk was made from the backup: no restore onto it is needed",
        ),
        Phase::Restoring if onto_own_disk => restored(runner).await,
        Phase::Restoring => {
            runner.store.restore_finished(runner.job.id, Utc::now())?;
            runner.advance(Outcome::Ready, JobUpdate::default(), "disk restored")
        }
        Phase::Verifying => verify::verify(runner, work).await,
        other => runner.misplaced(other),
    }
}

/// The CBR backup to restore, checked to be available and recorded with
/// its age and size; `None` when the job has failed for want of one.
async fn backup(runner: &mut JobRunner, pick: Pick) -> Result<Option<CbrBackup>, StoreError> {
    let id = match runner.job.backup_id.clone() {
        Some(id) => id,
        None => {
            let chosen = choose(runner, pick).await;
            match settle_choice(runner, chosen, "CBR backup")? {
                Some(id) => id,
                None => return Ok(None),
            }
        }
    };
    let found = runner.client.cbr_backup(&id).await;
    let seen = found.as_ref().map(|b| Seen {
        status: &b.status,
        created_at: b.created_at,
        size_gb: b.resource_size.and_then(|s| i64::try_from(s).ok()),
    });
    let ok = accept(runner, &id, seen, "CBR backup")?;
    Ok(found.ok().filter(|_| ok))
}

/// The newest available CBR backup of the job's volume, or a random one.
async fn choose(runner: &JobRunner, pick: Pick) -> Result<Option<String>, String> {
    let volume = runner.job.target.as_str();
    let available = runner
        .client
        .cbr_backups(&[("resource_id", volume), ("status", "available")])
        .await
        .map_err(|e| format!("cannot list the CBR backups of volume {volume}: {e}"))?
        .into_iter()
        .filter(|b| b.status == "available" && b.resource_id.as_deref() == Some(volume))
        .map(|b| (b.id, b.created_at))
        .collect();
    Ok(pick_one(available, pick))
}

/// Makes the new disk from the backup (or adopts the one an earlier call
/// made), or takes the backup's own disk.
async fn request_volume(runner: &mut JobRunner, work: &RestoreWork) -> Result<(), StoreError> {
    let Some(backup) = backup(runner, work.pick).await? else {
        return Ok(());
    };
    let own = backup.resource_id.clone().unwrap_or_default();
    if let RestoreInto::Existing(id) = &work.into {
        if *id != own {
            let reason = format!(
                "CBR restores backup {} only onto its own disk {own}, not volume {id}; restore into a new volume instead",
                backup.id
            );
            return runner.fail_then_cleanup(JobStatus::Failed, &reason, false);
        }
        runner.store.set_restore_volume(runner.job.id, id)?;
        let note = format!("restoring CBR backup {} onto its own disk {id}", backup.id);
        return runner.advance(Outcome::Created, JobUpdate::default(), &note);
    }
    let name = disk_name(runner, work);
    let zone = match &work.into {
        RestoreInto::NewVolume {
            availability_zone: Some(z),
            ..
        } => z.clone(),
        _ => backup.resource_az.clone().unwrap_or_default(),
    };
    let volume_type = match runner.client.volume(&own).await {
        Ok(v) => v.volume_type.unwrap_or_else(|| FALLBACK_VOLUME_TYPE.into()),
        Err(_) => FALLBACK_VOLUME_TYPE.into(),
    };
    let size = backup.resource_size.unwrap_or(1).max(1);
    let description = format!("vbs-agent restore of CBR backup {}", backup.id);
    let since = runner.job.attempt_started_at;
    let client = &runner.client;
    let made = std::sync::Mutex::new(None);
    let created = create_or_adopt(
        "disk from a CBR backup",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || disk_named(client, &name, since),
        || async {
            let disk = NewDiskFromBackup {
                backup_id: &backup.id,
                availability_zone: &zone,
                size_gb: size,
                volume_type: &volume_type,
                name: &name,
                description: &description,
            };
            let job = client.create_disk_from_backup(&disk).await?;
            *made.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
            Ok(String::new())
        },
    )
    .await;
    let Some((volume, how)) = runner.created(created)? else {
        return Ok(());
    };
    let job = made.into_inner().unwrap_or_else(|p| p.into_inner());
    runner
        .store
        .restore_started(runner.job.id, job.as_deref(), Utc::now())?;
    let note = if volume.is_empty() {
        let job = job.as_deref().unwrap_or("-");
        format!(
            "disk ({size} GB, {zone}) asked for from CBR backup {} as EVS job {job}",
            backup.id
        )
    } else {
        runner.store.set_restore_volume(runner.job.id, &volume)?;
        format!("disk {volume} {how} from CBR backup {}", backup.id)
    };
    runner.advance(Outcome::Created, JobUpdate::default(), &note)
}

/// The name of the job's new disk.
fn disk_name(runner: &JobRunner, work: &RestoreWork) -> String {
    match &work.into {
        RestoreInto::NewVolume { name: Some(n), .. } => n.clone(),
        _ => runner.job.resource_name.clone(),
    }
}

/// The disk named `name` made since `since`: this job's.
async fn disk_named(
    client: &crate::api::CloudClient,
    name: &str,
    since: chrono::DateTime<Utc>,
) -> Result<Option<String>, crate::api::ApiError> {
    Ok(client
        .find_volumes(name)
        .await?
        .into_iter()
        .find(|v| v.created_at.is_none_or(|at| at >= since))
        .map(|v| v.id))
}

/// After the EVS job failed or ran out of time: the disk it may have made
/// anyway, found by name and recorded, so that cleanup deletes it.
async fn record_stray_disk(runner: &mut JobRunner, work: &RestoreWork) -> Result<(), StoreError> {
    let name = disk_name(runner, work);
    let found = disk_named(&runner.client, &name, runner.job.attempt_started_at).await;
    match found {
        Ok(Some(volume)) => {
            runner.store.set_restore_volume(runner.job.id, &volume)?;
            runner.note(&format!(
                "disk {volume} found by name after its EVS job; it is deleted in cleanup"
            ))
        }
        Ok(None) => Ok(()),
        Err(e) => runner.warn(&format!(
            "cannot look for a disk named {name} the EVS job may have left: {e}"
        )),
    }
}

/// Follows the EVS job that makes the disk until it names the disk, then
/// waits for the disk to be available.
async fn disk_made(runner: &mut JobRunner, work: &RestoreWork) -> Result<(), StoreError> {
    let columns = runner.store.restore_columns(runner.job.id)?;
    if columns.volume_id.is_none() {
        let Some(job) = columns.restore_job_id else {
            return runner.give_up(
                JobStatus::Failed,
                "internal: a disk from a CBR backup without its EVS job or disk",
            );
        };
        let client = runner.client.clone();
        let end = watch_job(runner, "EVS job", &job, || client.volume_job(&job)).await?;
        match end {
            Ok(j) if j.state == JobState::Success => match j.entities.get("volume_id") {
                Some(volume) => {
                    runner.store.set_restore_volume(runner.job.id, volume)?;
                    runner.note(&format!("EVS job {job} made disk {volume}"))?;
                }
                None => {
                    record_stray_disk(runner, work).await?;
                    let reason = format!("EVS job {job} succeeded without naming its disk");
                    return runner.fail_then_cleanup(JobStatus::Failed, &reason, false);
                }
            },
            Ok(j) => {
                record_stray_disk(runner, work).await?;
                let reason = format!("EVS job {job} failed: {}", j.failure());
                return runner.fail_then_cleanup(JobStatus::Failed, &reason, false);
            }
            Err(end) => {
                record_stray_disk(runner, work).await?;
                return ended(runner, &format!("EVS job {job}"), end);
            }
        }
    }
    volume_ready(runner).await
}

/// Asks CBR to restore the backup onto its own disk, unless it already
/// took the request (an answer lost, or a restart): the disk then shows
/// `restoring-backup`.
async fn request_restore(runner: &mut JobRunner) -> Result<(), StoreError> {
    let Some(volume) = volume_id(runner)? else {
        return Ok(());
    };
    let Some(backup) = runner.job.backup_id.clone() else {
        return runner.give_up(JobStatus::Failed, "internal: restore without a backup id");
    };
    let client = &runner.client;
    let started = create_or_adopt(
        "CBR restore",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || async {
            let v = client.volume(&volume).await?;
            Ok((v.status == "restoring-backup").then(String::new))
        },
        || async {
            client.restore_cbr_backup(&backup, &volume).await?;
            Ok(String::new())
        },
    )
    .await;
    let Some((_, how)) = runner.created(started)? else {
        return Ok(());
    };
    let at = Utc::now();
    runner.store.restore_started(runner.job.id, None, at)?;
    let took = (at - runner.job.attempt_started_at)
        .to_std()
        .map(|d| humantime::format_duration(whole_seconds(d)).to_string())
        .unwrap_or_default();
    let note = format!("CBR restore of backup {backup} onto disk {volume} {how} (after {took})");
    runner.advance(Outcome::Created, JobUpdate::default(), &note)
}
