//! Compliance: whether every target of every policy has a recent enough
//! successful backup (its recovery point objective, RPO), and what the
//! history says about each target over a window. A library function, not
//! CLI code, so `vbs-agent report`, metrics and notifications all judge a
//! target the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use crate::config::{Config, Policy, RestoreWork, Work};
use crate::schedule::Schedule;
use crate::store::{format_ts, FailureCount, JobCounts, JobRecord, Store, StoreError};

/// How far ahead fire times are examined to find a schedule's longest gap:
/// a year and a day, so yearly schedules, monthly ones and both DST
/// transitions are all in view.
const GAP_WINDOW_DAYS: i64 = 366;

/// At most this many fire times are examined (a once-a-second schedule would
/// otherwise mean 31 million); the window then ends earlier.
const GAP_MAX_FIRES: usize = 100_000;

/// Errors of the compliance computation.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the history has no audit views yet: an older vbs-agent wrote it; start the agent \
         (vbs-agent run) once so it migrates the database"
    )]
    NotMigrated,
}

/// The longest time between two consecutive fire times of `schedule` in
/// `tz`, over the fire times in the year after `from`. `None` when it fires
/// fewer than twice in that time (e.g. 30 February).
///
/// Computed from the real fire times, so a weekdays-only schedule yields
/// the weekend, a monthly one the longest month, and a fixed time of day the
/// 25-hour day clocks go back.
pub fn longest_gap(schedule: &Schedule, tz: Tz, from: DateTime<Utc>) -> Option<Duration> {
    longest_span(schedule, tz, from, 1)
}

/// The longest time from a fire time of `schedule` in `tz` to the `runs`-th
/// fire time after it, over the spans starting in the year after `from`:
/// how long a target may wait when only every `runs`-th run reaches it.
/// `runs` = 1 is [`longest_gap`]. `None` when the schedule does not fire
/// `runs` + 1 times (e.g. 30 February).
pub fn longest_span(
    schedule: &Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    runs: usize,
) -> Option<Duration> {
    let runs = runs.max(1);
    let end = from + chrono::Duration::days(GAP_WINDOW_DAYS);
    let mut fires = std::collections::VecDeque::with_capacity(runs + 1);
    fires.push_back(schedule.next_after(from, tz)?);
    let mut longest: Option<chrono::Duration> = None;
    for _ in 0..GAP_MAX_FIRES {
        let Some(&previous) = fires.back() else {
            break;
        };
        let Some(next) = schedule.next_after(previous, tz) else {
            break;
        };
        fires.push_back(next);
        if fires.len() > runs + 1 {
            fires.pop_front();
        }
        if fires.len() <= runs {
            continue;
        }
        let first = fires[0];
        if first > end {
            break;
        }
        let span = next - first;
        longest = Some(longest.map_or(span, |l| l.max(span)));
    }
    longest.and_then(|g| g.to_std().ok())
}

/// How many runs of a drill it takes to reach each of its volumes once:
/// ⌈volumes / sample⌉, 1 without a sample (or for any other policy).
pub fn runs_per_target(policy: &Policy) -> usize {
    match &policy.work {
        Work::Restore(RestoreWork {
            sample: Some(sample),
            volumes,
            ..
        }) if *sample > 0 => volumes.len().div_ceil(*sample).max(1),
        _ => 1,
    }
}

/// Where a policy's RPO comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoSource {
    /// The policy's `rpo:` key.
    Configured,
    /// Derived: the schedule's longest gap plus `jitter` and
    /// `completion_timeout` (the time a slot's job may take to finish).
    Schedule,
}

/// A policy's recovery point objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rpo {
    pub max_age: Duration,
    pub source: RpoSource,
}

