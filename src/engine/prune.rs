//! Retention execution: list a volume's backups, plan (see [`retention`]),
//! delete what the plan deletes and wait until each is gone, and record
//! every action with its reason. A delete the cloud refuses because
//! incremental backups depend on the backup (Cinder's 400) is "kept,
//! blocked by dependants", not a failure.
//!
//! [`retention`]: super::retention

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::observer::JobObserver;
use super::poll::{poll_until, Look, PollEnd};
use super::retention::{plan, Candidate, Context, Decision, Verdict};
use super::{Engine, EngineError};
use crate::api::{ApiError, CloudClient, ErrorClass};
use crate::config::{Policy, PolicyKind, PollSettings};
use crate::store::{JobRecord, JobStatus, RetentionAction, Vanished};

/// Plan-and-delete rounds in one prune, at most.
const MAX_ROUNDS: usize = 20;

/// How long one deletion may take to complete.
const DELETE_BUDGET: Duration = Duration::from_secs(600);

/// One backup's line in a prune: the plan's decision and what came of it.
#[derive(Debug, Clone)]
pub struct PruneLine {
    pub decision: Decision,
    /// `None` when nothing was attempted (kept, or a dry run).
    pub outcome: Option<PruneOutcome>,
}

/// What came of deleting one backup, snapshot or server backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneOutcome {
    /// Gone from the cloud.
    Deleted,
    /// Kept: the cloud refused because incremental backups depend on it.
    BlockedByDependants,
    /// The delete failed; the reason says why.
    DeleteFailed(String),
}

impl PruneOutcome {
    /// The action as the history's `retention_actions` records it.
    pub fn action(&self) -> &'static str {
        match self {
            PruneOutcome::Deleted => "deleted",
            PruneOutcome::BlockedByDependants => "blocked_by_dependants",
            PruneOutcome::DeleteFailed(_) => "delete_failed",
        }
    }
}

/// The prune of one target of one policy.
#[derive(Debug, Clone)]
pub struct PruneReport {
    pub policy: String,
    pub target: String,
    pub lines: Vec<PruneLine>,
}

impl PruneReport {
    /// Whether a deletion failed (as opposed to being blocked).
    pub fn has_failures(&self) -> bool {
        self.lines
            .iter()
            .any(|l| matches!(l.outcome, Some(PruneOutcome::DeleteFailed(_))))
    }
}

impl Engine {
    /// Prunes every target of `policy`: those of its last run (the listed
    /// ones before the first) and those that left it or are gone;
    /// `dry_run` plans only.
    pub async fn prune_policy(
        &self,
        policy: &Policy,
        dry_run: bool,
    ) -> Result<Vec<PruneReport>, EngineError> {
        let mut targets: Vec<String> = match self.store.current_scope(&policy.name)? {
            Some(scope) => scope.into_iter().map(|t| t.id).collect(),
            None => policy.targets().to_vec(),
        };
        let vanished = self.store.vanished_targets(&policy.name)?;
        targets.extend(vanished.iter().map(|v| v.target.clone()));
        let mut reports = Vec::new();
        for target in targets {
            let release = self.releases_newest(policy, &vanished, &target);
            reports.push(
                self.prune_target_with(policy, &target, dry_run, release)
                    .await?,
            );
        }
        Ok(reports)
    }

