//! What restores read: volumes (the scratch volume a drill restores into),
//! Cinder's restore answer, and the vendor's asynchronous jobs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::lenient_time;

/// A Cinder/EVS volume as the detail call reports it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub status: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// The disk type (`SATA`, `SSD`, …); a disk made from a backup needs one.
    #[serde(default)]
    pub volume_type: Option<String>,
    /// Metadata values are strings in Cinder; anything else is dropped.
    #[serde(default, deserialize_with = "string_map")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient_time")]
    pub created_at: Option<DateTime<Utc>>,
}

/// Cinder's answer to `POST …/backups/{id}/restore`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Restored {
    pub backup_id: String,
    pub volume_id: String,
    #[serde(default)]
    pub volume_name: Option<String>,
}

/// Where a vendor job stands (`GET /v1/{project}/jobs/{job_id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// `INIT` or `RUNNING`: keep polling.
    Running,
    Success,
    Fail,
}

/// A vendor (VBS/EVS) asynchronous job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub state: JobState,
    pub job_type: Option<String>,
    /// Job-type specific ids; an empty string counts as absent.
    pub entities: BTreeMap<String, String>,
    /// A `VolumeBackup.xxxx` or `EVS.xxxx` code when the job failed.
    pub error_code: Option<String>,
    pub fail_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawJob {
    job_id: String,
    status: String,
    #[serde(default)]
    job_type: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    entities: BTreeMap<String, String>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    fail_reason: Option<String>,
}

impl Job {
    /// Reads a job; an unknown status is an error, not a guess.
    pub fn from_value(v: Value) -> Result<Self, String> {
        let raw: RawJob = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let state = match raw.status.as_str() {
            "INIT" | "RUNNING" => JobState::Running,
            "SUCCESS" => JobState::Success,
            "FAIL" => JobState::Fail,
            other => return Err(format!("unknown job status `{other}`")),
        };
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        Ok(Self {
            job_id: raw.job_id,
            state,
            job_type: raw.job_type,
            entities: raw.entities,
            error_code: non_empty(raw.error_code),
            fail_reason: non_empty(raw.fail_reason),
        })
    }

    /// Why the job failed, as the cloud says it: the reason and the code.
    pub fn failure(&self) -> String {
        match (&self.fail_reason, &self.error_code) {
            (Some(reason), Some(code)) => format!("{reason} ({code})"),
            (Some(reason), None) => reason.clone(),
            (None, Some(code)) => code.clone(),
            (None, None) => "the job failed without a reason".into(),
        }
    }
}

/// A map of strings; other values and empty strings are left out
/// (EVS nests `sub_jobs` lists in `entities`, VBS may send `""`).
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = Option::<BTreeMap<String, Value>>::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) if !s.is_empty() => Some((k, s)),
            _ => None,
        })
        .collect())
}