/// The RPO `report` holds a policy to, as of `at`: its `rpo:` key, or the
/// longest gap of its schedule over the next year plus the time one job may
/// take (`jitter` + `completion_timeout`), so a target is not flagged while
/// the job of its next slot is still running. `None` when the schedule
/// fires fewer than twice a year and no `rpo:` is set.
///
/// A drill with `sample: N` of M volumes reaches each volume only every
/// ⌈M/N⌉ runs ([`runs_per_target`]), so its gap is the longest span over
/// that many consecutive runs: the restore RPO.
pub fn effective_rpo(policy: &Policy, at: DateTime<Utc>) -> Option<Rpo> {
    if let Some(max_age) = policy.rpo {
        return Some(Rpo {
            max_age,
            source: RpoSource::Configured,
        });
    }
    let runs = runs_per_target(policy);
    longest_span(&policy.schedule, policy.timezone, at, runs).map(|gap| Rpo {
        max_age: gap + policy.jitter + policy.completion_timeout,
        source: RpoSource::Schedule,
    })
}

/// What the history says about one (policy, target).
///
/// Field names and order are part of `report --format json`; add new
/// fields at the end.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCompliance {
    pub policy: String,
    pub kind: String,
    pub target: String,
    /// Whether the policy file lists the target today. Targets that only the
    /// history knows (removed since) are shown but never breach.
    pub in_config: bool,
    /// The RPO in seconds; `None` when the policy has none (see
    /// [`effective_rpo`]).
    pub rpo_seconds: Option<u64>,
    pub rpo_source: Option<RpoSource>,
    /// The earliest slot recorded for the target (at or before `at`): when
    /// it first became due.
    #[serde(serialize_with = "opt_ts")]
    pub first_slot: Option<DateTime<Utc>>,
    /// When the attempt that made the newest successful backup started (its
    /// recovery point), at or before the report's `at`.
    #[serde(serialize_with = "opt_ts")]
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_success_job_id: Option<i64>,
    /// The backup id (or, for snapshot policies, the snapshot id).
    pub last_success_resource_id: Option<String>,
    /// `at - last_success_at`, in seconds.
    pub last_success_age_seconds: Option<i64>,
    /// Out of RPO: the newest success is older than the RPO, or there never
    /// was one and the first slot is older than the RPO.
    pub rpo_breached: bool,
    /// The jobs with slots in the window, by how they ended.
    #[serde(flatten)]
    pub counts: JobCounts,
    /// `succeeded` / finished slots (succeeded, failed, timed out, skipped,
    /// missed); `None` without any.
    pub success_rate: Option<f64>,
    /// Over succeeded jobs: start of the job to its end.
    pub mean_duration_seconds: Option<f64>,
    pub worst_duration_seconds: Option<i64>,
    /// Sum of the successful backups' sizes (GB, as the API reports them).
    pub total_size_gb: i64,
    /// Failed and timed-out attempts (retried ones included) by reason.
    pub failures: Vec<FailureCount>,
    /// Drill policies (kind `restore`): whether the target is out of its
    /// restore RPO, i.e. had no verified restore within it. The same
    /// judgement as `rpo_breached` (the target counts once), named for what
    /// it checks; `None` for the other kinds.
    pub restore_rpo: Option<bool>,
    /// Drill policies: the newest verified restore and the restore times;
    /// `None` for the other kinds.
    pub restores: Option<RestoreStats>,
    /// The target left the policy's selection or no longer exists: kept
    /// apart from failing ones, never out of RPO.
    pub vanished: Option<VanishedAs>,
    /// The service that made the newest good backup (`vbs`, `cbr`, `evs`
    /// for a snapshot, `csbs` for a server backup; for a drill, the
    /// service of the backup it restored). A project that moved from VBS
    /// to CBR keeps one history: this says which side the recovery point
    /// is on.
    pub last_success_service: Option<String>,
    /// The succeeded jobs of the window by the service that made them
    /// (`{"vbs": 3, "cbr": 4}`), services in name order.
    pub succeeded_by_service: BTreeMap<String, u64>,
}

/// How a target left its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VanishedAs {
    /// `left_scope`: it no longer matches the selection (or is no longer listed).
    LeftScope,
    /// `target_gone`: it no longer exists.
    TargetGone,
}

impl VanishedAs {
    /// As `report` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            VanishedAs::LeftScope => "left scope",
            VanishedAs::TargetGone => "gone",
        }
    }
}