    /// Prunes the targets of `policy` that left it or are gone and still
    /// have backups it made: their backups follow the policy's rules, and
    /// a gone target's newest is kept as `gone_keep_newest_for` says.
    /// Trouble is logged; it is tried again after the next run.
    pub(super) async fn prune_vanished(&self, policy: &Policy) {
        if policy.retention.is_none() {
            return;
        }
        let vanished = match self.store.vanished_targets(&policy.name) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(policy = %policy.name, error = %e, "vanished targets not pruned");
                return;
            }
        };
        for v in &vanished {
            if !self
                .store
                .has_undeleted(&policy.name, &v.target)
                .unwrap_or(true)
            {
                continue;
            }
            let release = self.releases_newest(policy, &vanished, &v.target);
            if let Err(e) = self
                .prune_target_with(policy, &v.target, false, release)
                .await
            {
                tracing::warn!(policy = %policy.name, target = %v.target, error = %e, "pruning a vanished target failed; it is tried again after the next run");
            }
        }
    }

    /// Whether `target` has been gone longer than the policy keeps a gone
    /// target's newest backup.
    fn releases_newest(&self, policy: &Policy, vanished: &[Vanished], target: &str) -> bool {
        let Some(keep_for) = policy
            .retention
            .and_then(|r| r.gone_keep_newest_for)
            .and_then(|d| chrono::TimeDelta::from_std(d).ok())
        else {
            return false;
        };
        vanished
            .iter()
            .any(|v| v.target == target && v.gone && (self.clock)() - v.at >= keep_for)
    }

    /// Prunes one target (volume or server) of `policy`.
    pub async fn prune_target(
        &self,
        policy: &Policy,
        target: &str,
        dry_run: bool,
    ) -> Result<PruneReport, EngineError> {
        self.prune_target_with(policy, target, dry_run, false).await
    }

    /// [`Self::prune_target`]; `release_newest` lifts the hard rule that
    /// keeps the newest backup (for a target gone long enough).
    async fn prune_target_with(
        &self,
        policy: &Policy,
        target: &str,
        dry_run: bool,
        release_newest: bool,
    ) -> Result<PruneReport, EngineError> {
        let mut report = PruneReport {
            policy: policy.name.clone(),
            target: target.to_string(),
            lines: Vec::new(),
        };
        let Some(rules) = &policy.retention else {
            return Ok(report);
        };
        let client = self
            .clients
            .get(&policy.cloud)
            .ok_or_else(|| EngineError::UnknownCloud(policy.cloud.clone()))?
            .with_observer(Arc::new(JobObserver {
                store: Arc::clone(&self.store),
                run_id: None,
                job_id: None,
                metrics: self.metrics.clone(),
            }));
        let prefix = format!("{}-", policy.name);
        // Deleting the tip of an incremental chain frees its parent, so a
        // chain that has expired goes in rounds, newest first, until a
        // round deletes nothing.
        for round in 1..=MAX_ROUNDS {
            let held = self.candidates(&client, policy, target).await?;
            let ctx = Context {
                rules,
                tz: policy.timezone,
                ours: &held.ours,
                name_prefix: &prefix,
                now: (self.clock)(),
                release_newest,
            };
            let mut kept = Vec::new();
            let mut deleted_any = false;
            let decisions = plan(&ctx, &held.candidates);
            let outcomes = if dry_run {
                vec![None; decisions.len()]
            } else {
                self.delete_planned(&client, policy, target, &decisions, &held.on_cbr)
                    .await?
            };
            for (decision, outcome) in decisions.into_iter().zip(outcomes) {
                if outcome == Some(PruneOutcome::Deleted) {
                    deleted_any = true;
                    report.lines.push(PruneLine { decision, outcome });
                } else {
                    kept.push(PruneLine { decision, outcome });
                }
            }
            if !deleted_any || round == MAX_ROUNDS {
                report.lines.extend(kept);
                break;
            }
        }
        Ok(report)
    }

    /// The target's backups (or snapshots, for a snapshot policy) and the
    /// ids the history says this policy made.
    async fn candidates(
        &self,
        client: &CloudClient,
        policy: &Policy,
        target: &str,
    ) -> Result<Holdings, EngineError> {
        Ok(match policy.kind() {
            PolicyKind::Backup => {
                let vbs = || async {
                    Ok(client
                        .backups_of_volume(target)
                        .await?
                        .into_iter()
                        .map(|b| Candidate {
                            id: b.id,
                            name: b.name,
                            status: b.status,
                            created_at: b.created_at,
                            has_dependents: b.has_dependent_backups.unwrap_or(false),
                        })
                        .collect())
                };
                self.across_services(client, policy, target, vbs).await?
            }
            PolicyKind::Snapshot => Holdings {
                candidates: client
                    .snapshots_of_volume(target)
                    .await?
                    .into_iter()
                    .map(|s| Candidate {
                        id: s.id,
                        name: s.name,
                        status: s.status,
                        created_at: s.created_at,
                        has_dependents: false,
                    })
                    .collect(),
                ours: self.store.snapshots_made_by(&policy.name, target)?,
                on_cbr: HashSet::new(),
            },
            PolicyKind::Server => {
                let csbs = || super::prune_server::candidates(client, target);
                self.across_services(client, policy, target, csbs).await?
            }
            // A drill keeps nothing: its scratch volumes are deleted by
            // the job that made them.
            PolicyKind::Restore => Holdings::default(),
        })
    }

    /// A backup or server policy's backups of `target` on both the older
    /// service (listed by `listed`) and CBR: each service is asked only
    /// when the policy made backups there, as a project moved to CBR may
    /// have no VBS or CSBS any more.
    async fn across_services<F, Fut>(
        &self,
        client: &CloudClient,
        policy: &Policy,
        target: &str,
        listed: F,
    ) -> Result<Holdings, EngineError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Candidate>, ApiError>>,
    {
        let ours = self.store.backups_made_by(&policy.name, target)?;
        let on_cbr = self.store.cbr_backups_made_by(&policy.name, target)?;
        let mut candidates = Vec::new();
        if ours.len() > on_cbr.len() {
            candidates = listed().await?;
        }
        if !on_cbr.is_empty() {
            candidates.extend(cbr_candidates(client, target).await?);
        }
        Ok(Holdings {
            candidates,
            ours,
            on_cbr,
        })
    }

    /// Carries out the plan's deletions: one at a time, or for server
    /// backups (whose deletion CSBS takes its time over) side by side
    /// within the project's deletion slots; those in `on_cbr` through CBR.
    /// One outcome per decision.
    async fn delete_planned(
        &self,
        client: &CloudClient,
        policy: &Policy,
        target: &str,
        decisions: &[Decision],
        on_cbr: &HashSet<String>,
    ) -> Result<Vec<Option<PruneOutcome>>, EngineError> {
        let mut outcomes = vec![None; decisions.len()];
        let wanted = decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.verdict == Verdict::Delete);
        if policy.kind() != PolicyKind::Server {
            for (i, decision) in wanted {
                let cbr = on_cbr.contains(&decision.id);
                outcomes[i] = Some(self.delete(client, policy, target, decision, cbr).await?);
            }
            return Ok(outcomes);
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, decision) in wanted {
            let (engine, client, policy) = (self.clone(), client.clone(), policy.clone());
            let (target, decision) = (target.to_string(), decision.clone());
            let cbr = on_cbr.contains(&decision.id);
            set.spawn(async move {
                let outcome = engine
                    .delete(&client, &policy, &target, &decision, cbr)
                    .await;
                (i, outcome)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (i, outcome) = joined.map_err(|e| EngineError::Task(e.to_string()))?;
            outcomes[i] = Some(outcome?);
        }
        Ok(outcomes)
    }

    /// Deletes one backup (through CBR when `on_cbr`), waits until it is
    /// gone, records the action.
    async fn delete(
        &self,
        client: &CloudClient,
        policy: &Policy,
        target: &str,
        decision: &Decision,
        on_cbr: bool,
    ) -> Result<PruneOutcome, EngineError> {
        let deleted = if on_cbr {
            delete_cbr_and_wait(client, policy, &decision.id).await
        } else {
            delete_and_wait(client, policy, &decision.id).await
        };
        let (outcome, reason) = match deleted {
            Ok(()) => (PruneOutcome::Deleted, decision.reason.clone()),
            Err(e) if refused_for_dependants(&e) => (
                PruneOutcome::BlockedByDependants,
                format!("{}; the cloud refused: {}", decision.reason, e.message),
            ),
            Err(e) => {
                let reason = format!("{}; {e}", decision.reason);
                (PruneOutcome::DeleteFailed(reason.clone()), reason)
            }
        };
        let action = outcome.action();
        tracing::info!(policy = %policy.name, target, backup_id = %decision.id, action, "{reason}");
        self.store.record_retention(
            &RetentionAction {
                policy: &policy.name,
                target,
                backup_id: &decision.id,
                backup_name: decision.name.as_deref(),
                created_at: decision.created_at,
                action,
                reason: &reason,
            },
            Utc::now(),
        )?;
        Ok(outcome)
    }

    /// Prunes the targets whose jobs just succeeded; trouble is logged, it
    /// never changes the outcome of the backups themselves.
    pub(super) async fn prune_after(&self, policy: &Policy, jobs: &[JobRecord]) {
        if policy.retention.is_none() {
            return;
        }
        for job in jobs.iter().filter(|j| j.status == JobStatus::Succeeded) {
            if let Err(e) = self.prune_target(policy, &job.target, false).await {
                tracing::warn!(policy = %policy.name, target = %job.target, error = %e, "pruning failed; it is tried again after the next backup");
            }
        }
    }
}

