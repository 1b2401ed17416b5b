//! CSBS (Cloud Server Backup Service) answers: the checkpoint a protect
//! call starts and the checkpoint items (server backups) it produces.
//! Parsed leniently: `progress` arrives as an integer, a float (`29.9`) or
//! a string; `extra_info` as an object, `null` or the string `"{}"`;
//! `fail_code` as `{}` or `{"Code": …, "Description": …}`; any field may be
//! null or missing and unknown fields are ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::lenient::{
    lenient_number, lenient_object, lenient_text, lenient_time, null_as_default, null_as_empty,
};

/// `checkpoint` from the protect call: the backup record.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// The checkpoint (backup record) id, not the checkpoint item id.
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_object")]
    pub extra_info: Option<Value>,
    #[serde(default)]
    pub protection_plan: Option<ProtectionPlan>,
}

/// The implicit plan CSBS makes for one protect call.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ProtectionPlan {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub resources: Vec<PlanResource>,
}

/// A resource of a protection plan.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PlanResource {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient_object")]
    pub extra_info: Option<Value>,
}

/// One server backup (`checkpoint_item`), as the list and the get call
/// report it. `raw` keeps the whole answer, for showing every field.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CheckpointItem {
    /// The backup id (what `GET …/checkpoint_items/{id}` takes).
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The backup record the item belongs to (what a delete takes).
    #[serde(default)]
    pub checkpoint_id: Option<String>,
    /// The server backed up.
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    /// `waiting_protect`, `protecting`, `available`, `waiting_restore`,
    /// `restoring`, `error`, `waiting_delete`, `deleting`, `deleted`.
    pub status: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extend_info: ExtendInfo,
    #[serde(skip)]
    pub raw: Value,
}

impl CheckpointItem {
    /// Builds an item from a JSON object, keeping the object in `raw`.
    pub fn from_value(v: Value) -> Result<Self, serde_json::Error> {
        let mut item: CheckpointItem = serde_json::from_value(v.clone())?;
        item.raw = v;
        Ok(item)
    }

    /// Why the backup failed, from `fail_reason` and `fail_code`.
    pub fn failure(&self) -> Option<String> {
        let e = &self.extend_info;
        let reason = e
            .fail_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let code = e.fail_code.as_ref().and_then(FailCode::describe);
        match (reason, code) {
            (Some(r), Some(c)) => Some(format!("{r} ({c})")),
            (Some(r), None) => Some(r.to_string()),
            (None, Some(c)) => Some(c),
            (None, None) => None,
        }
    }
}

/// `extend_info`: progress, failure and the per-volume backups.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ExtendInfo {
    /// 0–100; documented as an integer, seen as a float and as a string.
    #[serde(default, deserialize_with = "lenient_number")]
    pub progress: Option<f64>,
    #[serde(default)]
    pub fail_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_fail_code")]
    pub fail_code: Option<FailCode>,
    /// `backup`, `restore` or `delete`: which operation failed.
    #[serde(default)]
    pub fail_op: Option<String>,
    /// Backup capacity in MB.
    #[serde(default, deserialize_with = "lenient_number")]
    pub size: Option<f64>,
    #[serde(default)]
    pub incremental: Option<bool>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub volume_backups: Vec<VolumeBackup>,
}

/// `fail_code`: `{"Code": 1234, "Description": "…"}`, or `{}` when none.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct FailCode {
    #[serde(
        default,
        rename = "Code",
        alias = "code",
        deserialize_with = "lenient_text"
    )]
    pub code: Option<String>,
    #[serde(default, rename = "Description", alias = "description")]
    pub description: Option<String>,
}

impl FailCode {
    /// `code: description`, or whichever is present.
    pub fn describe(&self) -> Option<String> {
        let code = self.code.as_deref().filter(|c| !c.is_empty());
        let desc = self.description.as_deref().filter(|d| !d.trim().is_empty());
        match (code, desc) {
            (Some(c), Some(d)) => Some(format!("{c}: {d}")),
            (Some(c), None) => Some(c.to_string()),
            (None, Some(d)) => Some(d.to_string()),
            (None, None) => None,
        }
    }
}

/// The backup of one of the server's volumes.
#[derive(Debug, Clone, Deserialize, PartialEq, serde::Serialize)]
pub struct VolumeBackup {
    /// The Cinder backup id.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub source_volume_id: Option<String>,
    #[serde(default)]
    pub source_volume_name: Option<String>,
    /// GB.
    #[serde(default, deserialize_with = "lenient_number")]
    pub source_volume_size: Option<f64>,
    /// MB.
    #[serde(default, deserialize_with = "lenient_number")]
    pub size: Option<f64>,
    #[serde(default)]
    pub incremental: Option<bool>,
    #[serde(default)]
    pub bootable: Option<bool>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
}

/// `fail_code` as an object (possibly `{}`), a string holding one, or absent.
fn lenient_fail_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FailCode>, D::Error> {
    let value = match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Some(v) => v,
        None => return Ok(None),
    };
    Ok(match value {
        Value::Object(_) => serde_json::from_value(value).ok(),
        Value::Number(n) => Some(FailCode {
            code: Some(n.to_string()),
            description: None,
        }),
        Value::String(s) if !s.is_empty() => Some(FailCode {
            code: Some(s),
            description: None,
        }),
        _ => None,
    })
}
