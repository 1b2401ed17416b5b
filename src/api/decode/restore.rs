//! Restore bodies: volumes, Cinder's restore answer, vendor jobs.

use super::{json, member, page, typed, DecodeError, Page};
use crate::api::types::{Job, Restored, Volume};

/// `{"volume": {…}}` from create and show.
pub fn volume(body: &str) -> Result<Volume, DecodeError> {
    typed(member(body, "volume")?, "volume")
}

/// A page of the detailed volume list (`GET …/volumes/detail`).
pub fn volumes(body: &str) -> Result<Page<Volume>, DecodeError> {
    page(body, "volumes", |v| typed(v, "volumes[]"))
}

/// `{"restore": {"backup_id", "volume_id", "volume_name"}}` (Cinder, 202).
pub fn restored(body: &str) -> Result<Restored, DecodeError> {
    typed(member(body, "restore")?, "restore")
}

/// `{"job_id": "…"}` from the vendor's asynchronous calls (200).
pub fn job_id(body: &str) -> Result<String, DecodeError> {
    match json(body)?.get("job_id") {
        Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(DecodeError("answer has no `job_id`".into())),
    }
}

/// A job from `GET /v1/{project}/jobs/{job_id}` (the job is the body).
pub fn job(body: &str) -> Result<Job, DecodeError> {
    Job::from_value(json(body)?).map_err(|e| DecodeError(format!("unexpected job: {e}")))
}