/// Deletes the policy's kind of resource and waits until it is gone.
async fn delete_and_wait(client: &CloudClient, policy: &Policy, id: &str) -> Result<(), ApiError> {
    let kind = policy.kind();
    let deleted = match kind {
        PolicyKind::Backup => client.delete_backup(id).await,
        PolicyKind::Snapshot => client.delete_snapshot(id).await,
        PolicyKind::Server => {
            return super::prune_server::delete_and_wait(client, policy, id).await
        }
        PolicyKind::Restore => {
            let why = "a restore policy keeps nothing that retention deletes";
            return Err(ApiError::failed(format!("DELETE {id}"), why));
        }
    };
    match deleted {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    }
    let call = format!("DELETE {} {id}", kind.as_str());
    wait_gone(&policy.poll, DELETE_BUDGET, call, || async {
        let status = if kind == PolicyKind::Snapshot {
            client.snapshot(id).await?.status
        } else {
            client.backup(id).await?.status
        };
        Ok(if status == "error_deleting" {
            Deleting::Failed(format!("{} {id} went to `error_deleting`", kind.as_str()))
        } else {
            Deleting::Present
        })
    })
    .await
}

/// What retention weighs for a target: what the cloud holds, the ids this
/// policy made, and which of those CBR holds.
#[derive(Default)]
struct Holdings {
    candidates: Vec<Candidate>,
    ours: HashSet<String>,
    on_cbr: HashSet<String>,
}

