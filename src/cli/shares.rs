//! `vbs-agent shares`: the cloud's backup-share list with its filters
//! (`GET /v2/{project_id}/os-vendor-backup-sharing/detail`), every page.

use std::path::Path;
use std::process::ExitCode;

use super::table;

/// The share list's filters, as the vendor page names them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShareFilters {
    /// List backups shared with this project instead of by it.
    #[arg(long)]
    pub share_to_me: bool,
    #[arg(long)]
    pub volume_id: Option<String>,
    /// Backup name (the cloud matches it fuzzily).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub backup_id: Option<String>,
    #[arg(long)]
    pub from_project_id: Option<String>,
    #[arg(long)]
    pub to_project_id: Option<String>,
    /// name, status, size, id, created_at (default), updated_at…
    #[arg(long)]
    pub sort_key: Option<String>,
    /// asc or desc.
    #[arg(long)]
    pub sort_dir: Option<String>,
    /// One page of at most this many (all pages when neither limit nor offset is given).
    #[arg(long)]
    pub limit: Option<u32>,
    #[arg(long)]
    pub offset: Option<u32>,
}

impl ShareFilters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&'static str, String)> = Vec::new();
        if self.share_to_me {
            q.push(("share_to_me", "true".into()));
        }
        let text = [
            ("volume_id", &self.volume_id),
            ("name", &self.name),
            ("status", &self.status),
            ("backup_id", &self.backup_id),
            ("from_project_id", &self.from_project_id),
            ("to_project_id", &self.to_project_id),
            ("sort_key", &self.sort_key),
            ("sort_dir", &self.sort_dir),
        ];
        q.extend(
            text.into_iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k, v))),
        );
        q.extend(self.limit.map(|l| ("limit", l.to_string())));
        q.extend(self.offset.map(|o| ("offset", o.to_string())));
        q
    }
}

pub async fn run(
    path: &Path,
    cloud: &str,
    filters: &ShareFilters,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let client = match super::cloud::client(path, cloud)? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let query = filters.query();
    let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let shares = client.shares(&pairs).await?;
    if json {
        outln!("{}", super::escape::json(&shares)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = shares
        .iter()
        .map(|s| {
            let backup = s.backup.as_ref();
            let dash = || "-".to_string();
            vec![
                s.id.clone(),
                s.backup_id.clone().unwrap_or_else(dash),
                backup.and_then(|b| b.name.clone()).unwrap_or_else(dash),
                backup.and_then(|b| b.status.clone()).unwrap_or_else(dash),
                s.from_project_id.clone().unwrap_or_else(dash),
                s.to_project_id.clone().unwrap_or_else(dash),
                s.created_at.map_or_else(dash, |t| t.to_rfc3339()),
            ]
        })
        .collect();
    let header = [
        "share id",
        "backup id",
        "backup name",
        "status",
        "from project",
        "to project",
        "created",
    ];
    out!("{}", table::render(&header, &rows));
    outln!("{} share(s)", shares.len());
    Ok(ExitCode::SUCCESS)
}
