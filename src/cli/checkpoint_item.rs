//! `vbs-agent checkpoint-item show ID`: one server backup
//! (`GET /v1/{project_id}/checkpoint_items/{id}`), every field.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::table;

/// What `checkpoint-item` can do.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CheckpointItemCommand {
    /// Show one server backup with every field the cloud reports.
    Show {
        /// The checkpoint item (server backup) id.
        id: String,
        #[arg(long, short, value_name = "FILE")]
        config: std::path::PathBuf,
        #[arg(long, value_name = "NAME")]
        cloud: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = super::Format::Table)]
        format: super::Format,
    },
}

pub async fn run(command: &CheckpointItemCommand) -> anyhow::Result<ExitCode> {
    let CheckpointItemCommand::Show {
        id,
        config,
        cloud,
        format,
    } = command;
    show(config, cloud, id, *format == super::Format::Json).await
}

async fn show(path: &Path, cloud: &str, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = match super::cloud::client(path, cloud)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let item = client.checkpoint_item(id).await?;
    if json {
        outln!("{}", super::escape::json(&item.raw)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    flatten("", &item.raw, &mut rows);
    out!("{}", table::render(&["field", "value"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// One row per leaf: `extend_info.volume_backups[0].id  …`.
fn flatten(prefix: &str, value: &Value, rows: &mut Vec<Vec<String>>) {
    let join = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&join(k), v, rows);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, rows);
            }
        }
        Value::String(s) => rows.push(vec![prefix.to_string(), s.clone()]),
        Value::Null => rows.push(vec![prefix.to_string(), "-".into()]),
        other => rows.push(vec![prefix.to_string(), other.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_becomes_a_row() {
        let v = serde_json::json!({"id": "i", "extend_info": {"progress": 29.9, "fail_code": {},
            "volume_backups": [{"id": "vb"}]}, "description": null});
        let mut rows = Vec::new();
        flatten("", &v, &mut rows);
        let pairs: Vec<(String, String)> = rows
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("description".to_string(), "-".to_string()),
                ("extend_info.fail_code".into(), "{}".into()),
                ("extend_info.progress".into(), "29.9".into()),
                ("extend_info.volume_backups[0].id".into(), "vb".into()),
                ("id".into(), "i".into()),
            ]
        );
    }
}
