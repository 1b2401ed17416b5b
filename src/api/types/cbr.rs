//! CBR (Cloud Backup and Recovery) answers: vaults and their resources, the
//! checkpoint a backup run creates, the backups it makes, share members and
//! operation logs. Read leniently, as the samples demand: times with
//! `+00:00` or none, sizes and counts as numbers or strings,
//! `enterprise_project_id` as `0` or `"0"`, booleans as `"true"`, success
//! shown as an `error_info` of empty strings; every field but the id may be
//! null or missing, and unknown fields are ignored.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::lenient::{
    lenient_bool, lenient_count, lenient_number, lenient_object, lenient_text, lenient_time,
    null_as_default, null_as_empty,
};

/// A vault: where CBR keeps the backups of the resources bound to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Vault {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub resources: Vec<VaultResource>,
    /// Set when the vault backs up by a policy of its own.
    #[serde(default)]
    pub policy_id: Option<String>,
    #[serde(default)]
    pub provider_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub auto_bind: Option<bool>,
    /// A locked vault refuses the manual deletion of automatic backups.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub locked: Option<bool>,
    #[serde(default)]
    pub billing: Option<Billing>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl Vault {
    /// Whether `resource_id` is bound to the vault.
    pub fn holds(&self, resource_id: &str) -> bool {
        self.resources.iter().any(|r| r.id == resource_id)
    }
}

/// A resource bound to a vault.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct VaultResource {
    pub id: String,
    /// `OS::Cinder::Volume` or `OS::Nova::Server`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protect_status: Option<String>,
    /// GB.
    #[serde(default, deserialize_with = "lenient_count")]
    pub size: Option<u64>,
}

/// A vault's capacity and kind. `size` is in GB but `used` in MB.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Billing {
    /// `disk`, `server` or `turbo`.
    #[serde(default)]
    pub object_type: Option<String>,
    /// `backup` or `replication`.
    #[serde(default)]
    pub protect_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub size: Option<u64>,
    #[serde(default, deserialize_with = "lenient_count")]
    pub used: Option<u64>,
    /// `available`, `lock`, `frozen`, `deleting` or `error`.
    #[serde(default)]
    pub status: Option<String>,
}

/// The checkpoint (restore point) a backup run creates. It names no
/// backups: they are found by `checkpoint_id` once they exist.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CbrCheckpoint {
    pub id: String,
    /// `protecting`, `available`, `error`, `deleting`, `deleted` or
    /// `error-deleting`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub vault: Option<CheckpointVault>,
    /// Absent from the checkpoint's own GET (the vendor's bug STO-10008).
    #[serde(default)]
    pub extra_info: Option<CheckpointInfo>,
}

impl CbrCheckpoint {
    /// The resources the run skipped: a 200 does not mean all were backed up.
    pub fn skipped(&self) -> &[Skipped] {
        self.vault
            .as_ref()
            .map_or(&[][..], |v| v.skipped_resources.as_slice())
    }
}

/// The vault of a checkpoint, with what the run took and what it skipped.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CheckpointVault {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub resources: Vec<CheckpointResource>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub skipped_resources: Vec<Skipped>,
}

/// A resource a run backs up.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CheckpointResource {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub protect_status: Option<String>,
    /// GB; a number in the samples, a string in the docs' table.
    #[serde(default, deserialize_with = "lenient_count")]
    pub resource_size: Option<u64>,
}

/// A resource a run did not back up, and why.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Skipped {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub code: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The name and description a run was given.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct CheckpointInfo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Days; `-1` is "keep forever".
    #[serde(default, deserialize_with = "lenient_number")]
    pub retention_duration: Option<f64>,
}

/// One backup of one resource. A server backup carries a backup per disk
/// in `children` (their ids are what a server restore maps).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CbrBackup {
    pub id: String,
    #[serde(default)]
    pub checkpoint_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// `available`, `protecting`, `deleting`, `restoring`, `error`,
    /// `waiting_protect`, `waiting_delete` or `waiting_restore`.
    pub status: String,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_az: Option<String>,
    /// GB.
    #[serde(default, deserialize_with = "lenient_count")]
    pub resource_size: Option<u64>,
    #[serde(default)]
    pub vault_id: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub expired_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub children: Vec<CbrBackup>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extend_info: BackupInfo,
}

/// A backup as the cloud sent it: every field (`record`, shown by
/// `backup show` and `backups --format json`) and the fields read from it.
#[derive(Debug, Clone, PartialEq)]
pub struct CbrBackupRecord {
    pub backup: CbrBackup,
    pub record: serde_json::Map<String, Value>,
}

impl<'de> Deserialize<'de> for CbrBackupRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let record = serde_json::Map::<String, Value>::deserialize(d)?;
        let backup = CbrBackup::deserialize(Value::Object(record.clone()))
            .map_err(serde::de::Error::custom)?;
        Ok(Self { backup, record })
    }
}

/// `extend_info` of a backup.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct BackupInfo {
    /// Made by a vault policy rather than on request: classify backups by
    /// this, not by an `autobk_` name.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub auto_trigger: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub incremental: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub bootable: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    /// `na`, `backup` or `snapshot`.
    #[serde(default)]
    pub supported_restore_mode: Option<String>,
}

/// A project a backup is shared with.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub backup_id: Option<String>,
    /// The recipient project (also the member id a PUT or DELETE takes).
    #[serde(default)]
    pub dest_project_id: Option<String>,
    /// `pending`, `accepted` or `rejected`.
    #[serde(default)]
    pub status: Option<String>,
    /// The recipient's vault, once accepted.
    #[serde(default)]
    pub vault_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// One asynchronous task (backup, restore, delete, …) and its outcome.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct OperationLog {
    pub id: String,
    /// `backup`, `restore`, `delete`, `vault_delete`, `remove_resource`
    /// or `replication`.
    #[serde(default)]
    pub operation_type: Option<String>,
    /// `success`, `skipped`, `failed`, `running`, `timeout` or `waiting`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub checkpoint_id: Option<String>,
    #[serde(default)]
    pub vault_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub error_info: ErrorInfo,
    #[serde(default, deserialize_with = "lenient_object")]
    pub extra_info: Option<Value>,
}

impl OperationLog {
    /// The resource the task was about (`extra_info.resource.id`).
    pub fn resource_id(&self) -> Option<&str> {
        self.extra("resource", "id")
    }

    /// The backup the task made or used (`extra_info.backup.backup_id`).
    pub fn backup_id(&self) -> Option<&str> {
        self.extra("backup", "backup_id")
    }

    /// Progress in percent (`extra_info.common.progress`).
    pub fn progress(&self) -> Option<f64> {
        let p = self.extra_info.as_ref()?.get("common")?.get("progress")?;
        p.as_f64()
            .or_else(|| p.as_str().and_then(|s| s.trim().parse().ok()))
    }

    fn extra(&self, section: &str, key: &str) -> Option<&str> {
        self.extra_info
            .as_ref()?
            .get(section)?
            .get(key)?
            .as_str()
            .filter(|s| !s.is_empty())
    }
}

/// Why a task failed. On success both are empty strings, which read as `None`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ErrorInfo {
    #[serde(default, deserialize_with = "lenient_text")]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ErrorInfo {
    /// `BackupService.xxxx`, if the task failed with one.
    pub fn code(&self) -> Option<&str> {
        nonempty(self.code.as_deref())
    }

    pub fn message(&self) -> Option<&str> {
        nonempty(self.message.as_deref())
    }
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}
