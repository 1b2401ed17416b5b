//! Response models, parsed tolerantly: unknown fields are ignored, documented
//! fields may be null or absent, timestamps may lack a zone or use a
//! lower-case `t`, the project id comes under several names, and duplicate
//! keys (seen in SDK fixtures) keep the last value.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use lenient::{lenient_time, null_as_empty};

/// A Cinder/EVS snapshot.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub volume_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// A backup as the detail call (and the detailed list) reports it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Backup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub volume_id: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub object_count: Option<u64>,
    #[serde(default)]
    pub is_incremental: Option<bool>,
    #[serde(default)]
    pub has_dependent_backups: Option<bool>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub data_timestamp: Option<DateTime<Utc>>,
    /// Filled from whichever project-id key the server used.
    #[serde(skip)]
    pub project_id: Option<String>,
    /// The object exactly as the server sent it, every field included
    /// (vendor extensions, `service_metadata`, nulls), for `backup show`.
    #[serde(skip)]
    pub record: serde_json::Map<String, Value>,
}

/// Keys under which backups carry their project id, depending on API
/// version and vendor.
const PROJECT_ID_KEYS: &[&str] = &[
    "os-backup-project-attr:project_id",
    "os-backup-project-attr:tenant_id",
    "os-bak-tenant-attr:tenant_id",
];

impl Backup {
    /// Builds a backup from a JSON object, reading the project id under any
    /// of its spellings.
    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        let project_id = PROJECT_ID_KEYS
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string));
        let record = match &v {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        let mut backup: Backup = serde_json::from_value(v)?;
        backup.project_id = project_id;
        backup.record = record;
        Ok(backup)
    }

    /// The human description: VBS may wrap it as `{"DESC": "…", "INC": 0}`.
    pub fn description_text(&self) -> Option<String> {
        let raw = self.description.as_deref()?;
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => map.get("DESC").and_then(Value::as_str).map(str::to_string),
            _ => Some(raw.to_string()),
        }
    }
}

/// A backup as the summary list reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct BackupSummary {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `self` and `bookmark` URLs (absent from some create answers).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub links: Vec<Link>,
}

/// A backup share (VBS `os-vendor-backup-sharing`).
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct Share {
    pub id: String,
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub from_project_id: Option<String>,
    #[serde(default)]
    pub to_project_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient_time",
        serialize_with = "time_out"
    )]
    pub created_at: Option<DateTime<Utc>>,
    /// The shared backup, as the list call nests it.
    #[serde(default)]
    pub backup: Option<SharedBackup>,
}

/// The part of a shared backup the share list carries that the agent shows.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct SharedBackup {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub volume_id: Option<String>,
}

fn time_out<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// A `*_links` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct Link {
    #[serde(default)]
    pub href: Option<String>,
    #[serde(default)]
    pub rel: Option<String>,
}

/// The `marker` of the `next` link, if any: the next page is rebuilt from it
/// against the configured endpoint, because vendor links may drop the API
/// version from the path.
pub fn next_marker(links: &[Link]) -> Option<String> {
    let href = links
        .iter()
        .find(|l| l.rel.as_deref() == Some("next"))?
        .href
        .as_deref()?;
    let url = url::Url::parse(href)
        .or_else(|_| url::Url::parse("http://relative.invalid/").and_then(|b| b.join(href)))
        .ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "marker")
        .map(|(_, v)| v.into_owned())
        .filter(|m| !m.is_empty())
}

/// Reads an API timestamp: RFC 3339, or a zone-less `YYYY-MM-DDTHH:MM:SS[.ffffff]`
/// (taken as UTC, as Cinder means it), `T` in either case or a space.
pub fn parse_api_time(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim().replacen('t', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    let s = s.trim_end_matches('Z');
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

mod cbr;
mod csbs;
pub(crate) mod inventory;
mod lenient;
mod restore;
pub use cbr::{
    BackupInfo, Billing, CbrBackup, CbrBackupRecord, CbrCheckpoint, CheckpointInfo,
    CheckpointResource, CheckpointVault, ErrorInfo, Member, OperationLog, Skipped, Vault,
    VaultResource,
};
pub use csbs::{
    Checkpoint, CheckpointItem, ExtendInfo, FailCode, PlanResource, ProtectionPlan, VolumeBackup,
};
pub use inventory::{Found, TagMatch};
pub use restore::{Job, JobState, Restored, Volume};

#[cfg(test)]
pub(crate) mod tests;
