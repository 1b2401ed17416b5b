//! `vbs-agent targets`: each policy's targets as the cloud answers now —
//! the listed IDs and what the selector matches, with the rule that
//! matched, and the matches left out (excluded, opted out). Changes
//! nothing and needs no history.

use std::path::Path;
use std::process::ExitCode;

use super::{load_config, table, EXIT_INVALID};
use crate::api::{ClientSettings, CloudClient};
use crate::config::{Config, Policy, PolicyKind};
use crate::engine::{labels_are, ScopeQuery};
use crate::selection::{self, Verdict, LISTED};

const HEADER: &[&str] = &["policy", "kind", "target", "name", "in scope", "why"];

pub async fn run(path: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let policies: Vec<&Policy> = config
        .policies
        .iter()
        .filter(|p| p.kind() != PolicyKind::Restore)
        .filter(|p| only.is_none_or(|name| p.name == name))
        .collect();
    if let (Some(name), true) = (only, policies.is_empty()) {
        errln!("error: no policy `{name}` in {}", path.display());
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let mut rows = Vec::new();
    for policy in policies {
        rows.extend(policy_rows(&config, policy).await?);
    }
    out!("{}", table::render(HEADER, &rows));
    Ok(ExitCode::SUCCESS)
}

/// One row per target of `policy`, and per match it leaves out.
async fn policy_rows(config: &Config, policy: &Policy) -> anyhow::Result<Vec<Vec<String>>> {
    let noun = policy.kind().target_noun();
    let row = |id: &str, name: Option<&str>, in_scope: &str, why: String| {
        vec![
            policy.name.clone(),
            noun.to_string(),
            id.to_string(),
            name.unwrap_or("-").to_string(),
            in_scope.to_string(),
            why,
        ]
    };
    let mut rows: Vec<Vec<String>> = policy
        .targets()
        .iter()
        .map(|id| row(id, None, "yes", LISTED.to_string()))
        .collect();
    let Some(selector) = &policy.select else {
        return Ok(rows);
    };
    let cloud = config
        .clouds
        .get(&policy.cloud)
        .ok_or_else(|| anyhow::anyhow!("cloud `{}` is not configured", policy.cloud))?;
    let client = CloudClient::new(cloud, ClientSettings::default())?;
    let found = ScopeQuery::of(policy, selector, client.select_by())
        .ask(&client)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "policy {}: the selector could not be resolved: {e}",
                policy.name
            )
        })?;
    let labels_are = labels_are(policy, &client);
    let before = rows.len();
    for f in found.iter() {
        let name = f.name.as_deref();
        match selection::judge(policy, &config.opt_out, labels_are, f) {
            Some(Verdict::In(why)) if why != LISTED => rows.push(row(&f.id, name, "yes", why)),
            Some(Verdict::Excluded) => {
                rows.push(row(&f.id, name, "no", "listed under select.exclude".into()))
            }
            Some(Verdict::OptedOut(label)) => {
                rows.push(row(&f.id, name, "no", format!("opted out by {label}")))
            }
            _ => {}
        }
    }
    if rows.len() == before && policy.targets().is_empty() {
        rows.push(row(
            "-",
            None,
            "no",
            format!("the selector ({labels_are} {selector}) matches no {noun}"),
        ));
    }
    Ok(rows)
}
