//! Backups (`…/backups`): Cinder's checks on create (a volume that is not
//! busy, a snapshot of it, a parent for an incremental) and on delete (no
//! incremental on top), and their routes.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::routes::{body_object, required, text, Routed};
use super::state::{has_dependents, Backup, Project, Refusal, State};
use super::{lock, shapes, swept, Shared, VolumeFault};

impl State {
    /// `POST …/backups`, with Cinder's checks.
    pub fn create_backup(
        &mut self,
        project: &str,
        volume_id: &str,
        snapshot_id: Option<&str>,
        name: String,
        description: Option<String>,
        incremental: bool,
    ) -> Result<String, Refusal> {
        self.sweep();
        let (p, v) = self.volume(project, volume_id)?;
        let status = self.volume_status(p, volume_id, v);
        if status != "available" && status != "in-use" {
            return Err(Refusal::bad_request(format!(
                "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{status}\"."
            )));
        }
        if let Some(sid) = snapshot_id {
            let s = p
                .snapshots
                .get(sid)
                .ok_or_else(|| Refusal::not_found(format!("Snapshot {sid} could not be found.")))?;
            if s.volume_id != volume_id {
                return Err(Refusal::bad_request(
                    "Invalid snapshot: Snapshot is not a snapshot of the volume to be backed up.",
                ));
            }
            let st = self.snapshot_status(p, s);
            if st != "available" {
                return Err(Refusal::bad_request(format!(
                    "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"{st}\"."
                )));
            }
        }
        let parent = if incremental {
            let latest = p
                .backups
                .of_volume(volume_id)
                .filter(|b| self.backup_status(b) == "available")
                .max_by_key(|b| b.created);
            match latest {
                Some(b) => Some(b.id.clone()),
                None => {
                    return Err(Refusal::bad_request(
                        "Invalid backup: No backups available to do an incremental backup.",
                    ))
                }
            }
        } else {
            None
        };
        let (fail_reason, never_finishes) = match &v.fault {
            Some(VolumeFault::BackupError { fail_reason }) => (Some(fail_reason.clone()), false),
            Some(VolumeFault::BackupErrorTimes { fail_reason, times }) if *times > 0 => {
                (Some(fail_reason.clone()), false)
            }
            Some(VolumeFault::BackupNeverFinishes) => (None, true),
            _ => (None, false),
        };
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            description,
            volume_id: volume_id.to_string(),
            snapshot_id: snapshot_id.map(str::to_string),
            size_gb: v.size_gb,
            created: Instant::now(),
            created_at: self.now(),
            incremental,
            parent,
            fail_reason,
            never_finishes,
            deleting_since: None,
        };
        if let Some(VolumeFault::BackupErrorTimes { times, .. }) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.volumes.get_mut(volume_id))
            .and_then(|v| v.fault.as_mut())
        {
            *times = times.saturating_sub(1);
        }
        Ok(self.add(project, backup))
    }

    /// `DELETE …/backups/{id}`.
    pub fn delete_backup(&mut self, project: &str, id: &str) -> Result<(), Refusal> {
        self.sweep();
        let (p, b) = self
            .find::<Backup>(project, id)
            .ok_or_else(|| not_found(id))?;
        let status = self.backup_status(b);
        if status != "available" && status != "error" {
            return Err(Refusal::bad_request(
                "Invalid backup: Backup status must be available or error",
            ));
        }
        if has_dependents(p, id) {
            return Err(Refusal::bad_request(
                "Invalid backup: Incremental backups exist for this backup.",
            ));
        }
        self.start_deleting::<Backup>(project, id);
        Ok(())
    }
}

pub fn not_found(id: &str) -> Refusal {
    Refusal::not_found(format!("Backup {id} could not be found."))
}

pub async fn create(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Refusal> {
    let b = body_object(&body, "backup")?;
    let volume_id = required(b, "volume_id")?;
    let incremental = b
        .get("incremental")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = text(b, "name").unwrap_or_default();
    let mut st = lock(&state);
    let id = st.create_backup(
        &project,
        &volume_id,
        text(b, "snapshot_id").as_deref(),
        name,
        text(b, "description"),
        incremental,
    )?;
    let summary = st
        .find::<Backup>(&project, &id)
        .map(|(_, x)| shapes::backup_summary(&st, &project, x));
    Ok((StatusCode::ACCEPTED, Json(json!({ "backup": summary }))).into_response())
}

pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let st = swept(&state);
    let (p, b) = st
        .find::<Backup>(&project, &id)
        .ok_or_else(|| not_found(&id))?;
    let backup = shapes::backup_detail(&st, &project, p, b);
    Ok(Json(json!({ "backup": backup })).into_response())
}

impl Routed for Backup {
    fn status(&self, st: &State, _: &Project) -> &'static str {
        st.backup_status(self)
    }

    fn listed(&self, st: &State, project: &str, p: &Project, detail: bool) -> Value {
        if detail {
            shapes::backup_detail(st, project, p, self)
        } else {
            shapes::backup_summary(st, project, self)
        }
    }

    fn delete(st: &mut State, project: &str, id: &str) -> Result<(), Refusal> {
        st.delete_backup(project, id)
    }
}
