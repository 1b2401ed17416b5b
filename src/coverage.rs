//! The coverage audit: every volume and server of a cloud, judged against
//! every policy by the rules runs use ([`crate::selection`]), with the last
//! good backup from the history. `vbs-agent coverage` prints it; the
//! daemon records it periodically (see [`crate::store::CoverageSnapshot`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::api::types::{Found, TagMatch};
use crate::api::{ApiError, CloudClient};
use crate::config::{Config, Policy, PolicyKind, SelectBy};
use crate::engine::ScopeQuery;
use crate::selection::{self, Verdict};
use crate::store::{CoverageGap, CoverageSnapshot, Store, StoreError};

/// Errors that stop a coverage audit of a cloud.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("cannot list the {what} of cloud `{cloud}`: {source}")]
    List {
        cloud: String,
        what: &'static str,
        source: ApiError,
    },
    #[error("cannot resolve the selector of policy `{policy}`: {source}")]
    Select { policy: String, source: ApiError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a target is covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Protected,
    /// Opted out by a label or excluded by a policy, with why.
    OptedOut(String),
    Unprotected,
}

impl Standing {
    /// As printed: `protected`, `opted_out`, `UNPROTECTED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::Protected => "protected",
            Standing::OptedOut(_) => "opted_out",
            Standing::Unprotected => "UNPROTECTED",
        }
    }
}

/// One volume or server of the cloud.
#[derive(Debug, Clone)]
pub struct Row {
    /// `volume` or `server`.
    pub kind: &'static str,
    pub id: String,
    pub name: Option<String>,
    pub standing: Standing,
    /// The policies that cover it.
    pub policies: Vec<String>,
    /// The newest good backup of any policy: the policy and when it ended.
    pub last_good: Option<(String, DateTime<Utc>)>,
}

/// One cloud's coverage.
#[derive(Debug, Clone)]
pub struct CloudCoverage {
    pub cloud: String,
    pub rows: Vec<Row>,
    /// Servers could not be listed (the cloud has no compute endpoint and
    /// no server policy): why.
    pub servers_skipped: Option<String>,
}

impl CloudCoverage {
    /// Targets neither covered nor opted out.
    pub fn unprotected(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.standing == Standing::Unprotected)
            .count()
    }

    /// As the history records it.
    pub fn snapshot(&self, taken_at: DateTime<Utc>) -> CoverageSnapshot {
        let count = |kind: &str| self.rows.iter().filter(|r| r.kind == kind).count() as u64;
        let standing =
            |f: fn(&Standing) -> bool| self.rows.iter().filter(|r| f(&r.standing)).count() as u64;
        CoverageSnapshot {
            taken_at,
            cloud: self.cloud.clone(),
            volumes: count("volume"),
            servers: self.servers_skipped.is_none().then(|| count("server")),
            protected: standing(|s| *s == Standing::Protected),
            unprotected: standing(|s| *s == Standing::Unprotected),
            opted_out: standing(|s| matches!(s, Standing::OptedOut(_))),
            error: None,
            gaps: self
                .rows
                .iter()
                .filter_map(|r| {
                    let opted_out = match &r.standing {
                        Standing::Protected => return None,
                        Standing::Unprotected => None,
                        Standing::OptedOut(why) => Some(why.clone()),
                    };
                    Some(CoverageGap {
                        target: r.id.clone(),
                        kind: r.kind,
                        name: r.name.clone(),
                        opted_out,
                    })
                })
                .collect(),
        }
    }
}

