//! Restores of backups into volumes, in both of the cloud's dialects:
//! Cinder's `POST …/backups/{id}/restore` (202, into a given volume or one
//! it creates) and the vendor's `POST /v2/{project}/cloudbackups/{id}/restore`
//! (200 with a job, `VolumeBackup.02xx` errors). While a restore runs the
//! volume is `restoring-backup` and the backup `restoring`; then the volume
//! is `available` (with `src_backup_id` in its metadata when it is not the
//! backup's source), or `error_restoring` on a fault, and the backup
//! `available` either way, as Cinder leaves it.

use std::collections::BTreeMap;

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::backups::not_found as backup_not_found;
use super::routes::{body_object, text, vendor_error};
use super::state::{Backup, Project, Refusal, State, Volume};
use super::volumes::{NewVolume, VOLUME_TYPES};
use super::{lock, Shared, VolumeFault};

/// The `fail_reason` of the first of `volumes` with a `RestoreError`
/// fault: a restore from or into it fails.
pub fn restore_fault(p: &Project, volumes: &[&str]) -> Option<String> {
    volumes
        .iter()
        .filter_map(|id| p.volumes.get(*id))
        .find_map(|v| match &v.fault {
            Some(VolumeFault::RestoreError { fail_reason }) => Some(fail_reason.clone()),
            _ => None,
        })
}

/// One restore of a backup into a volume.
pub struct Restore {
    pub project: String,
    pub backup_id: String,
    pub volume_id: String,
    pub started: Instant,
    /// When it began, on the cloud's clock.
    pub began_at: DateTime<Utc>,
    /// Why it fails, when a fault makes it fail.
    pub fail_reason: Option<String>,
    /// The volume gets `src_backup_id` (it is not the backup's source).
    pub marks_volume: bool,
    /// The vendor's job, for a restore through `cloudbackups`.
    pub job_id: Option<String>,
    /// What its job says it was: a vendor restore or an EVS disk made from
    /// a CBR backup.
    pub job_type: &'static str,
}

/// Where a restore stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    Succeeded,
    Failed,
}

/// Why a backup cannot be restored into a volume, before either dialect
/// words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrestorable {
    BackupNotFound,
    BackupNotAvailable,
    VolumeNotFound,
    /// The volume's status, not `available`.
    VolumeNotAvailable(&'static str),
    TooSmall {
        volume: u32,
        backup: u32,
    },
}

impl State {
    pub fn restore_phase(&self, r: &Restore) -> Phase {
        if r.started.elapsed() < self.config.restore_duration {
            Phase::Running
        } else if r.fail_reason.is_some() {
            Phase::Failed
        } else {
            Phase::Succeeded
        }
    }

    /// The latest restore into a volume, and where it stands.
    pub fn last_restore_into(&self, volume_id: &str) -> Option<(&Restore, Phase)> {
        self.restores
            .iter()
            .rev()
            .find(|r| r.volume_id == volume_id)
            .map(|r| (r, self.restore_phase(r)))
    }

    /// Whether a backup is being restored.
    pub fn restoring(&self, backup_id: &str) -> bool {
        self.restores
            .iter()
            .any(|r| r.backup_id == backup_id && self.restore_phase(r) == Phase::Running)
    }

    /// A volume's metadata as the API shows it: the user's, and
    /// `src_backup_id` of the latest successful restore from another
    /// volume's backup.
    pub fn volume_metadata(&self, volume_id: &str, v: &Volume) -> BTreeMap<String, String> {
        let mut metadata = v.metadata.clone();
        let mut marked = self.restores.iter().filter(|r| {
            r.volume_id == volume_id && r.marks_volume && self.restore_phase(r) == Phase::Succeeded
        });
        if let Some(r) = marked.next_back() {
            metadata.insert("src_backup_id".into(), r.backup_id.clone());
        }
        metadata
    }

    /// Cinder's checks of a restore, in Cinder's order: the backup, its
    /// status, the volume (if given), its status, its size.
    pub fn check_restore(
        &self,
        project: &str,
        backup_id: &str,
        volume_id: Option<&str>,
    ) -> Result<(), Unrestorable> {
        let (p, b) = self
            .find::<Backup>(project, backup_id)
            .ok_or(Unrestorable::BackupNotFound)?;
        if self.backup_status(b) != "available" {
            return Err(Unrestorable::BackupNotAvailable);
        }
        let Some(volume_id) = volume_id else {
            return Ok(());
        };
        let v = p
            .volumes
            .get(volume_id)
            .ok_or(Unrestorable::VolumeNotFound)?;
        match self.volume_status(p, volume_id, v) {
            "available" => {}
            status => return Err(Unrestorable::VolumeNotAvailable(status)),
        }
        if v.size_gb < b.size_gb {
            return Err(Unrestorable::TooSmall {
                volume: v.size_gb,
                backup: b.size_gb,
            });
        }
        Ok(())
    }

    /// Starts a restore that passed [`State::check_restore`]; a
    /// `RestoreError` fault on the backup's source volume or on the target
    /// makes it fail.
    pub fn start_restore(
        &mut self,
        project: &str,
        backup_id: &str,
        volume_id: &str,
        job_id: Option<String>,
    ) {
        let Some((p, b)) = self.find::<Backup>(project, backup_id) else {
            return;
        };
        let fail_reason = restore_fault(p, &[&b.volume_id, volume_id]);
        let restore = Restore {
            project: project.to_string(),
            backup_id: backup_id.to_string(),
            volume_id: volume_id.to_string(),
            started: Instant::now(),
            began_at: self.now(),
            fail_reason,
            marks_volume: b.volume_id != volume_id,
            job_id,
            job_type: super::jobs::RESTORE_JOB_TYPE,
        };
        self.restores.push(restore);
    }

