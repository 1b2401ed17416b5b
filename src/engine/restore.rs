//! Restores at the engine's level: which volumes a drill restores this
//! time, the `restores` row each restore job starts with, `vbs-agent
//! restore` (one backup on request), and deleting scratch volumes that
//! earlier drills could not.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::job::scratch::delete_volume;
use super::{Engine, EngineError, RunReport};
use crate::config::{
    Misfire, Policy, PollSettings, RestoreInto, RestoreWork, Retries, Work, DEFAULT_POLL,
    MANUAL_RESTORE_POLICY,
};
use crate::store::{JobRecord, NewRestore, ScopedTarget, StoreError, Trigger};

/// How long a leftover scratch volume is given to go at each sweep.
const SWEEP_BUDGET: Duration = Duration::from_secs(120);

/// A restore of one backup, asked for by someone (`vbs-agent restore`).
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub cloud: String,
    pub backup_id: String,
    /// A new volume or an existing one (never `Scratch`).
    pub into: RestoreInto,
    /// Who asked (the login name), for the history.
    pub requested_by: String,
    /// How long the whole restore may take.
    pub timeout: Duration,
}

impl Engine {
    /// The targets a run of `policy` makes jobs for: every target, or for a
    /// drill with a `sample`, that many, those restored longest ago (or
    /// never) first, so every volume is drilled within a few runs.
    pub(super) fn run_targets(
        &self,
        policy: &Policy,
        scope: &[ScopedTarget],
    ) -> Result<Vec<String>, StoreError> {
        let mut targets: Vec<String> = scope.iter().map(|t| t.id.clone()).collect();
        let Work::Restore(RestoreWork {
            sample: Some(n), ..
        }) = &policy.work
        else {
            return Ok(targets);
        };
        let last = self.store.last_restores(&policy.name)?;
        // A stable sort keeps the file's order among equals.
        targets.sort_by_key(|t| last.get(t).copied().unwrap_or(DateTime::<Utc>::MIN_UTC));
        targets.truncate(*n);
        Ok(targets)
    }

