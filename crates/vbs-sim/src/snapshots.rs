//! Snapshots (`…/snapshots`): Cinder's checks on create and delete, and
//! their routes.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::routes::{body_object, required, text, Routed};
use super::state::{Project, Refusal, Snapshot, State};
use super::{lock, shapes, swept, Shared, VolumeFault};

impl State {
    /// `POST …/snapshots`, with Cinder's checks.
    pub fn create_snapshot(
        &mut self,
        project: &str,
        volume_id: &str,
        name: String,
        description: Option<String>,
        force: bool,
        metadata: Value,
    ) -> Result<String, Refusal> {
        self.sweep();
        let (p, v) = self.volume(project, volume_id)?;
        match self.volume_status(p, volume_id, v) {
            "available" => {}
            "in-use" if force => {}
            status => {
                return Err(Refusal::bad_request(format!(
                    "Invalid volume: Volume {volume_id} status must be available, but current status is: {status}."
                )))
            }
        }
        let snapshot = Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            description,
            volume_id: volume_id.to_string(),
            size_gb: v.size_gb,
            metadata,
            created: Instant::now(),
            created_at: self.now(),
            fails: v.fault == Some(VolumeFault::SnapshotError),
            deleting_since: None,
        };
        Ok(self.add(project, snapshot))
    }

    /// `DELETE …/snapshots/{id}`.
    pub fn delete_snapshot(&mut self, project: &str, id: &str) -> Result<(), Refusal> {
        self.sweep();
        let (p, s) = self
            .find::<Snapshot>(project, id)
            .ok_or_else(|| not_found(id))?;
        let status = self.snapshot_status(p, s);
        if status != "available" && status != "error" {
            return Err(Refusal::bad_request(
                "Invalid snapshot: Snapshot status must be available or error and must not be part of a group.",
            ));
        }
        self.start_deleting::<Snapshot>(project, id);
        Ok(())
    }
}

fn not_found(id: &str) -> Refusal {
    Refusal::not_found(format!("Snapshot {id} could not be found."))
}

fn snapshot_json(st: &State, project: &str, id: &str) -> Option<Value> {
    st.find::<Snapshot>(project, id)
        .map(|(p, s)| shapes::snapshot(st, project, p, s))
}

pub async fn create(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Refusal> {
    let s = body_object(&body, "snapshot")?;
    let volume_id = required(s, "volume_id")?;
    let force = s.get("force").and_then(Value::as_bool).unwrap_or(false);
    let metadata = s
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut st = lock(&state);
    let id = st.create_snapshot(
        &project,
        &volume_id,
        text(s, "name").unwrap_or_default(),
        text(s, "description"),
        force,
        metadata,
    )?;
    let snapshot = snapshot_json(&st, &project, &id);
    Ok((StatusCode::ACCEPTED, Json(json!({ "snapshot": snapshot }))).into_response())
}

pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let snapshot = snapshot_json(&swept(&state), &project, &id).ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({ "snapshot": snapshot })).into_response())
}

impl Routed for Snapshot {
    fn status(&self, st: &State, p: &Project) -> &'static str {
        st.snapshot_status(p, self)
    }

    fn listed(&self, st: &State, project: &str, p: &Project, detail: bool) -> Value {
        let full = shapes::snapshot(st, project, p, self);
        if detail {
            full
        } else {
            json!({"id": self.id, "name": self.name, "volume_id": self.volume_id, "status": full["status"], "size": self.size_gb})
        }
    }

    fn delete(st: &mut State, project: &str, id: &str) -> Result<(), Refusal> {
        st.delete_snapshot(project, id)
    }
}