/// Judges every volume and server of cloud `cloud` against the policies
/// of `config` that run on it.
pub async fn audit(
    config: &Config,
    cloud: &str,
    client: &CloudClient,
    store: Option<&Store>,
) -> Result<CloudCoverage, CoverageError> {
    let list_error = |what| {
        move |source| CoverageError::List {
            cloud: cloud.to_string(),
            what,
            source,
        }
    };
    let policies: Vec<&Policy> = config
        .policies
        .iter()
        .filter(|p| p.cloud == cloud && p.kind() != PolicyKind::Restore)
        .collect();
    let volumes = client
        .volumes_with_metadata(&BTreeMap::new())
        .await
        .map_err(list_error("volumes"))?;
    let has_server_policy = policies.iter().any(|p| p.kind() == PolicyKind::Server);
    let (servers, servers_skipped) = match client.servers().await {
        Ok(s) => (s, None),
        Err(e) if !has_server_policy => (Vec::new(), Some(e.to_string())),
        Err(e) => return Err(list_error("servers")(e)),
    };
    let mut judged = Judged::default();
    for policy in &policies {
        judged.listed(policy);
        let Some(selector) = &policy.select else {
            continue;
        };
        let labels_are = crate::engine::labels_are(policy, client);
        let query = ScopeQuery::of(policy, selector, client.select_by());
        // The listing already holds every volume's metadata: a metadata
        // selector is judged on it, as a run judges the filter's answer.
        let asked;
        let found: &[Found] = if matches!(query, ScopeQuery::Metadata(_)) {
            &volumes
        } else {
            asked = query
                .ask(client)
                .await
                .map_err(|source| CoverageError::Select {
                    policy: policy.name.clone(),
                    source,
                })?;
            &asked
        };
        for f in found {
            let verdict = selection::judge(policy, &config.opt_out, labels_are, f);
            judged.verdict(policy, verdict, &f.id);
        }
    }
    // Opt-out labels on targets no selector matched: on volumes, the
    // metadata the list shows, or the tags asked for; servers by tags.
    let volume_opt_outs = match client.select_by() {
        SelectBy::Metadata => Ok(opted_out_by_labels(&config.opt_out, &volumes)),
        SelectBy::Tags => opted_out_by_tags(client, &config.opt_out, false).await,
    }
    .map_err(list_error("opted-out volumes"))?;
    let server_opt_outs = if servers_skipped.is_none() {
        opted_out_by_tags(client, &config.opt_out, true)
            .await
            .map_err(list_error("opted-out servers"))?
    } else {
        HashMap::new()
    };
    let last_good = match store {
        Some(store) => store.last_good_by_target(cloud)?,
        None => HashMap::new(),
    };
    let rows = volumes
        .into_iter()
        .map(|f| ("volume", f, &volume_opt_outs))
        .chain(servers.into_iter().map(|f| ("server", f, &server_opt_outs)))
        .map(|(kind, f, opt_outs)| {
            let mut policies = judged.covering(&f.id);
            if policies.is_empty() {
                // A server backup takes every disk of the server.
                policies = f
                    .attached_to
                    .iter()
                    .flat_map(|server| judged.covering(server))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
            }
            let standing = if !policies.is_empty() {
                Standing::Protected
            } else if let Some(why) = judged.out.get(&f.id).or_else(|| opt_outs.get(&f.id)) {
                Standing::OptedOut(why.clone())
            } else {
                Standing::Unprotected
            };
            Row {
                kind,
                last_good: last_good.get(&f.id).cloned(),
                id: f.id,
                name: f.name,
                standing,
                policies,
            }
        })
        .collect();
    Ok(CloudCoverage {
        cloud: cloud.to_string(),
        rows,
        servers_skipped,
    })
}

/// What the policies made of each target.
#[derive(Default)]
struct Judged {
    /// Target → the policies covering it.
    covered: HashMap<String, BTreeSet<String>>,
    /// Target → why a policy left it out.
    out: HashMap<String, String>,
}

impl Judged {
    fn listed(&mut self, policy: &Policy) {
        for id in policy.targets() {
            self.covered
                .entry(id.clone())
                .or_default()
                .insert(policy.name.clone());
        }
    }

    fn verdict(&mut self, policy: &Policy, verdict: Option<Verdict>, id: &str) {
        match verdict {
            Some(Verdict::In(_)) => {
                self.covered
                    .entry(id.to_string())
                    .or_default()
                    .insert(policy.name.clone());
            }
            Some(Verdict::Excluded) => {
                self.out
                    .entry(id.to_string())
                    .or_insert_with(|| format!("excluded by policy {}", policy.name));
            }
            Some(Verdict::OptedOut(label)) => {
                self.out
                    .insert(id.to_string(), format!("opted out by {label}"));
            }
            None => {}
        }
    }

    fn covering(&self, id: &str) -> Vec<String> {
        self.covered
            .get(id)
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Targets whose listed labels carry an opt-out pair.
fn opted_out_by_labels(
    opt_out: &BTreeMap<String, String>,
    found: &[Found],
) -> HashMap<String, String> {
    found
        .iter()
        .filter_map(|f| {
            let label = selection::opted_out(opt_out, &f.labels)?;
            Some((f.id.clone(), format!("opted out by {label}")))
        })
        .collect()
}

/// Targets tagged with an opt-out pair, asked of the tag filter.
async fn opted_out_by_tags(
    client: &CloudClient,
    opt_out: &BTreeMap<String, String>,
    servers: bool,
) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (key, value) in opt_out {
        let tags = [TagMatch {
            key: key.clone(),
            value: Some(value.clone()),
        }];
        let found = if servers {
            client.servers_with_tags(&tags).await?
        } else {
            client.volumes_with_tags(&tags).await?
        };
        for f in found {
            out.entry(f.id)
                .or_insert_with(|| format!("opted out by {key}={value}"));
        }
    }
    Ok(out)
}
