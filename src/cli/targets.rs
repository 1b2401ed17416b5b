//! `vbs-agent targets`: each policy's targets as the cloud answers now —
//! the listed IDs and what the selector matches, with the rule that
//! matched, and the matches left out (excluded, opted out). For a backup
//! policy on a cloud that backs up through CBR, whether each target is in
//! the policy's vault and what happens to those that are not. Changes
//! nothing and needs no history.

use std::path::Path;
use std::process::ExitCode;

use super::{escape, load_config, table, EXIT_INVALID};
use crate::api::{ClientSettings, CloudClient};
use crate::config::{Config, Policy, PolicyKind, Work};
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
    let mut vaults = Vec::new();
    for policy in policies {
        let policy_rows = policy_rows(&config, policy).await?;
        let in_scope: Vec<String> = policy_rows
            .iter()
            .filter(|r| r[4] == "yes")
            .map(|r| r[2].clone())
            .collect();
        vaults.extend(vault_lines(&config, policy, &in_scope).await?);
        rows.extend(policy_rows);
    }
    out!("{}", table::render(HEADER, &rows));
    if !vaults.is_empty() {
        outln!();
        for line in vaults {
            outln!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// For a backup or server policy on a cloud that backs up through CBR: its
/// vault, whether each target is in it, what happens at the next run to
/// those that are not, and a warning when the vault has a policy of its
/// own. Nothing for other policies and VBS clouds.
async fn vault_lines(
    config: &Config,
    policy: &Policy,
    targets: &[String],
) -> anyhow::Result<Vec<String>> {
    let (vault_setting, add_to_vault, object_type) = match &policy.work {
        Work::Backup(w) => (w.vault.as_deref(), w.add_to_vault, "disk"),
        Work::Server(w) => (w.vault.as_deref(), w.add_to_vault, "server"),
        _ => return Ok(Vec::new()),
    };
    let Some(cloud) = config.clouds.get(&policy.cloud) else {
        return Ok(Vec::new());
    };
    let client = CloudClient::new(cloud, ClientSettings::default())?;
    let on_cbr = client.backs_up_on_cbr().await.map_err(|e| {
        anyhow::anyhow!(
            "policy {}: cannot tell whether cloud {} backs up through CBR: {e}",
            policy.name,
            policy.cloud
        )
    })?;
    if !on_cbr {
        return Ok(Vec::new());
    }
    let head = format!("policy {} backs up through CBR", policy.name);
    let Some(name) = vault_setting else {
        return Ok(vec![format!(
            "{head}, but names no `vault`: every job fails; name the {object_type} vault its targets are backed up in"
        )]);
    };
    let vault = client.vault_named(name, object_type).await.map_err(|e| {
        anyhow::anyhow!(
            "policy {}: cannot read CBR vault `{name}`: {e}",
            policy.name
        )
    })?;
    let Some(vault) = vault else {
        return Ok(vec![format!(
            "{head}: vault `{}` DOES NOT EXIST (no CBR {object_type} vault of that name or ID in the project): every job fails; create it in the CBR console, or fix the policy's `vault`",
            escape::one_line(name)
        )]);
    };
    let vault_name = escape::one_line(vault.name.as_deref().unwrap_or(&vault.id)).into_owned();
    let mut lines = vec![format!(
        "{head} into vault {vault_name} ({}):",
        escape::one_line(&vault.id)
    )];
    for target in targets.iter().filter(|t| t.as_str() != "-") {
        let verdict = if vault.holds(target) {
            "in the vault".to_string()
        } else if add_to_vault {
            "NOT in the vault: the next run adds it (add_to_vault: true)".to_string()
        } else {
            "NOT in the vault: its job fails; add it to the vault in the CBR console, or set `add_to_vault: true` in the policy".to_string()
        };
        lines.push(format!("  {target}  {verdict}"));
    }
    if let Some(own) = vault.policy_id.as_deref().filter(|p| !p.is_empty()) {
        lines.push(format!(
            "  warning: vault {vault_name} has its own backup policy {}: CBR backs its volumes up on that schedule too, which doubles the cost; unbind the policy from the vault to leave the schedule to this agent",
            escape::one_line(own)
        ));
    }
    Ok(lines)
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
