//! Kind `restore`: choose the backup → create the volume to restore into
//! (or take the existing one) → restore → run `verify` → delete the
//! scratch volume. The restore itself is asked for once: after a lost
//! answer or a restart the volume shows whether the cloud took it.

use std::collections::BTreeMap;

use chrono::Utc;

use super::super::create::create_or_adopt;
use super::super::machine::Outcome;
use super::super::poll::{Cadence, PollEnd};
use super::watch::{Verdict, Watch};
use super::{verify, JobRunner};
use crate::api::types::{Backup, Job, JobState, Volume};
use crate::api::NewVolume;
use crate::config::{Pick, RestoreApi, RestoreInto, RestoreWork};
use crate::store::{JobStatus, JobUpdate, Phase, StoreError};

/// The metadata key that marks a volume as the agent's, with its job.
pub const VOLUME_MARK: &str = "vbs-agent-restore-job";

/// One step of a restore job.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &RestoreWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::VolumeRequested => request_volume(runner, work).await,
        Phase::VolumeCreating => volume_ready(runner).await,
        Phase::RestoreRequested => request_restore(runner).await,
        Phase::Restoring => restored(runner).await,
        Phase::Verifying => verify::verify(runner, work).await,
        other => runner.misplaced(other),
    }
}

/// The backup to restore, checked to be available and recorded with its
/// age and size; `None` when the job has failed for want of one.
async fn backup(runner: &mut JobRunner, work: &RestoreWork) -> Result<Option<Backup>, StoreError> {
    let id = match runner.job.backup_id.clone() {
        Some(id) => id,
        None => {
            let chosen = choose(runner, work.pick).await;
            match settle_choice(runner, chosen, "backup")? {
                Some(id) => id,
                None => return Ok(None),
            }
        }
    };
    let found = runner.client.backup(&id).await;
    let seen = found.as_ref().map(|b| Seen {
        status: &b.status,
        created_at: b.created_at,
        size_gb: b.size.and_then(|s| i64::try_from(s).ok()),
    });
    let ok = accept(runner, &id, seen, "backup")?;
    Ok(found.ok().filter(|_| ok))
}

/// What the agent sees of the backup to restore.
pub(super) struct Seen<'a> {
    pub status: &'a str,
    pub created_at: Option<chrono::DateTime<Utc>>,
    pub size_gb: Option<i64>,
}

/// Records backup `id` for the job when it is available (or being restored
/// from); otherwise fails the job with why. Returns whether it was taken.
pub(super) fn accept(
    runner: &mut JobRunner,
    id: &str,
    seen: Result<Seen<'_>, &crate::api::ApiError>,
    what: &str,
) -> Result<bool, StoreError> {
    let reason = match seen {
        Ok(b) if b.status == "available" || b.status == "restoring" => {
            runner.store.set_restore_backup(
                runner.job.id,
                id,
                b.created_at,
                b.size_gb,
                Utc::now(),
            )?;
            runner.job.backup_id = Some(id.to_string());
            runner.job.size_gb = b.size_gb;
            return Ok(true);
        }
        Ok(b) => format!("{what} {id} is `{}`, not available", b.status),
        Err(e) if e.is_not_found() => format!("{what} {id} no longer exists"),
        Err(e) => format!("cannot read {what} {id}: {e}"),
    };
    runner.fail_then_cleanup(JobStatus::Failed, &reason, false)?;
    Ok(false)
}

/// The id `choose` gave, or the job failed: without a `what` to restore,
/// or (worth a retry) unable to list them.
pub(super) fn settle_choice(
    runner: &mut JobRunner,
    chosen: Result<Option<String>, String>,
    what: &str,
) -> Result<Option<String>, StoreError> {
    match chosen {
        Ok(Some(id)) => Ok(Some(id)),
        Ok(None) => {
            let reason = format!(
                "volume {} has no available {what} to restore",
                runner.job.target
            );
            runner.fail_then_cleanup(JobStatus::Failed, &reason, false)?;
            Ok(None)
        }
        Err(reason) => {
            runner.fail_then_cleanup(JobStatus::Failed, &reason, true)?;
            Ok(None)
        }
    }
}

/// The newest available backup of the job's volume, or a random one.
async fn choose(runner: &JobRunner, pick: Pick) -> Result<Option<String>, String> {
    let volume = &runner.job.target;
    let available = runner
        .client
        .backups_of_volume(volume)
        .await
        .map_err(|e| format!("cannot list the backups of volume {volume}: {e}"))?
        .into_iter()
        .filter(|b| b.status == "available")
        .map(|b| (b.id, b.created_at))
        .collect();
    Ok(pick_one(available, pick))
}

/// The newest of `available` (id, creation time), or a random one.
pub(super) fn pick_one(
    mut available: Vec<(String, Option<chrono::DateTime<Utc>>)>,
    pick: Pick,
) -> Option<String> {
    available.sort_by_key(|(_, at)| *at);
    let chosen = match pick {
        Pick::Newest => available.last(),
        Pick::Random if !available.is_empty() => available.get(fastrand::usize(..available.len())),
        Pick::Random => None,
    };
    chosen.map(|(id, _)| id.clone())
}

