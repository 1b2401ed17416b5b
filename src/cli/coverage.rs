//! `vbs-agent coverage`: every volume and server of each configured
//! project, the policies covering it and its last good backup, with
//! `UNPROTECTED` where none does ([`crate::coverage`]). Exit 3 when a
//! target is unprotected and not opted out, so it can drive an alert.

use std::path::Path;
use std::process::ExitCode;

use chrono::SecondsFormat;
use serde::Serialize;

use super::report::EXIT_RPO_BREACH;
use super::{load_config, table, EXIT_INVALID};
use crate::api::{ClientSettings, CloudClient};
use crate::coverage::{audit, CloudCoverage, Standing};

/// How `coverage` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CoverageFormat {
    Table,
    Json,
    Csv,
}

const HEADER: &[&str] = &[
    "cloud",
    "kind",
    "id",
    "name",
    "status",
    "policies",
    "last good backup",
    "note",
];

/// One line of the output.
#[derive(Serialize)]
struct Line<'a> {
    cloud: &'a str,
    kind: &'a str,
    id: &'a str,
    name: Option<&'a str>,
    status: &'a str,
    policies: String,
    last_good_backup: Option<String>,
    last_good_policy: Option<&'a str>,
    note: Option<&'a str>,
}

pub async fn run(
    path: &Path,
    only: Option<&str>,
    format: CoverageFormat,
) -> anyhow::Result<ExitCode> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if let Some(name) = only.filter(|n| !config.clouds.contains_key(*n)) {
        let known: Vec<&str> = config.clouds.keys().map(String::as_str).collect();
        errln!(
            "error: no cloud `{name}` in {} (clouds: {})",
            path.display(),
            known.join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    // The last good backups come from the history when there is one.
    let store = crate::history_store::open_existing_reader(&config)?;
    let mut clouds = Vec::new();
    for (name, cloud) in &config.clouds {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let client = CloudClient::new(cloud, ClientSettings::default())?;
        clouds.push(audit(&config, name, &client, store.as_ref()).await?);
    }
    for c in &clouds {
        if let Some(why) = &c.servers_skipped {
            errln!("note: cloud {}: servers not listed ({why})", c.cloud);
        }
    }
    let lines: Vec<Line<'_>> = clouds.iter().flat_map(lines).collect();
    match format {
        CoverageFormat::Json => outln!("{}", super::escape::json(&lines)?),
        CoverageFormat::Csv => out!("{}", csv_text(&lines)?),
        CoverageFormat::Table => {
            let rows: Vec<Vec<String>> = lines.iter().map(table_row).collect();
            out!("{}", table::render(HEADER, &rows));
            let unprotected: usize = clouds.iter().map(CloudCoverage::unprotected).sum();
            outln!("{} targets, {unprotected} unprotected", lines.len());
        }
    }
    let unprotected = clouds.iter().any(|c| c.unprotected() > 0);
    Ok(if unprotected {
        ExitCode::from(EXIT_RPO_BREACH)
    } else {
        ExitCode::SUCCESS
    })
}

fn lines(c: &CloudCoverage) -> impl Iterator<Item = Line<'_>> {
    c.rows.iter().map(move |r| Line {
        cloud: &c.cloud,
        kind: r.kind,
        id: &r.id,
        name: r.name.as_deref(),
        status: r.standing.as_str(),
        policies: r.policies.join(","),
        last_good_backup: r
            .last_good
            .as_ref()
            .map(|(_, at)| at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        last_good_policy: r.last_good.as_ref().map(|(p, _)| p.as_str()),
        note: match &r.standing {
            Standing::OptedOut(why) => Some(why),
            _ => None,
        },
    })
}

fn table_row(l: &Line<'_>) -> Vec<String> {
    let dash = |s: Option<&str>| s.unwrap_or("-").to_string();
    vec![
        l.cloud.to_string(),
        l.kind.to_string(),
        l.id.to_string(),
        dash(l.name),
        l.status.to_string(),
        if l.policies.is_empty() {
            "-".into()
        } else {
            l.policies.clone()
        },
        match (&l.last_good_backup, l.last_good_policy) {
            (Some(at), Some(p)) => format!("{at} ({p})"),
            _ => "-".into(),
        },
        dash(l.note),
    ]
}

fn csv_text(lines: &[Line<'_>]) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for line in lines {
        writer.serialize(line)?;
    }
    if lines.is_empty() {
        writer.write_record(HEADER)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}
