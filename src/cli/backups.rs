//! `vbs-agent backups` and `vbs-agent backup show`: the cloud's own view of
//! its backups — the summary list (`GET /v2/{project_id}/backups`, every
//! page) and one backup's detail (`GET /v3/{project_id}/backups/{id}`),
//! every field of it. On a cloud that backs up through CBR the same
//! commands read CBR's backups (`GET /v3/{project_id}/backups` of the CBR
//! endpoint, filtered by disk and vault) and name the service.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::{table, EXIT_INVALID};
use crate::api::types::{Backup, CbrBackupRecord};
use crate::api::CloudClient;

/// The summary list's filters, as the vendor page names them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackupFilters {
    /// Backup name (matched by the cloud).
    #[arg(long)]
    pub name: Option<String>,
    /// available, error, restoring, creating, deleting or error_restoring.
    #[arg(long)]
    pub status: Option<String>,
    /// Backups of this volume only.
    #[arg(long)]
    pub volume_id: Option<String>,
    /// CBR only: backups kept in this vault (its name or ID).
    #[arg(long)]
    pub vault: Option<String>,
    /// At most this many backups in all (pages are followed until then).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

impl BackupFilters {
    fn query(&self) -> Vec<(&'static str, &str)> {
        [
            ("name", &self.name),
            ("status", &self.status),
            ("volume_id", &self.volume_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// `vbs-agent backups`.
pub async fn list(
    path: &Path,
    cloud: &str,
    filters: &BackupFilters,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = match super::cloud::client(path, cloud)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let max = filters.limit.and_then(|l| usize::try_from(l).ok());
    if client.backs_up_on_cbr().await? {
        return list_cbr(&client, filters, max, json).await;
    }
    if let Some(vault) = &filters.vault {
        errln!(
            "error: --vault {vault}: cloud `{cloud}` backs up through VBS, which has no vaults \
             (set `backup_service: cbr` on a cloud whose backups are in CBR)"
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let backups = client.backup_summaries(&filters.query(), max).await?;
    if json {
        outln!("{}", super::escape::json(&backups)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|b| vec![b.id.clone(), b.name.clone().unwrap_or_else(|| "-".into())])
        .collect();
    out!("{}", table::render(&["backup id", "name"], &rows));
    outln!("{} backup(s)", backups.len());
    Ok(ExitCode::SUCCESS)
}

/// `vbs-agent backups` on a CBR cloud: the backups CBR lists (every page),
/// filtered by name, status, disk (`resource_id`) and vault.
async fn list_cbr(
    client: &CloudClient,
    filters: &BackupFilters,
    max: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let vault_id = match &filters.vault {
        Some(vault) => match client.vault_named(vault, "disk").await? {
            Some(v) => Some(v.id),
            None => anyhow::bail!("no CBR disk vault `{vault}` in this project"),
        },
        None => None,
    };
    let mut query: Vec<(&'static str, &str)> = [
        ("name", &filters.name),
        ("status", &filters.status),
        ("resource_id", &filters.volume_id),
        ("vault_id", &vault_id),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    .collect();
    query.push(("resource_type", "OS::Cinder::Volume"));
    let mut backups = client.cbr_backup_records(&query).await?;
    if let Some(max) = max {
        backups.truncate(max);
    }
    if json {
        let records: Vec<_> = backups.iter().map(|b| &b.record).collect();
        outln!("{}", super::escape::json(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = backups
        .iter()
        .map(|CbrBackupRecord { backup: b, .. }| {
            vec![
                b.id.clone(),
                text(&b.name),
                b.status.clone(),
                text(&b.resource_id),
                b.resource_size
                    .map_or_else(|| "-".into(), |gb| format!("{gb} GB")),
                b.created_at.map_or_else(
                    || "-".into(),
                    |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                ),
                text(&b.vault_id),
            ]
        })
        .collect();
    out!(
        "{}",
        table::render(
            &[
                "backup id",
                "name",
                "status",
                "volume",
                "size",
                "created",
                "vault"
            ],
            &rows
        )
    );
    outln!("{} backup(s) in CBR", backups.len());
    Ok(ExitCode::SUCCESS)
}

/// `vbs-agent backup show`.
pub async fn show(path: &Path, cloud: &str, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = match super::cloud::client(path, cloud)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if client.backs_up_on_cbr().await? {
        let backup = client.cbr_backup_record(id).await?;
        if json {
            outln!("{}", super::escape::json(&backup.record)?);
            return Ok(ExitCode::SUCCESS);
        }
        let mut rows = vec![vec!["service".to_string(), "cbr".to_string()]];
        rows.extend(record_rows(&backup.record, CBR_DOCUMENTED));
        out!("{}", table::render(&["field", "value"], &rows));
        return Ok(ExitCode::SUCCESS);
    }
    let backup = client.backup(id).await?;
    if json {
        outln!("{}", super::escape::json(&backup.record)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{}",
        table::render(&["field", "value"], &detail_rows(&backup))
    );
    Ok(ExitCode::SUCCESS)
}

/// The fields of the vendor's detail page, in its order; every other field
/// the cloud sent follows in name order.
const DOCUMENTED: &[&str] = &[
    "id",
    "name",
    "status",
    "description",
    "fail_reason",
    "volume_id",
    "snapshot_id",
    "size",
    "object_count",
    "container",
    "availability_zone",
    "is_incremental",
    "has_dependent_backups",
    "created_at",
    "updated_at",
    "data_timestamp",
    "links",
];

/// The fields of CBR's backup detail page, in its order.
const CBR_DOCUMENTED: &[&str] = &[
    "id",
    "name",
    "status",
    "description",
    "checkpoint_id",
    "resource_id",
    "resource_name",
    "resource_type",
    "resource_size",
    "resource_az",
    "vault_id",
    "parent_id",
    "image_type",
    "protected_at",
    "created_at",
    "updated_at",
    "expired_at",
    "extend_info",
    "children",
    "project_id",
    "enterprise_project_id",
    "provider_id",
];

/// The keys of `record`: those of `documented` first, in its order, then
/// every other one in name order.
fn ordered_keys<'a>(
    record: &'a serde_json::Map<String, Value>,
    documented: &[&'a str],
) -> Vec<&'a str> {
    let mut keys: Vec<&str> = documented
        .iter()
        .copied()
        .filter(|k| record.contains_key(*k))
        .collect();
    let mut others: Vec<&str> = record
        .keys()
        .map(String::as_str)
        .filter(|k| !documented.contains(k))
        .collect();
    others.sort_unstable();
    keys.extend(others);
    keys
}

/// One row per field of `record`, its value as sent (`null` included).
fn record_rows(record: &serde_json::Map<String, Value>, documented: &[&str]) -> Vec<Vec<String>> {
    ordered_keys(record, documented)
        .into_iter()
        .map(|key| vec![key.to_string(), cell(&record[key])])
        .collect()
}

/// One row per field the cloud sent, its value as sent (`null` included);
/// a VBS-wrapped description (`{"DESC": …, "INC": …}`) also gets its text.
fn detail_rows(backup: &Backup) -> Vec<Vec<String>> {
    let record = &backup.record;
    let keys = ordered_keys(record, DOCUMENTED);
    let mut rows = Vec::with_capacity(keys.len() + 1);
    for key in keys {
        rows.push(vec![key.to_string(), cell(&record[key])]);
        if key == "description" {
            let raw = backup.description.as_deref();
            if let Some(text) = backup
                .description_text()
                .filter(|t| Some(t.as_str()) != raw)
            {
                rows.push(vec!["description (text)".into(), text]);
            }
        }
    }
    rows
}

/// A value on one line: strings as they are, everything else as JSON.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::types::tests::sample;

    #[test]
    fn every_field_of_the_vendor_samples_is_a_row() {
        for name in [
            "vbs_backup_show_v3_otc.json",
            "vbs_backup_show_otcextensions.json",
            "vbs_backup_show_gophertelekomcloud.json",
            "cinder_backup_show_v3.56_apiref.json",
        ] {
            let body = sample(name);
            let sent: Value = serde_json::from_str(&body).unwrap();
            let sent = sent["backup"].as_object().unwrap();
            let backup = crate::api::decode::backup(&body).unwrap();
            let rows = detail_rows(&backup);
            for (key, value) in sent {
                let row = rows
                    .iter()
                    .find(|r| r[0] == *key)
                    .unwrap_or_else(|| panic!("{name}: no row for `{key}`"));
                assert_eq!(row[1], cell(value), "{name}: {key}");
            }
            assert_eq!(
                &backup.record, sent,
                "{name}: the JSON output is the record"
            );
        }
    }

    #[test]
    fn documented_fields_come_first_and_nulls_show_as_null() {
        let backup = crate::api::decode::backup(&sample("vbs_backup_show_v3_otc.json")).unwrap();
        let rows = detail_rows(&backup);
        let keys: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(&keys[..3], ["id", "name", "status"]);
        assert_eq!(keys.last(), Some(&"os-backup-project-attr:project_id"));
        let row = |k: &str| rows.iter().find(|r| r[0] == k).unwrap()[1].clone();
        assert_eq!(row("name"), "null");
        assert_eq!(row("object_count"), "null");
        assert_eq!(row("has_dependent_backups"), "false");
        assert_eq!(row("created_at"), "2013-06-27T08:48:03.000000");
    }

    #[test]
    fn a_wrapped_description_also_shows_its_text() {
        let body = r#"{"backup": {"id": "b1", "status": "available",
            "description": "{\"DESC\": \"nightly\", \"INC\": 1}"}}"#;
        let rows = detail_rows(&crate::api::decode::backup(body).unwrap());
        let i = rows.iter().position(|r| r[0] == "description").unwrap();
        assert_eq!(rows[i + 1], ["description (text)", "nightly"]);
    }
}