/// Creates the volume to restore into (or adopts the one an earlier call
/// made), or takes the existing one.
async fn request_volume(runner: &mut JobRunner, work: &RestoreWork) -> Result<(), StoreError> {
    let Some(backup) = backup(runner, work).await? else {
        return Ok(());
    };
    if let RestoreInto::Existing(id) = &work.into {
        let note = format!("restoring backup {} into existing volume {id}", backup.id);
        runner.store.set_restore_volume(runner.job.id, id)?;
        return runner.advance(Outcome::Created, JobUpdate::default(), &note);
    }
    let name = match &work.into {
        RestoreInto::NewVolume { name: Some(n), .. } => n.clone(),
        _ => runner.job.resource_name.clone(),
    };
    let zone = match &work.into {
        RestoreInto::NewVolume {
            availability_zone: Some(z),
            ..
        } => Some(z.clone()),
        _ => backup.availability_zone.clone(),
    };
    let metadata = BTreeMap::from([
        (VOLUME_MARK.to_string(), runner.job.id.to_string()),
        ("vbs-agent-backup".to_string(), backup.id.clone()),
    ]);
    let description = format!("vbs-agent restore of backup {}", backup.id);
    let size = backup.size.unwrap_or(1).max(1);
    let client = &runner.client;
    let created = create_or_adopt(
        "volume",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || async { Ok(ours(client.find_volumes(&name).await?, &metadata)) },
        || async {
            let v = NewVolume {
                name: &name,
                description: &description,
                size_gb: size,
                availability_zone: zone.as_deref(),
                metadata: &metadata,
            };
            Ok(client.create_volume(&v).await?.id)
        },
    )
    .await;
    let Some((id, how)) = runner.created(created)? else {
        return Ok(());
    };
    runner.store.set_restore_volume(runner.job.id, &id)?;
    let note = format!("volume {id} {how} ({size} GB) for backup {}", backup.id);
    runner.advance(Outcome::Created, JobUpdate::default(), &note)
}

/// The id of the volume among `found` that this job made.
fn ours(found: Vec<Volume>, metadata: &BTreeMap<String, String>) -> Option<String> {
    found
        .into_iter()
        .find(|v| v.metadata.get(VOLUME_MARK) == metadata.get(VOLUME_MARK))
        .map(|v| v.id)
}

/// The volume recorded for this job; `None` when it was lost (the job has
/// then ended).
pub(super) fn volume_id(runner: &mut JobRunner) -> Result<Option<String>, StoreError> {
    let id = runner.store.restore_columns(runner.job.id)?.volume_id;
    if id.is_none() {
        runner.give_up(
            JobStatus::Failed,
            "internal: restore phase without a volume id",
        )?;
    }
    Ok(id)
}

/// Waits until the volume is `available` to restore into.
pub(super) async fn volume_ready(runner: &mut JobRunner) -> Result<(), StoreError> {
    let Some(id) = volume_id(runner)? else {
        return Ok(());
    };
    let end = watch_volume(runner, &id, |status| match status {
        "available" => Verdict::Settled,
        "creating" | "downloading" => Verdict::Working,
        "in-use" | "attaching" | "reserved" => Verdict::Lost(format!(
            "volume {id} is attached (`{status}`); detach it before restoring into it"
        )),
        s if s.starts_with("error") || s == "deleting" => {
            Verdict::Lost(format!("volume {id} went to status `{s}`"))
        }
        _ => Verdict::Unknown,
    })
    .await?;
    match end {
        Ok(v) => {
            let size = v.size.unwrap_or_default();
            let needed = runner
                .job
                .size_gb
                .and_then(|s| u64::try_from(s).ok())
                .unwrap_or(0);
            if size < needed {
                let reason = format!(
                    "volume {id} has {size} GB; backup {} needs at least {needed} GB",
                    runner.job.backup_id.as_deref().unwrap_or("-")
                );
                return runner.fail_then_cleanup(JobStatus::Failed, &reason, false);
            }
            runner.advance(
                Outcome::Ready,
                JobUpdate::default(),
                &format!("volume {id} available"),
            )
        }
        Err(end) => ended(runner, &format!("volume {id} to be available"), end),
    }
}