    /// The `restores` row a job of `policy` starts with, if it restores.
    /// A CBR backup (`service` `cbr`) is restored through CBR or EVS,
    /// whatever the cloud's `restore_api` says for VBS.
    pub(super) fn new_restore<'a>(
        &self,
        policy: &'a Policy,
        requested_by: &'a str,
        service: Option<&str>,
    ) -> Option<NewRestore<'a>> {
        let Work::Restore(work) = &policy.work else {
            return None;
        };
        let (into_volume, volume_id) = match &work.into {
            RestoreInto::Scratch => ("scratch", None),
            RestoreInto::NewVolume { .. } => ("new", None),
            RestoreInto::Existing(id) => ("existing", Some(id.as_str())),
        };
        let restore_api = match service {
            Some("cbr") => "cbr",
            _ => self
                .clients
                .get(&policy.cloud)
                .map_or("cinder", |c| c.restore_api().as_str()),
        };
        Some(NewRestore {
            requested_by,
            into_volume,
            volume_id,
            restore_api,
            backup_id: None,
        })
    }

    /// Restores one backup as `request` says, recorded as a run of
    /// [`MANUAL_RESTORE_POLICY`] with one job, and waits for it. The backup
    /// is looked up first: one that does not exist is an error, and nothing
    /// is recorded.
    pub async fn restore(&self, request: &RestoreRequest) -> Result<RunReport, EngineError> {
        let client = self
            .clients
            .get(&request.cloud)
            .ok_or_else(|| EngineError::UnknownCloud(request.cloud.clone()))?;
        // On a CBR cloud the backup is CBR's, restored through CBR or EVS.
        let on_cbr = client.backs_up_on_cbr().await?;
        let source = if on_cbr {
            let backup = client.cbr_backup(&request.backup_id).await?;
            backup.resource_id.unwrap_or(backup.id)
        } else {
            let backup = client.backup(&request.backup_id).await?;
            backup.volume_id.unwrap_or(backup.id)
        };
        let policy = manual_policy(request, source.clone());
        let slot = Utc::now().trunc_subsecs(3);
        let name = match &request.into {
            RestoreInto::NewVolume { name: Some(n), .. } => n.clone(),
            _ => crate::naming::resource_name(&policy.name, slot, &source),
        };
        let mut restore = self
            .new_restore(&policy, &request.requested_by, on_cbr.then_some("cbr"))
            .ok_or_else(|| EngineError::Task("a restore policy without restore work".into()))?;
        restore.backup_id = Some(&request.backup_id);
        let job = crate::store::NewRunJob {
            target: &source,
            kind: policy.kind().as_str(),
            cloud: &policy.cloud,
            resource_name: &name,
            status: crate::store::JobStatus::Running,
            blocked_by: None,
            note: None,
            restore: Some(restore),
            service: on_cbr.then_some("cbr"),
        };
        let run_id = self
            .store
            .create_run(
                &policy.name,
                slot,
                Trigger::Manual,
                &[job],
                None,
                Utc::now(),
            )?
            .ok_or_else(|| {
                EngineError::Task("two restores were asked for in the same millisecond".into())
            })?;
        let jobs = self.store.jobs_of_run(run_id)?;
        self.drive_all(&policy, jobs, false).await?;
        self.store.settle_run(run_id, Utc::now())?;
        Ok(RunReport {
            run_id,
            policy: policy.name.clone(),
            slot,
            started: true,
            jobs: self.store.jobs_of_run(run_id)?,
        })
    }

    /// Continues restores on request that a previous process left
    /// unfinished, with the settings they were started with.
    pub(super) async fn continue_manual_restores(
        &self,
        jobs: Vec<JobRecord>,
    ) -> Result<(), EngineError> {
        for job in jobs {
            let columns = self.store.restore_columns(job.id)?;
            let into = match (columns.into_volume.as_str(), columns.volume_id) {
                ("existing", Some(id)) => RestoreInto::Existing(id),
                _ => RestoreInto::NewVolume {
                    name: Some(job.resource_name.clone()),
                    availability_zone: None,
                },
            };
            let request = RestoreRequest {
                cloud: job.cloud.clone(),
                backup_id: job.backup_id.clone().unwrap_or_default(),
                into,
                requested_by: columns.requested_by,
                timeout: crate::config::DEFAULT_DRILL_TIMEOUT,
            };
            let policy = manual_policy(&request, job.target.clone());
            let run = job.run_id;
            self.drive_all(&policy, vec![job], true).await?;
            self.store.settle_run(run, Utc::now())?;
        }
        Ok(())
    }

    /// Deletes the scratch volumes finished drills left behind; returns how
    /// many are gone now. What still cannot be deleted stays recorded.
    pub async fn sweep_scratch(&self) -> Result<usize, EngineError> {
        let mut gone = 0;
        for left in self.store.scratch_left()? {
            let Some(client) = self.clients.get(&left.cloud) else {
                continue;
            };
            let poll = PollSettings {
                initial: Duration::from_secs(2),
                ..DEFAULT_POLL
            };
            match delete_volume(client, &poll, &left.volume_id, SWEEP_BUDGET).await {
                Ok(()) => {
                    self.store.scratch_deleted(left.job_id, Utc::now())?;
                    tracing::info!(policy = %left.policy, job_id = left.job_id, volume = %left.volume_id, "scratch volume left by an earlier drill deleted");
                    gone += 1;
                }
                Err(reason) => {
                    tracing::warn!(policy = %left.policy, job_id = left.job_id, volume = %left.volume_id, "scratch volume still left behind: {reason}");
                }
            }
        }
        Ok(gone)
    }
}

/// The policy a restore on request runs under: never scheduled, one
/// attempt, the request's timeout.
fn manual_policy(request: &RestoreRequest, source: String) -> Policy {
    Policy {
        name: MANUAL_RESTORE_POLICY.to_string(),
        cloud: request.cloud.clone(),
        schedule: crate::schedule::Schedule::unscheduled(),
        timezone: chrono_tz::UTC,
        description: None,
        completion_timeout: request.timeout,
        poll: DEFAULT_POLL,
        jitter: Duration::ZERO,
        misfire: Misfire::Skip,
        retries: Retries {
            max_attempts: 1,
            delay: Duration::ZERO,
        },
        retention: None,
        notify: None,
        rpo: None,
        select: None,
        work: Work::Restore(RestoreWork {
            of: String::new(),
            volumes: vec![source],
            sample: None,
            pick: crate::config::Pick::Newest,
            max_concurrent: 1,
            verify: None,
            into: request.into.clone(),
        }),
    }
}
