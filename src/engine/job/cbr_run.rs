//! The CBR checkpoint of a run: one backup run (`POST …/checkpoints`) of
//! all the run's volumes, made once by whichever of its jobs asks first
//! and shared by the others. A retried job makes a checkpoint of its own
//! volume, under its attempt's name.
//!
//! The checkpoint's name is deterministic (see [`crate::naming::run_name`])
//! and the backups CBR makes carry it, so a run whose answer was lost, or
//! whose agent died after asking, is found by name: volumes that already
//! have a backup of that name are never backed up again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::super::create::{create_or_adopt, Created};
use super::super::poll::{poll_until, Look, PollEnd};
use super::JobRunner;
use crate::api::types::{CbrBackup, Vault};
use crate::api::{is_busy_cbr_code, ApiError, ErrorClass, NewCheckpoint, DISK, SERVER};
use crate::config::{BackupWork, ServerWork};
use crate::store::{JobStatus, Phase, StoreError};

/// What a job backs up on CBR, from its backup or server policy.
pub(super) struct VaultWork<'a> {
    /// The vault's name or ID.
    pub vault: Option<&'a str>,
    pub add_to_vault: bool,
    pub full_backup_every: Option<u32>,
    /// [`DISK`] or [`SERVER`]: the type of the resources in a run.
    pub resource_type: &'static str,
    /// `disk` or `server`: the vaults that hold them.
    pub object_type: &'static str,
}

impl<'a> VaultWork<'a> {
    /// A backup policy's volumes, in a disk vault.
    pub fn volumes(work: &'a BackupWork) -> Self {
        Self {
            vault: work.vault.as_deref(),
            add_to_vault: work.add_to_vault,
            full_backup_every: work.full_backup_every,
            resource_type: DISK,
            object_type: "disk",
        }
    }

    /// A server policy's servers, in a server vault; CBR decides between
    /// full and incremental.
    pub fn servers(work: &'a ServerWork) -> Self {
        Self {
            vault: work.vault.as_deref(),
            add_to_vault: work.add_to_vault,
            full_backup_every: None,
            resource_type: SERVER,
            object_type: "server",
        }
    }
}

/// How long after a backup run's request its backups may still be missing
/// from the list: how long a restarted agent waits before it takes "not
/// listed" for "never made".
pub(super) const LISTING_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// Where a run's checkpoint is, once one of its jobs made or found it.
type Cell = Arc<OnceCell<Arc<Checkpointed>>>;

/// The checkpoints of the runs in flight, by run and name.
#[derive(Default)]
pub struct RunCheckpoints {
    cells: Mutex<HashMap<(i64, String), Cell>>,
}

impl RunCheckpoints {
    /// The cell of a run's checkpoint, made on first use.
    fn cell(&self, run_id: i64, name: &str) -> Cell {
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(cells.entry((run_id, name.to_string())).or_default())
    }

    /// Forgets a finished run's checkpoints.
    pub fn forget_run(&self, run_id: i64) {
        self.cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(run, _), _| *run != run_id);
    }
}

/// What a run's backup run did for its volumes.
#[derive(Debug, Default)]
pub(super) struct Checkpointed {
    /// The checkpoint, when one was made or found.
    pub checkpoint_id: Option<String>,
    /// Whether the checkpoint was found by name rather than made now: its
    /// list of skipped volumes is then unknown.
    pub adopted: bool,
    /// Volumes the run did not back up, and why.
    pub left_out: HashMap<String, LeftOut>,
    /// Why no checkpoint exists, when none does: every volume fails so.
    pub failure: Option<LeftOut>,
}

/// Why a volume has no backup in the run.
#[derive(Debug, Clone)]
pub(super) struct LeftOut {
    pub reason: String,
    /// Whether a later attempt may succeed (CBR was busy).
    pub retry_worthy: bool,
    pub status: JobStatus,
}

impl Checkpointed {
    /// No checkpoint: every target fails for `why`.
    fn failed(why: LeftOut) -> Self {
        Self {
            failure: Some(why),
            ..Default::default()
        }
    }
}

impl LeftOut {
    fn failed(reason: String, retry_worthy: bool) -> Self {
        Self {
            reason,
            retry_worthy,
            status: JobStatus::Failed,
        }
    }

    fn from_error(what: &str, e: &ApiError) -> Self {
        let busy = matches!(
            e.class,
            ErrorClass::Busy | ErrorClass::Retryable | ErrorClass::BadAnswer
        );
        Self::failed(format!("{what}: {e}"), busy)
    }
}

/// The name of the checkpoint the job's attempt belongs to: the run's for
/// a first attempt, the attempt's own for a retry.
pub(super) fn checkpoint_name(runner: &JobRunner) -> String {
    if runner.job.attempt <= 1 {
        crate::naming::run_name(&runner.job.policy, runner.job.slot)
    } else {
        runner.job.resource_name.clone()
    }
}

