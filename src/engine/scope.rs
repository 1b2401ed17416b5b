//! A run's target set: resolved against the cloud at each firing, shared
//! between the policies of a cloud that fire in the same minute, recorded
//! with the run, and taken from the last good resolution when the cloud
//! cannot be asked. Also finds the targets that left since the last run,
//! and whether each left the selection or no longer exists.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::{Engine, EngineError};
use crate::api::types::{Found, TagMatch};
use crate::api::{ApiError, CloudClient};
use crate::config::{Policy, PolicyKind, SelectBy, Selector};
use crate::selection::{self, Verdict, LISTED};
use crate::store::{Resolution, RunScope, ScopedTarget};

/// One cloud answer to one selector query, kept for the minute it was
/// asked in.
type CachedAnswer = Arc<tokio::sync::Mutex<Option<Arc<Vec<Found>>>>>;

/// Answers of the cloud to selector queries, by (cloud, query, minute).
#[derive(Clone, Default)]
pub(super) struct ScopeCache(Arc<std::sync::Mutex<HashMap<CacheKey, CachedAnswer>>>);

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    cloud: String,
    query: String,
    minute: DateTime<Utc>,
}

/// How a run's targets were found, and what to warn about.
#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub(super) run: RunScope,
    /// Targets in the last recorded set that are not in this one: each
    /// with whether it no longer exists, and the note for its job.
    pub(super) departed: Vec<Departed>,
    /// Recorded as a warning of the run: the cloud failed, or the
    /// selector really matched nothing.
    pub(super) warning: Option<String>,
}

/// A target that was in the last set and is not in this one.
#[derive(Debug, Clone)]
pub(super) struct Departed {
    pub(super) target: String,
    pub(super) gone: bool,
    pub(super) note: String,
}

impl Engine {
    /// The targets of `policy` for `slot`: the listed ones without those
    /// known to be gone, and those its selector matches now. When the
    /// cloud cannot be asked, the last set resolved, with a warning; never
    /// an empty set because of an error.
    pub(super) async fn scope(
        &self,
        policy: &Policy,
        slot: DateTime<Utc>,
        opt_out: &BTreeMap<String, String>,
    ) -> Result<Scope, EngineError> {
        let gone: HashSet<String> = self
            .store
            .vanished_targets(&policy.name)?
            .into_iter()
            .filter(|v| v.gone)
            .map(|v| v.target)
            .collect();
        let listed = || {
            policy
                .targets()
                .iter()
                .filter(|t| !gone.contains(*t))
                .map(|t| ScopedTarget {
                    id: t.clone(),
                    name: None,
                    reason: LISTED.to_string(),
                })
                .collect::<Vec<_>>()
        };
        let now = Utc::now();
        let Some(selector) = &policy.select else {
            let run = RunScope {
                resolution: Resolution::Listed,
                resolved_at: now,
                targets: listed(),
            };
            return self.with_departures(policy, run, &gone, None).await;
        };
        let client = self.observed_client(&policy.cloud)?;
        match self.matching(&client, policy, selector, slot).await {
            Ok(found) => {
                let mut targets = listed();
                let labels_are = labels_are(policy, &client);
                for f in found.iter() {
                    if let Some(Verdict::In(reason)) =
                        selection::judge(policy, opt_out, labels_are, f)
                    {
                        if reason != LISTED && !gone.contains(&f.id) {
                            targets.push(ScopedTarget {
                                id: f.id.clone(),
                                name: f.name.clone(),
                                reason,
                            });
                        }
                    }
                }
                let warning = targets.is_empty().then(|| {
                    format!(
                        "the selector ({labels_are} {selector}) matched no {} in the cloud; nothing to back up",
                        policy.kind().target_noun()
                    )
                });
                let run = RunScope {
                    resolution: Resolution::Resolved,
                    resolved_at: now,
                    targets,
                };
                self.with_departures(policy, run, &gone, warning).await
            }
            Err(e) => {
                let (run, warning) = match self.store.last_resolved_scope(&policy.name)? {
                    Some((at, earlier)) => (
                        RunScope {
                            resolution: Resolution::LastGood,
                            resolved_at: at,
                            // The IDs listed now, and what the selector
                            // matched then.
                            targets: with_listed(listed(), earlier, &gone),
                        },
                        format!(
                            "the selector could not be resolved ({e}); using the {} targets resolved at {}",
                            policy.kind().target_noun(),
                            crate::store::format_ts(at)
                        ),
                    ),
                    None => (
                        RunScope {
                            resolution: Resolution::Listed,
                            resolved_at: now,
                            targets: listed(),
                        },
                        format!(
                            "the selector could not be resolved ({e}) and was never resolved before; only the listed targets are backed up"
                        ),
                    ),
                };
                Ok(Scope {
                    run,
                    departed: Vec::new(),
                    warning: Some(warning),
                })
            }
        }
    }