    /// `POST …/backups/{id}/restore`: restores into `volume_id`, or into a
    /// volume it creates (named `name`, or `restore_backup_<id>`) of the
    /// backup's size. Returns the volume's id.
    ///
    /// Cinder's POST blocks until the volume it creates leaves `creating`;
    /// the simulator's creates it ready and answers at once, so a client
    /// sees the same: the volume already `restoring-backup`.
    pub fn restore_cinder(
        &mut self,
        project: &str,
        backup_id: &str,
        volume_id: Option<String>,
        name: Option<String>,
    ) -> Result<String, Refusal> {
        self.sweep();
        let cinder = |u| cinder_refusal(u, backup_id, volume_id.as_deref().unwrap_or_default());
        self.check_restore(project, backup_id, volume_id.as_deref())
            .map_err(cinder)?;
        let volume_id = match volume_id {
            Some(id) => id,
            None => {
                let size_gb = self
                    .find::<Backup>(project, backup_id)
                    .map_or(1, |(_, b)| b.size_gb);
                let new = NewVolume {
                    size_gb,
                    name: Some(name.unwrap_or_else(|| format!("restore_backup_{backup_id}"))),
                    description: Some("auto-created_from_restore_from_backup".into()),
                    volume_type: VOLUME_TYPES[0].into(),
                    metadata: BTreeMap::new(),
                    creating_for: std::time::Duration::ZERO,
                };
                self.create_volume(project, new)?
            }
        };
        self.start_restore(project, backup_id, &volume_id, None);
        Ok(volume_id)
    }
}

/// An [`Unrestorable`] as Cinder words it.
fn cinder_refusal(u: Unrestorable, backup_id: &str, volume_id: &str) -> Refusal {
    match u {
        Unrestorable::BackupNotFound => backup_not_found(backup_id),
        Unrestorable::BackupNotAvailable => {
            Refusal::bad_request("Invalid backup: Backup status must be available")
        }
        Unrestorable::VolumeNotFound => {
            Refusal::not_found(format!("Volume {volume_id} could not be found."))
        }
        Unrestorable::VolumeNotAvailable(_) => {
            Refusal::bad_request("Invalid volume: Volume to be restored to must be available")
        }
        Unrestorable::TooSmall { volume, backup } => Refusal::bad_request(format!(
            "Invalid volume: volume size {volume} is too small to restore backup of size {backup}."
        )),
    }
}

/// An [`Unrestorable`] as VBS words it: HTTP status, `VolumeBackup` code,
/// message.
fn vendor_refusal(u: Unrestorable, backup_id: &str, volume_id: &str) -> Response {
    let (status, code, message) = match u {
        Unrestorable::BackupNotFound => (
            StatusCode::NOT_FOUND,
            "VolumeBackup.0111",
            format!("The backup {backup_id} does not exist."),
        ),
        Unrestorable::BackupNotAvailable => (
            StatusCode::BAD_REQUEST,
            "VolumeBackup.0089",
            format!("The status of backup {backup_id} is not available."),
        ),
        Unrestorable::VolumeNotFound => (
            StatusCode::NOT_FOUND,
            "VolumeBackup.0207",
            format!("The disk {volume_id} does not exist."),
        ),
        Unrestorable::VolumeNotAvailable(status) => {
            let code = match status {
                "error" => "VolumeBackup.0202",
                "backing-up" => "VolumeBackup.0206",
                _ => "VolumeBackup.0205",
            };
            (
                StatusCode::BAD_REQUEST,
                code,
                format!("The disk {volume_id} is unavailable (status {status})."),
            )
        }
        Unrestorable::TooSmall { volume, backup } => (
            StatusCode::BAD_REQUEST,
            "VolumeBackup.0209",
            format!("The disk ({volume} GB) is smaller than the backup ({backup} GB)."),
        ),
    };
    vendor_error(status, code, &message)
}

/// `POST /{v2,v3}/{project}/backups/{id}/restore`: 202
/// `{"restore": {"backup_id", "volume_id", "volume_name"}}`.
pub async fn cinder(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Result<Response, Refusal> {
    let r = body_object(&body, "restore")?;
    let mut st = lock(&state);
    let volume_id = st.restore_cinder(&project, &id, text(r, "volume_id"), text(r, "name"))?;
    let volume_name = st
        .volume(&project, &volume_id)
        .ok()
        .and_then(|(_, v)| v.name.clone());
    let restore = json!({"backup_id": id, "volume_id": volume_id, "volume_name": volume_name});
    Ok((StatusCode::ACCEPTED, Json(json!({ "restore": restore }))).into_response())
}

/// `POST /v2/{project}/cloudbackups/{id}/restore`: 200 `{"job_id"}`, the
/// job then polled at `GET /v1/{project}/jobs/{job_id}`.
pub async fn vendor(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Ok(r) = body_object(&body, "restore") else {
        return vendor_error(
            StatusCode::BAD_REQUEST,
            "VolumeBackup.0210",
            "The request body is malformed: it has no restore object.",
        );
    };
    let Some(volume_id) = text(r, "volume_id").filter(|v| uuid::Uuid::parse_str(v).is_ok()) else {
        return vendor_error(
            StatusCode::BAD_REQUEST,
            "VolumeBackup.0208",
            "The volume_id is missing or invalid.",
        );
    };
    let mut st = lock(&state);
    st.sweep();
    if let Err(u) = st.check_restore(&project, &id, Some(&volume_id)) {
        return vendor_refusal(u, &id, &volume_id);
    }
    let job_id = uuid::Uuid::new_v4().to_string();
    st.start_restore(&project, &id, &volume_id, Some(job_id.clone()));
    Json(json!({ "job_id": job_id })).into_response()
}