/// A drilled volume's verified restores.
///
/// Field names and order are part of `report --format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreStats {
    /// When the newest verified restore (at or before `at`) started.
    #[serde(serialize_with = "opt_ts")]
    pub last_verified_at: Option<DateTime<Utc>>,
    pub last_verified_job_id: Option<i64>,
    /// The backup that restore proved.
    pub last_verified_backup_id: Option<String>,
    /// `at - last_verified_at`, in seconds.
    pub last_verified_age_seconds: Option<i64>,
    /// Verified restores with slots in the window.
    pub verified: u64,
    /// Over those: the median and the longest restore time
    /// (`v_restores.restore_s`, the measured RTO), in seconds.
    pub median_restore_seconds: Option<f64>,
    pub worst_restore_seconds: Option<f64>,
}

/// The compliance of every target over a window.
#[derive(Debug, Clone, Serialize)]
pub struct ComplianceReport {
    #[serde(serialize_with = "ts")]
    pub since: DateTime<Utc>,
    /// The moment the report describes (normally now).
    #[serde(serialize_with = "ts")]
    pub at: DateTime<Utc>,
    /// Policies in file order; within each, targets in file order, then
    /// those only the history knows.
    pub targets: Vec<TargetCompliance>,
}

impl ComplianceReport {
    /// The targets out of their RPO (drilled volumes out of their restore
    /// RPO included, once each).
    pub fn breaches(&self) -> impl Iterator<Item = &TargetCompliance> {
        self.targets.iter().filter(|t| t.rpo_breached)
    }

    /// The drilled volumes out of their restore RPO.
    pub fn restore_breaches(&self) -> impl Iterator<Item = &TargetCompliance> {
        self.targets.iter().filter(|t| t.restore_rpo == Some(true))
    }
}

/// The targets a policy is responsible for today: those of its last run
/// (what its selector matched), or before the first the listed ones.
fn configured_targets(store: &Store, policy: &Policy) -> Result<Vec<String>, AuditError> {
    Ok(match store.current_scope(&policy.name)? {
        Some(scope) => scope.into_iter().map(|t| t.id).collect(),
        None => policy.targets().to_vec(),
    })
}

