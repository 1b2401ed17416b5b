//! Kind `server`: a CSBS backup of a whole server.
//!
//! ```text
//! pending → protect_requested (protect; checkpoint id recorded)
//!         → checkpoint_creating (find the checkpoint item, then poll it) → cleanup → done
//! ```
//! The protect call is made at most once per attempt: when its outcome is
//! unknown (or the job is continued after a restart) the item is first
//! looked up by its deterministic name. The item may not be listed yet
//! right after protect, so an empty list is asked again within the job's
//! completion timeout.

use std::sync::Mutex;

use chrono::Utc;

use super::super::create::create_or_adopt;
use super::super::machine::Outcome;
use super::super::poll::{Cadence, PollEnd};
use super::watch::{Verdict, Watch};
use super::JobRunner;
use crate::api::types::CheckpointItem;
use crate::api::{ApiError, CloudClient};
use crate::config::ServerWork;
use crate::store::{JobStatus, JobUpdate, Phase, ServerVolumeBackup, StoreError};

/// How long after a protect its checkpoint item may still be missing from
/// the item list, for a job continued after a restart.
const ITEM_LISTING_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// The checkpoint of `server`'s backup named `name`, if CSBS lists one.
async fn checkpoint_named(
    client: &CloudClient,
    name: &str,
    server: &str,
) -> Result<Option<String>, ApiError> {
    Ok(client
        .find_checkpoint_items(name, server)
        .await?
        .into_iter()
        .find_map(|i| i.checkpoint_id))
}

/// One step of a server job.
pub(super) async fn step(
    runner: &mut JobRunner,
    work: &ServerWork,
    phase: Phase,
) -> Result<(), StoreError> {
    match phase {
        Phase::ProtectRequested => runner.request_protect(&work.provider_id).await,
        Phase::CheckpointCreating => runner.await_checkpoint().await,
        other => runner.misplaced(other),
    }
}

impl JobRunner {
    /// Protects the server, or adopts the backup an earlier call made.
    async fn request_protect(&mut self, provider: &str) -> Result<(), StoreError> {
        let (name, server, description) = (
            self.job.resource_name.clone(),
            self.job.target.clone(),
            self.description(),
        );
        if self.maybe_exists {
            if let Some(id) = self.listed_late(&name, &server).await? {
                self.maybe_exists = false;
                self.store.set_checkpoint(self.job.id, &id, Utc::now())?;
                let note = format!("server backup (checkpoint {id}) adopted by name");
                return self.advance(Outcome::Created, JobUpdate::default(), &note);
            }
        }
        let client = &self.client;
        let created = create_or_adopt(
            "server backup",
            &self.policy.poll,
            self.deadline,
            self.maybe_exists,
            || checkpoint_named(client, &name, &server),
            || async {
                Ok(client
                    .protect_server(provider, &server, &name, &description)
                    .await?
                    .id)
            },
        )
        .await;
        if self.ended_gone(&created).await? {
            return Ok(());
        }
        let Some((id, how)) = self.created(created)? else {
            return Ok(());
        };
        self.store.set_checkpoint(self.job.id, &id, Utc::now())?;
        let note = format!("server backup (checkpoint {id}) {how}");
        self.advance(Outcome::Created, JobUpdate::default(), &note)
    }

    /// The checkpoint of a protect an earlier process may have sent, found
    /// by name. CSBS lists a new checkpoint item only a while after the
    /// protect, so an empty list is asked again until [`ITEM_LISTING_GRACE`]
    /// after the job entered this phase: a restart right after the protect
    /// must not take "not listed yet" for "never made".
    async fn listed_late(&self, name: &str, server: &str) -> Result<Option<String>, StoreError> {
        let client = &self.client;
        self.listed_since_phase(ITEM_LISTING_GRACE, || {
            checkpoint_named(client, name, server)
        })
        .await
    }

    /// Finds the checkpoint item (once) and polls it to `available` or `error`.
    async fn await_checkpoint(&mut self) -> Result<(), StoreError> {
        if self.job.backup_id.is_none() {
            let Some(checkpoint) = self.store.server_columns(self.job.id)?.checkpoint_id else {
                return self.give_up(
                    JobStatus::Failed,
                    "internal: server backup phase without a checkpoint id",
                );
            };
            match self.find_item(&checkpoint).await? {
                Some(item) => {
                    self.apply(
                        JobUpdate {
                            backup_id: Some(&item),
                            ..Default::default()
                        },
                        &format!("checkpoint {checkpoint} has item {item}"),
                    )?;
                }
                None => {
                    let reason = format!(
                        "checkpoint {checkpoint} listed no checkpoint item within the completion timeout ({})",
                        self.timeout_text()
                    );
                    return self.give_up(JobStatus::TimedOut, &reason);
                }
            }
        }
        let Some(id) = self.job.backup_id.clone() else {
            return self.give_up(JobStatus::Failed, "internal: no checkpoint item id");
        };
        let client = self.client.clone();
        let last_progress = Mutex::new(self.store.server_columns(self.job.id)?.progress);
        let watch = Watch {
            what: "checkpoint item",
            id: &id,
            cadence: Cadence::new(&self.policy.poll),
        };
        let end = self
            .watch(
                watch,
                || client.checkpoint_item(&id),
                |item| item.status.as_str(),
                |status| match status {
                    "available" | "error" => Verdict::Settled,
                    "waiting_delete" | "deleting" | "deleted" => Verdict::Lost(format!(
                        "server backup {id} is being deleted by someone else (status `{status}`)"
                    )),
                    "waiting_protect" | "protecting" => Verdict::Working,
                    _ => Verdict::Unknown,
                },
                |runner, item| {
                    if let Some(p) = item.extend_info.progress {
                        note_progress(runner, &last_progress, &id, p);
                    }
                },
            )
            .await?;
        match end {
            Ok(item) => self.record_checkpoint_result(&item),
            Err(PollEnd::Failed(reason)) => {
                self.fail_then_cleanup(JobStatus::Failed, &reason, false)
            }
            Err(PollEnd::Deadline) => {
                let reason = format!(
                    "server backup {id} did not reach a terminal status within the completion timeout ({})",
                    self.timeout_text()
                );
                self.give_up(JobStatus::TimedOut, &reason)
            }
        }
    }