/// The checkpoint of the job's attempt: made by the first job to ask, the
/// same answer for the others.
pub(super) async fn checkpoint(
    runner: &JobRunner,
    work: &VaultWork<'_>,
) -> Result<Arc<Checkpointed>, StoreError> {
    let name = checkpoint_name(runner);
    let cell = runner.cbr_runs.cell(runner.job.run_id, &name);
    let made = cell
        .get_or_try_init(|| async { make(runner, work, &name).await.map(Arc::new) })
        .await?;
    Ok(Arc::clone(made))
}

/// Finds the vault, sees which targets it holds, leaves out those that
/// already have a backup of this name, and runs a backup of the rest.
async fn make(
    runner: &JobRunner,
    work: &VaultWork<'_>,
    name: &str,
) -> Result<Checkpointed, StoreError> {
    let client = &runner.client;
    let Some(vault_name) = work.vault else {
        return Ok(Checkpointed::failed(LeftOut::failed(
            "internal: a CBR policy without a vault".into(),
            false,
        )));
    };
    let kind = work.object_type;
    let vault = match client.vault_named(vault_name, kind).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Ok(Checkpointed::failed(LeftOut::failed(
                format!("there is no CBR {kind} vault named `{vault_name}` in the project; create it in the CBR console, or fix the policy's `vault`"),
                false,
            )))
        }
        Err(e) => {
            let what = format!("cannot read CBR vault `{vault_name}`");
            return Ok(Checkpointed::failed(LeftOut::from_error(&what, &e)));
        }
    };
    if let Some(policy) = vault.policy_id.as_deref().filter(|p| !p.is_empty()) {
        runner.warn(&format!(
            "CBR vault {} ({}) has its own backup policy {policy}: CBR backs its volumes up on that schedule too, which doubles the cost; unbind the policy from the vault to leave the schedule to this agent",
            vault.name.as_deref().unwrap_or("?"),
            vault.id
        ))?;
    }
    let volumes = run_volumes(runner)?;
    let mut left_out = HashMap::new();
    let in_vault = bind(runner, work, &vault, &volumes, &mut left_out).await?;
    let made_before = match backed_up_before(runner, name, &vault.id).await? {
        Ok(found) => found,
        Err(e) => {
            let what = format!(
                "cannot list the backups named {name} in CBR vault {}",
                vault.id
            );
            return Ok(Checkpointed::failed(LeftOut::from_error(&what, &e)));
        }
    };
    let to_back_up: Vec<&str> = in_vault
        .iter()
        .map(String::as_str)
        .filter(|v| {
            !made_before
                .iter()
                .any(|b| b.resource_id.as_deref() == Some(v))
        })
        .collect();
    let found_checkpoint = made_before.iter().find_map(|b| b.checkpoint_id.clone());
    if to_back_up.is_empty() {
        return Ok(Checkpointed {
            adopted: found_checkpoint.is_some(),
            checkpoint_id: found_checkpoint,
            left_out,
            failure: None,
        });
    }
    let resources: Vec<(&str, &str)> = to_back_up
        .iter()
        .map(|v| (*v, work.resource_type))
        .collect();
    let description = runner.description();
    let incremental =
        !super::backup::full_backup_due_any(runner, work.full_backup_every, &to_back_up)?;
    let run = NewCheckpoint {
        vault_id: &vault.id,
        resources: &resources,
        name,
        description: &description,
        incremental,
    };
    let answer = Mutex::new(None);
    let asked_at = Mutex::new(None);
    let created = create_or_adopt(
        "CBR backup run",
        &runner.policy.poll,
        runner.deadline,
        false,
        || async {
            // CBR lists a run's backups only a while after the run: after a
            // lost answer, "not listed" means "not made" only once
            // LISTING_GRACE has passed since the request.
            let asked: Option<Instant> = *asked_at.lock().unwrap_or_else(|p| p.into_inner());
            let grace = LISTING_GRACE.to_std().unwrap_or_default();
            let until = asked.map_or_else(Instant::now, |at| (at + grace).min(runner.deadline));
            let found = poll_until(&runner.policy.poll, until, || async {
                match client
                    .cbr_backups(&[("name", name), ("vault_id", &vault.id)])
                    .await
                {
                    Ok(list) => match list.into_iter().find_map(|b| b.checkpoint_id) {
                        Some(id) => Look::Done(id),
                        None => Look::Pending,
                    },
                    Err(e) => Look::Fail(e),
                }
            })
            .await;
            match found {
                Ok(id) => Ok(Some(id)),
                Err(PollEnd::Deadline) => Ok(None),
                Err(PollEnd::Failed(e)) => Err(e),
            }
        },
        || async {
            *asked_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            let c = client.create_checkpoint(&run).await?;
            let id = c.id.clone();
            *answer.lock().unwrap_or_else(|p| p.into_inner()) = Some(c);
            Ok(id)
        },
    )
    .await;
    let answer = answer.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(match created {
        Created::Id { id, adopted } => {
            let skipped = answer.as_ref().map_or(&[][..], |c| c.skipped());
            for s in skipped {
                let code = s.code.as_deref().unwrap_or("no code");
                let reason = format!(
                    "CBR skipped {} {} in backup run {id}: {code} {}",
                    runner.job.kind.target_noun(),
                    s.id,
                    s.reason.as_deref().unwrap_or("(no reason given)")
                );
                let busy = s.code.as_deref().is_some_and(is_busy_cbr_code);
                left_out.insert(s.id.clone(), LeftOut::failed(reason, busy));
            }
            Checkpointed {
                checkpoint_id: Some(id),
                adopted: adopted && answer.is_none(),
                left_out,
                failure: None,
            }
        }
        Created::Refused {
            reason,
            retry_worthy,
            ..
        } => Checkpointed::failed(LeftOut::failed(reason, retry_worthy)),
        Created::TimedOut(reason) => Checkpointed::failed(LeftOut {
            reason,
            retry_worthy: false,
            status: JobStatus::TimedOut,
        }),
    })
}

