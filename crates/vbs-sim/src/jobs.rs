//! VBS and EVS jobs (`GET /v1/{project}/jobs/{job_id}`): the restores
//! started through `cloudbackups` and the disks made from CBR backups
//! through `cloudvolumes`, in the shape of the vendor's job sample:
//! `INIT` for the first tenth of the restore, `RUNNING`, then `SUCCESS` or
//! `FAIL` (`VolumeBackup.0200` and the fault's reason). An unknown job is a
//! 404 with code `common.0011` (the vendor's "querying the task failed").

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::restores::{Phase, Restore};
use super::routes::vendor_error;
use super::state::State;
use super::{swept, Shared};

/// The job type of a restore, as CTS and the SDKs name it.
pub const RESTORE_JOB_TYPE: &str = "bksRestoreBackup";

/// The jobs' timestamps: UTC, milliseconds, `Z`.
pub fn job_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A restore's job as the vendor shows it.
pub fn job(st: &State, r: &Restore) -> Value {
    let duration = st.config.restore_duration;
    let phase = st.restore_phase(r);
    let status = match phase {
        Phase::Running if r.started.elapsed() < duration / 10 => "INIT",
        Phase::Running => "RUNNING",
        Phase::Succeeded => "SUCCESS",
        Phase::Failed => "FAIL",
    };
    let end_time = if phase == Phase::Running {
        String::new()
    } else {
        job_time(r.began_at + chrono::TimeDelta::from_std(duration).unwrap_or_default())
    };
    let failed = phase == Phase::Failed;
    json!({
        "status": status,
        "entities": {"backup_id": r.backup_id, "volume_id": r.volume_id},
        "job_id": r.job_id,
        "job_type": r.job_type,
        "begin_time": job_time(r.began_at),
        "end_time": end_time,
        "error_code": match (failed, r.job_type) {
            (true, RESTORE_JOB_TYPE) => json!("VolumeBackup.0200"),
            _ => Value::Null,
        },
        "fail_reason": if failed { json!(r.fail_reason) } else { Value::Null },
        "sub_jobs": [],
    })
}

/// `GET /v1/{project}/jobs/{job_id}`.
pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let st = swept(&state);
    let found = st
        .restores
        .iter()
        .find(|r| r.project == project && r.job_id.as_deref() == Some(id.as_str()));
    match found {
        Some(r) => Json(job(&st, r)).into_response(),
        None => vendor_error(
            StatusCode::NOT_FOUND,
            "common.0011",
            &format!("Querying the job failed: job {id} does not exist."),
        ),
    }
}
