//! `vbs-agent check`: validate a policy file and show when each policy fires.

use std::path::Path;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};

use super::{load_config, EXIT_INVALID};
use crate::store::check_state_dir;

mod clouds;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Err(e) = check_state_dir(&config.state_dir, &config.history_path()) {
        errln!("{}: {e}", path.display());
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    outln!(
        "{}: valid ({} cloud(s), {} policy(ies)); history in {}",
        path.display(),
        config.clouds.len(),
        config.policies.len(),
        config.history_path().display()
    );
    for cloud in config.clouds.values() {
        clouds::show(cloud);
    }
    let now = Utc::now();
    for p in &config.policies {
        outln!();
        outln!(
            "policy {} ({}, cloud {}, {} {}(s))",
            p.name,
            p.kind().as_str(),
            p.cloud,
            p.targets().len(),
            if p.kind() == crate::config::PolicyKind::Server {
                "server"
            } else {
                "volume"
            }
        );
        if let Some(selector) = &p.select {
            let excluded = if selector.exclude.is_empty() {
                String::new()
            } else {
                format!(", {} excluded", selector.exclude.len())
            };
            outln!("  and every {} matching {selector}{excluded} (resolved at each firing; see `vbs-agent targets`)", p.kind().target_noun());
        }
        if let crate::config::Work::Backup(w) = &p.work {
            if let Some(vault) = &w.vault {
                let missing = if w.add_to_vault {
                    "volumes missing from it are added to it at each run (add_to_vault)"
                } else {
                    "a volume missing from it fails its job: add it in the CBR console, or set add_to_vault: true"
                };
                outln!("  on CBR: one checkpoint per run in vault {vault}; {missing}; `vbs-agent targets` shows which are missing");
            }
        }
        outln!("  schedule \"{}\" in {}", p.schedule.as_str(), p.timezone);
        match crate::audit::effective_rpo(p, now) {
            Some(rpo) => outln!(
                "  rpo: {} ({})",
                humantime::format_duration(rpo.max_age),
                match rpo.source {
                    crate::audit::RpoSource::Configured => "configured",
                    crate::audit::RpoSource::Schedule =>
                        "the schedule's longest gap + jitter + completion_timeout",
                }
            ),
            None => outln!("  rpo: none (the schedule fires less than twice a year; set rpo:)"),
        }
        let next = p.schedule.upcoming(now, p.timezone, 3);
        if next.is_empty() {
            outln!("  never fires");
        }
        for t in next {
            outln!(
                "  next: {}  ({})",
                t.with_timezone(&p.timezone).format("%Y-%m-%d %H:%M:%S %Z"),
                t.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