/// The resources of the checkpoint: the run's targets still waiting for
/// their backup on a first attempt, this job's target on a retry.
fn run_volumes(runner: &JobRunner) -> Result<Vec<String>, StoreError> {
    if runner.job.attempt > 1 {
        return Ok(vec![runner.job.target.clone()]);
    }
    Ok(runner
        .store
        .jobs_of_run(runner.job.run_id)?
        .into_iter()
        .filter(|j| {
            j.on_cbr()
                && j.kind == runner.job.kind
                && j.attempt == 1
                && j.status == JobStatus::Running
                && j.backup_id.is_none()
                && matches!(
                    j.phase,
                    Phase::Pending | Phase::BackupRequested | Phase::ProtectRequested
                )
        })
        .map(|j| j.target)
        .collect())
}

/// The volumes the vault holds: those already in it, and those missing
/// that `add_to_vault` adds. The others are left out with the reason.
async fn bind(
    runner: &JobRunner,
    work: &VaultWork<'_>,
    vault: &Vault,
    volumes: &[String],
    left_out: &mut HashMap<String, LeftOut>,
) -> Result<Vec<String>, StoreError> {
    let vault_name = vault.name.as_deref().unwrap_or(&vault.id);
    let (mut held, missing): (Vec<String>, Vec<String>) =
        volumes.iter().cloned().partition(|v| vault.holds(v));
    if missing.is_empty() {
        return Ok(held);
    }
    let noun = runner.job.kind.target_noun();
    if !work.add_to_vault {
        for v in missing {
            let reason = format!("{noun} {v} is not in CBR vault {vault_name}; add it to the vault in the CBR console, or set `add_to_vault: true` in the policy");
            left_out.insert(v, LeftOut::failed(reason, false));
        }
        return Ok(held);
    }
    let ids: Vec<&str> = missing.iter().map(String::as_str).collect();
    match runner
        .client
        .add_to_vault(&vault.id, work.resource_type, &ids)
        .await
    {
        Ok(added) => {
            runner.note(&format!(
                "added {} {noun}(s) to CBR vault {vault_name}: {}",
                added.len(),
                added.join(", ")
            ))?;
            for v in missing {
                if added.contains(&v) {
                    held.push(v);
                } else {
                    let reason = format!(
                        "CBR vault {vault_name} did not take volume {v} when asked to add it"
                    );
                    left_out.insert(v, LeftOut::failed(reason, false));
                }
            }
        }
        Err(e) => {
            let what = format!("cannot add {noun}(s) to CBR vault {vault_name}");
            for v in missing {
                left_out.insert(v, LeftOut::from_error(&what, &e));
            }
        }
    }
    Ok(held)
}

/// The backups of this name already in the vault: made by an earlier
/// request whose answer was lost, or by an agent that died after asking.
/// A job continued after a restart first waits until [`LISTING_GRACE`]
/// after it entered its phase, as CBR lists a run's backups only a while
/// after it started.
async fn backed_up_before(
    runner: &JobRunner,
    name: &str,
    vault_id: &str,
) -> Result<Result<Vec<CbrBackup>, ApiError>, StoreError> {
    if runner.maybe_exists {
        let wait = (runner.phase_entered_at()? + LISTING_GRACE - Utc::now())
            .to_std()
            .unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
    Ok(runner
        .client
        .cbr_backups(&[("name", name), ("vault_id", vault_id)])
        .await)
}