/// The CBR backups of `target` (a volume or a server), as retention sees them.
async fn cbr_candidates(client: &CloudClient, target: &str) -> Result<Vec<Candidate>, ApiError> {
    Ok(client
        .cbr_backups(&[("resource_id", target)])
        .await?
        .into_iter()
        .filter(|b| b.resource_id.as_deref() == Some(target))
        .map(|b| Candidate {
            id: b.id,
            name: b.name,
            status: b.status,
            created_at: b.created_at,
            // CBR keeps the chain of incrementals itself.
            has_dependents: false,
        })
        .collect())
}

/// Deletes a CBR backup (204) and waits for its 404.
async fn delete_cbr_and_wait(
    client: &CloudClient,
    policy: &Policy,
    id: &str,
) -> Result<(), ApiError> {
    match client.delete_cbr_backup(id).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    }
    wait_gone(
        &policy.poll,
        DELETE_BUDGET,
        format!("DELETE CBR backup {id}"),
        || async {
            client.cbr_backup(id).await?;
            Ok(Deleting::Present)
        },
    )
    .await
}

/// What one look at a resource being deleted found (not found is gone).
pub(super) enum Deleting {
    Gone,
    Present,
    /// The cloud gave up deleting it, for this reason.
    Failed(String),
}

/// Waits until a deleted resource is gone, `budget` at most. An error the
/// cloud may recover from (a 5xx, a garbled answer) counts as still there;
/// a failure is an error of `call`.
pub(super) async fn wait_gone<F, Fut>(
    poll: &PollSettings,
    budget: Duration,
    call: String,
    look: F,
) -> Result<(), ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Deleting, ApiError>>,
{
    let gone = poll_until(poll, Instant::now() + budget, || async {
        match look().await {
            Ok(Deleting::Gone) => Look::Done(()),
            Err(e) if e.is_not_found() => Look::Done(()),
            Ok(Deleting::Present) => Look::Pending,
            Ok(Deleting::Failed(reason)) => Look::Fail(reason),
            Err(e) if matches!(e.class, ErrorClass::Retryable | ErrorClass::BadAnswer) => {
                Look::Pending
            }
            Err(e) => Look::Fail(e.to_string()),
        }
    })
    .await;
    gone.map_err(|end| {
        ApiError::failed(
            call,
            match end {
                PollEnd::Deadline => format!(
                    "still present {} after the delete",
                    humantime::format_duration(budget)
                ),
                PollEnd::Failed(r) => r,
            },
        )
    })
}

/// Cinder: 400 "Invalid backup: Incremental backups exist for this backup."
fn refused_for_dependants(e: &ApiError) -> bool {
    e.status == Some(400)
        && e.message
            .to_ascii_lowercase()
            .contains("incremental backups exist")
}
