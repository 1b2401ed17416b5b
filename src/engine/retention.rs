//! Retention planning: a pure function from (rules, a volume's backups as
//! the cloud reports them, which of them this policy made, now) to a
//! decision and a reason for every backup. Execution is elsewhere; this
//! module decides, and its hard rules hold whatever the policy says:
//! - only backups this agent made under this policy are ever deleted (the
//!   history must list the id *and* the name must carry the policy's prefix);
//! - the newest `available` backup of the volume (and the newest this policy
//!   made) is never deleted, unless the volume has been gone for longer
//!   than `retention.gone_keep_newest_for`;
//! - a backup with dependent incremental backups is kept until they expire;
//! - a backup in a transitional state (creating, deleting, restoring…) is kept.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;

use crate::config::Retention;

/// A backup as the cloud lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub created_at: Option<DateTime<Utc>>,
    pub has_dependents: bool,
}

/// What happens to a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Delete,
    /// The rules would delete it, but incremental backups depend on it.
    BlockedByDependants,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Keep => "keep",
            Verdict::Delete => "delete",
            Verdict::BlockedByDependants => "keep (blocked)",
        }
    }
}

/// The decision for one backup, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub verdict: Verdict,
    pub reason: String,
}

/// What the planner needs to know besides the backups.
pub struct Context<'a> {
    pub rules: &'a Retention,
    pub tz: Tz,
    /// Backup ids the history records for this policy and volume.
    pub ours: &'a HashSet<String>,
    /// `{policy}-`: every name the policy makes starts with it.
    pub name_prefix: &'a str,
    pub now: DateTime<Utc>,
    /// The target no longer exists and `gone_keep_newest_for` has passed:
    /// its newest backup is kept only if a rule keeps it.
    pub release_newest: bool,
}

/// Decides for every candidate, in the order given.
pub fn plan(ctx: &Context<'_>, candidates: &[Candidate]) -> Vec<Decision> {
    let mine = |c: &Candidate| {
        ctx.ours.contains(&c.id)
            && c.name
                .as_deref()
                .is_some_and(|n| n.starts_with(ctx.name_prefix))
    };
    // Newest first; a backup without a creation time cannot be aged and is
    // treated as newest, so it is never the one deleted.
    let mut available: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.status == "available")
        .collect();
    available.sort_by(|a, b| match (a.created_at, b.created_at) {
        (None, None) => a.id.cmp(&b.id),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.id.cmp(&b.id)),
    });
    let my_available: Vec<&Candidate> = available.iter().copied().filter(|c| mine(c)).collect();
    // The volume's newest available backup, and this policy's own newest.
    let newest: Vec<&str> = if ctx.release_newest {
        Vec::new()
    } else {
        available
            .first()
            .into_iter()
            .chain(my_available.first())
            .map(|c| c.id.as_str())
            .collect()
    };
    let kept_by_rules = keep_reasons(ctx, &my_available);

    candidates
        .iter()
        .map(|c| {
            let (verdict, reason) = decide(c, mine(c), &newest, &kept_by_rules);
            Decision {
                id: c.id.clone(),
                name: c.name.clone(),
                created_at: c.created_at,
                verdict,
                reason,
            }
        })
        .collect()
}

fn decide(
    c: &Candidate,
    mine: bool,
    newest: &[&str],
    kept: &[(String, String)],
) -> (Verdict, String) {
    if !mine {
        return (Verdict::Keep, "not made by this policy".into());
    }
    if newest.contains(&c.id.as_str()) {
        return (
            Verdict::Keep,
            "the newest available one of this target".into(),
        );
    }
    match c.status.as_str() {
        "available" | "error" => {}
        other => return (Verdict::Keep, format!("status `{other}`: still busy")),
    }
    if c.created_at.is_none() {
        return (Verdict::Keep, "no creation time reported".into());
    }
    let reasons: Vec<&str> = kept
        .iter()
        .filter(|(id, _)| *id == c.id)
        .map(|(_, r)| r.as_str())
        .collect();
    if !reasons.is_empty() {
        return (Verdict::Keep, reasons.join(", "));
    }
    let reason = if c.status == "error" {
        "status `error`: holds no restorable data"
    } else {
        "kept by no rule"
    };
    if c.has_dependents {
        return (
            Verdict::BlockedByDependants,
            format!("{reason}, but incremental backups depend on it; deleted once they expire"),
        );
    }
    (Verdict::Delete, reason.to_string())
}

/// The bucket (hour, day, ISO week, month, year) a local time falls in.
type Bucket = fn(DateTime<Tz>) -> String;

/// (backup id, reason) for every keep rule that keeps a backup.
fn keep_reasons(ctx: &Context<'_>, available: &[&Candidate]) -> Vec<(String, String)> {
    let r = ctx.rules;
    let mut kept = Vec::new();
    for (i, c) in available.iter().enumerate().take(r.keep_last as usize) {
        kept.push((
            c.id.clone(),
            format!("keep_last {} (#{})", r.keep_last, i + 1),
        ));
    }
    if let Some(max_age) = r.max_age.and_then(|d| chrono::TimeDelta::from_std(d).ok()) {
        for c in available {
            if c.created_at.is_some_and(|t| ctx.now - t < max_age) {
                kept.push((
                    c.id.clone(),
                    format!(
                        "younger than max_age {}",
                        humantime::format_duration(r.max_age.unwrap_or_default())
                    ),
                ));
            }
        }
    }
    let tiers: [(&str, u32, Bucket); 5] = [
        ("keep_hourly", r.keep_hourly, |t| {
            t.format("%Y-%m-%d %H:00").to_string()
        }),
        ("keep_daily", r.keep_daily, |t| {
            t.format("%Y-%m-%d").to_string()
        }),
        ("keep_weekly", r.keep_weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("keep_monthly", r.keep_monthly, |t| {
            format!("{}-{:02}", t.year(), t.month())
        }),
        ("keep_yearly", r.keep_yearly, |t| t.year().to_string()),
    ];
    for (rule, count, bucket) in tiers {
        if count == 0 {
            continue;
        }
        let mut seen: Vec<String> = Vec::new();
        for c in available {
            let Some(t) = c.created_at else { continue };
            let key = bucket(t.with_timezone(&ctx.tz));
            if seen.contains(&key) {
                continue;
            }
            if seen.len() == count as usize {
                break;
            }
            kept.push((c.id.clone(), format!("{rule} {count}: newest of {key}")));
            seen.push(key);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