/// Judges every target of every policy in `config` against its RPO as of
/// `at`, with statistics over the jobs whose slots fall in `[since, at]`.
/// Reads only; safe on a read-only store while the daemon writes.
pub fn compliance_report(
    config: &Config,
    store: &Store,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<ComplianceReport, AuditError> {
    compliance_report_of(config, store, since, at, |_, _| true)
}

/// [`compliance_report`] of only the targets `judge(policy, target)`
/// picks: the daemon judges again only what a run left in doubt.
pub fn compliance_report_of(
    config: &Config,
    store: &Store,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
    judge: impl Fn(&str, &str) -> bool,
) -> Result<ComplianceReport, AuditError> {
    if !store.has_audit_views()? {
        return Err(AuditError::NotMigrated);
    }
    let mut targets = Vec::new();
    for policy in &config.policies {
        let rpo = effective_rpo(policy, at);
        let configured = configured_targets(store, policy)?;
        let vanished: BTreeMap<String, VanishedAs> = store
            .vanished_targets(&policy.name)?
            .into_iter()
            .map(|v| {
                let how = if v.gone {
                    VanishedAs::TargetGone
                } else {
                    VanishedAs::LeftScope
                };
                (v.target, how)
            })
            .collect();
        let mut names: Vec<(String, bool)> = configured.iter().map(|t| (t.clone(), true)).collect();
        for known in store.targets_of_policy(&policy.name)? {
            if !configured.contains(&known) {
                names.push((known, false));
            }
        }
        for (target, in_config) in names {
            if !judge(&policy.name, &target) {
                continue;
            }
            let mut judged = target_compliance(store, policy, &target, in_config, rpo, since, at)?;
            if let Some(how) = vanished.get(&target) {
                judged.vanished = Some(*how);
                judged.rpo_breached = false;
                judged.restore_rpo = judged.restore_rpo.map(|_| false);
            }
            targets.push(judged);
        }
    }
    Ok(ComplianceReport { since, at, targets })
}

fn target_compliance(
    store: &Store,
    policy: &Policy,
    target: &str,
    in_config: bool,
    rpo: Option<Rpo>,
    since: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Result<TargetCompliance, AuditError> {
    let last = store.last_success(&policy.name, target, at)?;
    let first_slot = store.first_slot(&policy.name, target, at)?;
    let age = last
        .as_ref()
        .map(|j| (at - j.attempt_started_at).num_seconds());
    let breached = match (rpo, &last, first_slot) {
        _ if !in_config => false,
        (None, _, _) => false,
        (Some(rpo), Some(job), _) => exceeds(at - job.attempt_started_at, rpo.max_age),
        (Some(rpo), None, Some(first)) => exceeds(at - first, rpo.max_age),
        (Some(_), None, None) => false,
    };
    let stats = store.window_totals(&policy.name, target, since, at)?;
    let is_drill = policy.kind() == crate::kind::PolicyKind::Restore;
    Ok(TargetCompliance {
        policy: policy.name.clone(),
        kind: policy.kind().as_str().to_string(),
        target: target.to_string(),
        in_config,
        rpo_seconds: rpo.map(|r| r.max_age.as_secs()),
        rpo_source: rpo.map(|r| r.source),
        first_slot,
        last_success_at: last.as_ref().map(|j| j.attempt_started_at),
        last_success_job_id: last.as_ref().map(|j| j.id),
        last_success_resource_id: last.as_ref().and_then(resource_id),
        last_success_age_seconds: age,
        rpo_breached: breached,
        counts: stats.counts,
        success_rate: stats.counts.success_rate(),
        mean_duration_seconds: stats.mean_duration(),
        worst_duration_seconds: stats.worst_duration_seconds,
        total_size_gb: stats.size_gb,
        failures: if stats.counts.may_have_failures() {
            store.failure_counts(&policy.name, target, since, at)?
        } else {
            Vec::new()
        },
        restore_rpo: is_drill.then_some(breached),
        restores: if is_drill {
            let times = store.verified_restore_seconds(&policy.name, target, since, at)?;
            Some(RestoreStats {
                last_verified_at: last.as_ref().map(|j| j.attempt_started_at),
                last_verified_job_id: last.as_ref().map(|j| j.id),
                last_verified_backup_id: last.as_ref().and_then(|j| j.backup_id.clone()),
                last_verified_age_seconds: age,
                verified: stats.counts.succeeded,
                median_restore_seconds: median(&times),
                worst_restore_seconds: times.last().copied(),
            })
        } else {
            None
        },
        vanished: None,
        last_success_service: last.as_ref().map(|j| j.service().to_string()),
        succeeded_by_service: if stats.counts.succeeded > 0 {
            store
                .successes_by_service(&policy.name, target, since, at)?
                .into_iter()
                .map(|c| (c.service, c.succeeded))
                .collect()
        } else {
            BTreeMap::new()
        },
    })
}

/// The median of `sorted` (ascending): the middle value, or the mean of
/// the two middle ones.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Whether `age` is beyond `limit`.
pub fn exceeds(age: chrono::Duration, limit: Duration) -> bool {
    age.to_std().is_ok_and(|age| age > limit)
}

/// The backup a job made, or for a snapshot policy its snapshot.
pub fn resource_id(job: &JobRecord) -> Option<String> {
    job.backup_id.clone().or_else(|| {
        (job.kind == crate::kind::PolicyKind::Snapshot)
            .then(|| job.snapshot_id.clone())
            .flatten()
    })
}

fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*t))
}

fn opt_ts<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_ts(*t)),
        None => s.serialize_none(),
    }
}

/// Parses a time bound as the audit commands take it: a duration back from
/// `now` (`24h`, `7d`), a date (`2026-11-20`, midnight UTC) or an RFC 3339
/// time (`2026-11-20T06:00:00+01:00`).
pub fn parse_time_bound(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    match humantime::parse_duration(text) {
        Ok(d) => chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("`{text}` reaches too far back")),
        Err(_) => Err(format!(
            "`{text}` is not a time: use a duration back from now (24h, 7d), a date (2026-11-20) or an RFC 3339 time (2026-11-20T06:00:00Z)"
        )),
    }
}

#[cfg(test)]
mod tests;