    /// `run` with the targets of the last recorded set that it lacks, each
    /// found gone or out of scope. Only a set known to be complete (listed,
    /// or resolved now) can tell that a target left.
    async fn with_departures(
        &self,
        policy: &Policy,
        run: RunScope,
        gone: &HashSet<String>,
        warning: Option<String>,
    ) -> Result<Scope, EngineError> {
        let Some(before) = self.store.current_scope(&policy.name)? else {
            return Ok(Scope {
                run,
                departed: Vec::new(),
                warning,
            });
        };
        let now_in: HashSet<&str> = run.targets.iter().map(|t| t.id.as_str()).collect();
        let left: Vec<ScopedTarget> = before
            .into_iter()
            .filter(|t| !now_in.contains(t.id.as_str()) && !gone.contains(&t.id))
            .collect();
        let client = self.observed_client(&policy.cloud)?;
        // Many at once (a label removed from a fleet): one listing of
        // every target instead of a look-up each.
        let listed = if left.len() > BULK_LOOKUP {
            every_id(&client, policy.kind()).await.ok()
        } else {
            None
        };
        let mut departed = Vec::new();
        for t in left {
            let noun = policy.kind().target_noun();
            let found = match &listed {
                Some(ids) => Ok(ids.contains(&t.id)),
                None => exists(&client, policy.kind(), &t.id).await,
            };
            let d = match found {
                Ok(false) => Departed {
                    gone: true,
                    note: format!("{noun} {} no longer exists (HTTP 404); no job is made for it again", t.id),
                    target: t.id,
                },
                Ok(true) => Departed {
                    gone: false,
                    note: if t.reason == LISTED && policy.select.is_none() {
                        format!("{noun} {} is no longer listed in the policy", t.id)
                    } else {
                        format!("{noun} {} no longer matches the policy's selection", t.id)
                    },
                    target: t.id,
                },
                Err(e) => Departed {
                    gone: false,
                    note: format!(
                        "{noun} {} left the policy's targets (whether it still exists is unknown: {e})",
                        t.id
                    ),
                    target: t.id,
                },
            };
            departed.push(d);
        }
        Ok(Scope {
            run,
            departed,
            warning,
        })
    }

    /// What the cloud lists for `selector`, asked once per cloud, query
    /// and minute however many policies fire in it.
    async fn matching(
        &self,
        client: &CloudClient,
        policy: &Policy,
        selector: &Selector,
        slot: DateTime<Utc>,
    ) -> Result<Arc<Vec<Found>>, ApiError> {
        let query = Query::of(policy, selector, client.select_by());
        let key = CacheKey {
            cloud: policy.cloud.clone(),
            query: query.key(),
            minute: slot.duration_trunc(TimeDelta::minutes(1)).unwrap_or(slot),
        };
        let entry = {
            let mut cache = self
                .scopes
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Answers of earlier minutes are never asked for again.
            cache.retain(|k, _| k.minute >= key.minute);
            Arc::clone(cache.entry(key).or_default())
        };
        // Held while asking: a second policy of the same minute waits for
        // the first one's answer instead of asking again.
        let mut answer = entry.lock().await;
        if let Some(found) = answer.as_ref() {
            return Ok(Arc::clone(found));
        }
        let found = Arc::new(query.ask(client).await?);
        *answer = Some(Arc::clone(&found));
        Ok(found)
    }
}