/// Asks the cloud to restore the backup into the volume, unless it already
/// took the request (an answer lost, or a restart).
async fn request_restore(runner: &mut JobRunner) -> Result<(), StoreError> {
    let Some(volume) = volume_id(runner)? else {
        return Ok(());
    };
    let Some(backup) = runner.job.backup_id.clone() else {
        return runner.give_up(JobStatus::Failed, "internal: restore without a backup id");
    };
    let api = runner.client.restore_api();
    let client = &runner.client;
    let started = create_or_adopt(
        "restore",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || async {
            let v = client.volume(&volume).await?;
            let taken =
                v.status == "restoring-backup" || v.metadata.get("src_backup_id") == Some(&backup);
            Ok(taken.then(String::new))
        },
        || async {
            match api {
                RestoreApi::Cinder => {
                    client.restore_backup(&backup, &volume).await?;
                    Ok(String::new())
                }
                RestoreApi::Vendor => client.restore_backup_job(&backup, &volume).await,
            }
        },
    )
    .await;
    let Some((job, how)) = runner.created(started)? else {
        return Ok(());
    };
    let job = Some(job).filter(|j| !j.is_empty());
    runner
        .store
        .restore_started(runner.job.id, job.as_deref(), Utc::now())?;
    let via = job
        .as_ref()
        .map_or(String::new(), |j| format!(" as job {j}"));
    let note = format!("restore of backup {backup} into volume {volume} {how}{via}");
    runner.advance(Outcome::Created, JobUpdate::default(), &note)
}

/// Waits for the restore to end: the vendor's job, then the volume.
pub(super) async fn restored(runner: &mut JobRunner) -> Result<(), StoreError> {
    let Some(volume) = volume_id(runner)? else {
        return Ok(());
    };
    let columns = runner.store.restore_columns(runner.job.id)?;
    if let Some(job) = columns.restore_job_id {
        if !vendor_job_done(runner, &job).await? {
            return Ok(());
        }
    }
    let end = watch_volume(runner, &volume, |status| match status {
        "available" => Verdict::Settled,
        "restoring-backup" => Verdict::Working,
        s if s.starts_with("error") => Verdict::Lost(format!(
            "the restore into volume {volume} failed: the volume went to `{s}`"
        )),
        _ => Verdict::Unknown,
    })
    .await?;
    match end {
        Ok(_) => {
            let now = Utc::now();
            runner.store.restore_finished(runner.job.id, now)?;
            let took = columns
                .restore_started_at
                .and_then(|s| (now - s).to_std().ok())
                .map_or(String::new(), |d| {
                    format!(" in {}", humantime::format_duration(whole_seconds(d)))
                });
            let note = format!("volume {volume} restored{took}");
            runner.advance(Outcome::Ready, JobUpdate::default(), &note)
        }
        Err(end) => ended(runner, &format!("the restore into volume {volume}"), end),
    }
}

/// Waits for the vendor's restore job; false when the job has ended the
/// restore (failed or timed out).
async fn vendor_job_done(runner: &mut JobRunner, job: &str) -> Result<bool, StoreError> {
    let client = runner.client.clone();
    let end = watch_job(runner, "restore job", job, || client.job(job)).await?;
    match end {
        Ok(j) if j.state == JobState::Success => Ok(true),
        Ok(j) => {
            let reason = format!("restore job {job} failed: {}", j.failure());
            runner.fail_then_cleanup(JobStatus::Failed, &reason, false)?;
            Ok(false)
        }
        Err(end) => ended(runner, &format!("restore job {job}"), end).map(|()| false),
    }
}

/// Watches a vendor job (VBS's restore, EVS's new disk) until it ends.
pub(super) async fn watch_job<Fut>(
    runner: &mut JobRunner,
    what: &'static str,
    job: &str,
    look: impl Fn() -> Fut,
) -> Result<Result<Job, PollEnd<String>>, StoreError>
where
    Fut: std::future::Future<Output = Result<Job, crate::api::ApiError>>,
{
    let watch = Watch {
        what,
        id: job,
        cadence: Cadence::new(&runner.policy.poll),
    };
    runner
        .watch(
            watch,
            look,
            |j| match j.state {
                JobState::Running => "RUNNING",
                JobState::Success => "SUCCESS",
                JobState::Fail => "FAIL",
            },
            |status| match status {
                "RUNNING" => Verdict::Working,
                _ => Verdict::Settled,
            },
            |_, _| {},
        )
        .await
}

/// Watches volume `id` until `judge` settles it.
async fn watch_volume(
    runner: &mut JobRunner,
    id: &str,
    judge: impl Fn(&str) -> Verdict,
) -> Result<Result<Volume, PollEnd<String>>, StoreError> {
    let client = runner.client.clone();
    let watch = Watch {
        what: "volume",
        id,
        cadence: Cadence::new(&runner.policy.poll),
    };
    runner
        .watch(
            watch,
            || client.volume(id),
            |v| v.status.as_str(),
            judge,
            |_, _| {},
        )
        .await
}

/// A wait for `what` that did not end well: the failure, or the deadline.
pub(super) fn ended(
    runner: &mut JobRunner,
    what: &str,
    end: PollEnd<String>,
) -> Result<(), StoreError> {
    match end {
        PollEnd::Failed(reason) => runner.fail_then_cleanup(JobStatus::Failed, &reason, false),
        PollEnd::Deadline => {
            let reason = format!(
                "timed out waiting for {what} (completion timeout {})",
                runner.timeout_text()
            );
            runner.fail_then_cleanup(JobStatus::TimedOut, &reason, false)
        }
    }
}

/// `d` without its fraction of a second, for messages.
pub(super) fn whole_seconds(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs())
}