    /// The id of the item of `checkpoint`, asking again while the list is
    /// still empty; `None` when the deadline passed first.
    async fn find_item(&mut self, checkpoint: &str) -> Result<Option<String>, StoreError> {
        let client = self.client.clone();
        let (found, empty) = self
            .find_listed(self.deadline, "checkpoint", checkpoint, || async {
                Ok(client
                    .checkpoint_items(&[("checkpoint_id", checkpoint)])
                    .await?
                    .into_iter()
                    .find(|i| i.checkpoint_id.as_deref().is_none_or(|c| c == checkpoint))
                    .map(|item| item.id))
            })
            .await?;
        if empty > 0 {
            self.warn(&format!(
                "checkpoint {checkpoint}: the item list was still empty {empty} time(s); asked again"
            ))?;
        }
        Ok(found)
    }

    /// Records a terminal item: volume backups, failure code, status.
    fn record_checkpoint_result(&mut self, item: &CheckpointItem) -> Result<(), StoreError> {
        let info = &item.extend_info;
        let volumes: Vec<ServerVolumeBackup> = info
            .volume_backups
            .iter()
            .map(|v| ServerVolumeBackup {
                volume_backup_id: v.id.clone(),
                source_volume_id: v.source_volume_id.clone(),
                source_volume_name: v.source_volume_name.clone(),
                status: v.status.clone(),
                size_mb: v.size,
                incremental: v.incremental,
                bootable: v.bootable,
            })
            .collect();
        let fail_code = info.fail_code.as_ref().and_then(|c| c.describe());
        self.store.record_server_result(
            self.job.id,
            &item.id,
            fail_code.as_deref(),
            &volumes,
            Utc::now(),
        )?;
        if let Some(p) = info.progress {
            self.store.set_progress(self.job.id, p, Utc::now())?;
        }
        let succeeded = item.status == "available";
        let reason = (!succeeded).then(|| {
            item.failure().unwrap_or_else(|| {
                format!(
                    "server backup {} went to status `error` without a fail_reason",
                    item.id
                )
            })
        });
        // Whole GB, rounded up, from the backup's MB; else the volumes' sizes.
        let size_gb = info
            .size
            .filter(|mb| *mb > 0.0)
            .map(|mb| (mb / 1024.0).ceil() as i64)
            .or_else(|| {
                let gb: f64 = info
                    .volume_backups
                    .iter()
                    .filter_map(|v| v.source_volume_size)
                    .sum();
                (gb > 0.0).then_some(gb as i64)
            });
        let volumes_note = volumes
            .iter()
            .map(|v| {
                format!(
                    "{} → {} ({})",
                    v.source_volume_id.as_deref().unwrap_or("?"),
                    v.volume_backup_id.as_deref().unwrap_or("?"),
                    v.status.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let note = match &reason {
            None => format!(
                "server backup {} available; volume backups: {}",
                item.id,
                if volumes_note.is_empty() {
                    "none listed"
                } else {
                    &volumes_note
                }
            ),
            Some(r) => format!("server backup {} failed: {r}", item.id),
        };
        let update = JobUpdate {
            status: Some(if succeeded {
                JobStatus::Succeeded
            } else {
                JobStatus::Failed
            }),
            size_gb,
            is_incremental: info.incremental,
            fail_reason: reason.as_deref(),
            retry_at: if succeeded { None } else { self.retry_at() },
            ..Default::default()
        };
        self.advance(Outcome::Ready, update, &note)
    }
}

/// Records a changed `progress` in the job row and as an event.
fn note_progress(runner: &JobRunner, last: &Mutex<Option<f64>>, id: &str, progress: f64) {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if *last == Some(progress) {
        return;
    }
    *last = Some(progress);
    let now = Utc::now();
    let message = format!("server backup {id}: progress {progress}%");
    let recorded = runner
        .store
        .set_progress(runner.job.id, progress, now)
        .and_then(|()| {
            runner
                .store
                .record_event(crate::store::EventKind::State, &runner.event(&message), now)
        });
    if let Err(e) = recorded {
        tracing::warn!(job_id = runner.job.id, error = %e, "cannot record progress");
    }
}