/// `listed`, and the targets of `earlier` neither listed nor gone.
fn with_listed(
    mut listed: Vec<ScopedTarget>,
    earlier: Vec<ScopedTarget>,
    gone: &HashSet<String>,
) -> Vec<ScopedTarget> {
    let known: HashSet<String> = listed.iter().map(|t| t.id.clone()).collect();
    listed.extend(
        earlier
            .into_iter()
            .filter(|t| !known.contains(&t.id) && !gone.contains(&t.id)),
    );
    listed
}

/// What the labels of the policy's targets are called in reasons.
pub fn labels_are(policy: &Policy, client: &CloudClient) -> &'static str {
    match (policy.kind(), client.select_by()) {
        (PolicyKind::Server, _) | (_, SelectBy::Tags) => "tags",
        (_, SelectBy::Metadata) => "metadata",
    }
}

/// One selector question to the cloud.
pub enum Query {
    /// Cinder's metadata filter, for the conditions with a value.
    Metadata(BTreeMap<String, String>),
    /// The EVS tag filter.
    VolumeTags(Vec<TagMatch>),
    /// The ECS tag filter.
    ServerTags(Vec<TagMatch>),
}

impl Query {
    /// How `policy`'s selector is asked on a cloud that selects by `by`.
    pub fn of(policy: &Policy, selector: &Selector, by: SelectBy) -> Self {
        let tags = || {
            selector
                .all_of
                .iter()
                .map(|m| TagMatch {
                    key: m.key.clone(),
                    value: m.value.clone(),
                })
                .collect()
        };
        match (policy.kind(), by) {
            (PolicyKind::Server, _) => Query::ServerTags(tags()),
            (_, SelectBy::Tags) => Query::VolumeTags(tags()),
            (_, SelectBy::Metadata) => Query::Metadata(selection::exact_pairs(selector)),
        }
    }

    fn key(&self) -> String {
        let tags = |t: &[TagMatch]| {
            t.iter()
                .map(|m| format!("{}={}", m.key, m.value.as_deref().unwrap_or("*")))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Query::Metadata(pairs) => format!("metadata {pairs:?}"),
            Query::VolumeTags(t) => format!("volume tags {}", tags(t)),
            Query::ServerTags(t) => format!("server tags {}", tags(t)),
        }
    }

    /// Every page of the answer.
    pub async fn ask(&self, client: &CloudClient) -> Result<Vec<Found>, ApiError> {
        match self {
            Query::Metadata(pairs) => client.volumes_with_metadata(pairs).await,
            Query::VolumeTags(tags) => client.volumes_with_tags(tags).await,
            Query::ServerTags(tags) => client.servers_with_tags(tags).await,
        }
    }
}

/// Departed targets above this many are looked up in one listing of every
/// target (a page per 1000) rather than one call each.
const BULK_LOOKUP: usize = 20;

/// The IDs of every volume, or for kind `server` every server.
async fn every_id(client: &CloudClient, kind: PolicyKind) -> Result<HashSet<String>, ApiError> {
    let found = match kind {
        PolicyKind::Server => client.servers().await?,
        _ => client.volumes_with_metadata(&BTreeMap::new()).await?,
    };
    Ok(found.into_iter().map(|f| f.id).collect())
}

/// Whether the volume or server still exists: `false` only on a 404.
pub(super) async fn exists(
    client: &CloudClient,
    kind: PolicyKind,
    id: &str,
) -> Result<bool, ApiError> {
    match kind {
        PolicyKind::Server => client.server_exists(id).await,
        _ => match client.volume(id).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, reason: &str) -> ScopedTarget {
        ScopedTarget {
            id: id.into(),
            name: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn a_fallback_keeps_the_ids_listed_now_and_drops_the_gone() {
        let earlier = vec![
            t("a", "metadata backup=nightly"),
            t("b", "listed"),
            t("c", "metadata backup=nightly"),
        ];
        let gone = HashSet::from(["c".to_string()]);
        let ids: Vec<String> = with_listed(vec![t("b", LISTED), t("d", LISTED)], earlier, &gone)
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["b", "d", "a"]);
    }
}
