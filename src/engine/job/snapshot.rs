//! Kind `snapshot`: the snapshot alone, kept on the block store. Its two
//! steps (create, wait for `available`) are also the first two of kind
//! `backup`, and removing a temporary snapshot is part of every cleanup.

use tokio::time::Instant;

use super::super::create::{create_or_adopt, Created};
use super::super::machine::Outcome;
use super::super::poll::{poll_until, Cadence, Look, PollEnd};
use super::watch::{Verdict, Watch};
use super::{JobRunner, CLEANUP_BUDGET};
use crate::api::{Deadline, ErrorClass, NewSnapshot};
use crate::config::SnapshotWork;
use crate::store::{JobStatus, JobUpdate, Phase, StoreError};

/// One step of a snapshot job.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &SnapshotWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::SnapshotRequested => request(runner, work.force).await,
        Phase::SnapshotCreating => {
            let Some((id, size)) = available(runner).await? else {
                return Ok(());
            };
            // A snapshot policy is done when its snapshot is.
            let update = JobUpdate {
                status: Some(JobStatus::Succeeded),
                size_gb: size.and_then(|s| i64::try_from(s).ok()),
                ..Default::default()
            };
            runner.advance(Outcome::Ready, update, &format!("snapshot {id} available"))
        }
        other => runner.misplaced(other),
    }
}

/// Creates the job's snapshot, or adopts the one an earlier call made;
/// `force` snapshots an attached volume too.
pub(super) async fn request(runner: &mut JobRunner, force: bool) -> Result<(), StoreError> {
    let (name, volume, description) = (
        runner.job.resource_name.clone(),
        runner.job.target.clone(),
        runner.description(),
    );
    let client = &runner.client;
    let created = create_or_adopt(
        "snapshot",
        &runner.policy.poll,
        runner.deadline,
        runner.maybe_exists,
        || async {
            Ok(client
                .find_snapshots(&name, &volume)
                .await?
                .into_iter()
                .next()
                .map(|s| s.id))
        },
        || async {
            let s = NewSnapshot {
                volume_id: &volume,
                name: &name,
                description: &description,
                force,
            };
            Ok(client.create_snapshot(&s).await?.id)
        },
    )
    .await;
    if runner.ended_gone(&created).await? {
        return Ok(());
    }
    let Some((id, how)) = runner.created(created)? else {
        return Ok(());
    };
    let update = JobUpdate {
        snapshot_id: Some(&id),
        ..Default::default()
    };
    runner.advance(Outcome::Created, update, &format!("snapshot {id} {how}"))
}

/// Waits for the job's snapshot to become available. Returns its id and
/// size; `None` when the job has already moved on (failed or timed out).
pub(super) async fn available(
    runner: &mut JobRunner,
) -> Result<Option<(String, Option<u64>)>, StoreError> {
    let Some(id) = runner.job.snapshot_id.clone() else {
        runner.give_up(
            JobStatus::Failed,
            "internal: snapshot phase without a snapshot id",
        )?;
        return Ok(None);
    };
    let client = runner.client.clone();
    let watch = Watch {
        what: "snapshot",
        id: &id,
        cadence: Cadence::new(&runner.policy.poll),
    };
    let end = runner
        .watch(
            watch,
            || client.snapshot(&id),
            |s| s.status.as_str(),
            |status| match status {
                "available" => Verdict::Settled,
                s if s.starts_with("error") => {
                    Verdict::Lost(format!("snapshot {id} went to status `{s}`"))
                }
                _ => Verdict::Working,
            },
            |_, _| {},
        )
        .await?;
    match end {
        Ok(snapshot) => return Ok(Some((id, snapshot.size))),
        Err(PollEnd::Failed(reason)) => {
            runner.fail_then_cleanup(JobStatus::Failed, &reason, true)?
        }
        Err(PollEnd::Deadline) => runner.fail_then_cleanup(
            JobStatus::TimedOut,
            &format!("snapshot {id} not available within the completion timeout"),
            false,
        )?,
    }
    Ok(None)
}

/// Deletes the snapshot and waits until it is gone. `asked_before`: an
/// earlier process may already have asked (a job continued in cleanup);
/// the snapshot is then looked at first. Otherwise the delete goes out at
/// once, and the snapshot is looked at only when the cloud refuses it.
pub(super) async fn delete(runner: &JobRunner, id: &str, asked_before: bool) -> Result<(), String> {
    let deadline = Instant::now() + CLEANUP_BUDGET;
    let client = &runner.client.until(Deadline::new(deadline));
    // "Already deleting or gone" counts as done: a restarted agent may
    // have asked before, someone else may be deleting it, and Cinder
    // refuses a second delete with a 400.
    let gone_or_going = || async {
        match client.snapshot(id).await {
            Err(e) if e.is_not_found() => Ok(true),
            Ok(s) => Ok(s.status == "deleting"),
            Err(e) => Err(e),
        }
    };
    let created = create_or_adopt(
        "snapshot deletion",
        &runner.policy.poll,
        deadline,
        asked_before,
        || async { Ok(gone_or_going().await?.then(String::new)) },
        || async {
            match client.delete_snapshot(id).await {
                Ok(()) => Ok(String::new()),
                Err(e) if e.is_not_found() => Ok(String::new()),
                // Refused: the look says whether it is already on its way.
                Err(e) if e.status.is_some_and(|s| (400..500).contains(&s)) => {
                    match gone_or_going().await {
                        Ok(true) => Ok(String::new()),
                        _ => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
        },
    )
    .await;
    match created {
        Created::Id { .. } => {}
        Created::Refused { reason, .. } | Created::TimedOut(reason) => return Err(reason),
    }
    poll_until(&runner.policy.poll, deadline, || async {
        match client.snapshot(id).await {
            Err(e) if e.is_not_found() => Look::Done(()),
            Ok(s) if s.status == "error_deleting" => {
                Look::Fail(format!("snapshot {id} went to `error_deleting`"))
            }
            Ok(_) => Look::Pending,
            Err(e) => match e.class {
                ErrorClass::Retryable | ErrorClass::BadAnswer => Look::Pending,
                _ => Look::Fail(e.to_string()),
            },
        }
    })
    .await
    .map_err(|end| match end {
        PollEnd::Deadline => format!(
            "snapshot {id} still present after {}",
            humantime::format_duration(CLEANUP_BUDGET)
        ),
        PollEnd::Failed(r) => r,
    })
}
