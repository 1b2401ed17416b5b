//! Volumes (`…/volumes`): the configured ones and those created through the
//! API (scratch volumes, restore targets). Cinder's checks on create (zone,
//! size, type, metadata, quota) and delete (status, attachments,
//! snapshots), the statuses a volume goes through, and their routes: the
//! look-ups clients make before they snapshot or back one up (openstacksdk's
//! `find_volume`, so every `openstack volume snapshot create`), create and
//! delete.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::restores::Phase;
use super::routes::{body_object, page_of, text, with_next_link, MAX_PAGE};
use super::state::{cinder_time, Project, Refusal, State, Volume};
use super::{literal, lock, swept, Shared, SimVolume, VolumeView};

/// The simulator's one availability zone.
pub const AVAILABILITY_ZONE: &str = "sim-1a";
/// The volume types it knows (OTC's disk types); the first is the default.
pub const VOLUME_TYPES: [&str; 5] = ["SATA", "SAS", "SSD", "GPSSD", "ESSD"];

/// Statuses a volume may be deleted from: Cinder's list. A volume in
/// `error_deleting` is refused, as Cinder refuses it (it wants an admin's
/// `os-force_delete`, and OTC answers `EVS.2020`).
const DELETABLE: [&str; 5] = [
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
];

impl Volume {
    /// A volume given in the configuration: unnamed, `available` from the
    /// start.
    pub fn configured(v: &SimVolume) -> Self {
        Self {
            size_gb: v.size_gb,
            attached: v.attached || v.server.is_some(),
            fault: v.fault.clone(),
            created_at: Utc::now(),
            server_id: v
                .server
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            name: None,
            description: None,
            volume_type: VOLUME_TYPES[0].into(),
            availability_zone: AVAILABILITY_ZONE.into(),
            metadata: v.metadata.clone(),
            tags: v.tags.clone(),
            creating_until: None,
            deleting_since: None,
            delete_fails: false,
        }
    }
}

/// What `POST …/volumes` asks for, checked.
pub struct NewVolume {
    pub size_gb: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_type: String,
    pub metadata: BTreeMap<String, String>,
    /// How long it stays `creating`.
    pub creating_for: std::time::Duration,
}

fn invalid_field(field: &str, value: &Value, why: &str) -> Refusal {
    Refusal::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

impl NewVolume {
    /// The `volume` object of a create request, with Cinder's checks of
    /// its fields. A missing zone is the default one, as in Cinder.
    fn parse(v: &Value, creating_for: std::time::Duration) -> Result<Self, Refusal> {
        let size = v.get("size").cloned().unwrap_or(Value::Null);
        let size_gb = match &size {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            _ => None,
        }
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| invalid_field("size", &size, "It must be an integer of at least 1."))?;
        if let Some(zone) = text(v, "availability_zone").filter(|z| z != AVAILABILITY_ZONE) {
            return Err(Refusal::bad_request(format!(
                "Availability zone '{zone}' is invalid."
            )));
        }
        let volume_type = text(v, "volume_type").unwrap_or_else(|| VOLUME_TYPES[0].into());
        if !VOLUME_TYPES.contains(&volume_type.as_str()) {
            return Err(Refusal::not_found(format!(
                "Volume type with name {volume_type} could not be found."
            )));
        }
        let mut metadata = BTreeMap::new();
        match v.get("metadata") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (key, value) in m {
                    match value
                        .as_str()
                        .filter(|s| s.len() <= 255 && key.len() <= 255)
                    {
                        Some(s) => metadata.insert(key.clone(), s.to_string()),
                        None => {
                            return Err(invalid_field(
                                "metadata",
                                value,
                                "Values must be strings of at most 255 characters.",
                            ))
                        }
                    };
                }
            }
            Some(other) => return Err(invalid_field("metadata", other, "It must be an object.")),
        }
        Ok(Self {
            size_gb,
            name: text(v, "name"),
            description: text(v, "description"),
            volume_type,
            metadata,
            creating_for,
        })
    }
}

impl State {
    pub fn volume_status(&self, p: &Project, volume_id: &str, v: &Volume) -> &'static str {
        if let Some(since) = v.deleting_since {
            let over = since.elapsed() >= self.config.delete_duration;
            return if v.delete_fails && over {
                "error_deleting"
            } else {
                "deleting"
            };
        }
        if v.creating_until.is_some_and(|t| Instant::now() < t) {
            return "creating";
        }
        match self.last_restore_into(volume_id).map(|(_, phase)| phase) {
            Some(Phase::Running) => return "restoring-backup",
            Some(Phase::Failed) => return "error_restoring",
            _ => {}
        }
        if p.backups
            .of_volume(volume_id)
            .any(|b| self.backup_status(b) == "creating")
        {
            "backing-up"
        } else if v.attached {
            "in-use"
        } else {
            "available"
        }
    }

    /// Creates a volume (`POST …/volumes`, or Cinder's own for a restore
    /// without a target), within the project's quota; returns its id.
    pub fn create_volume(&mut self, project: &str, new: NewVolume) -> Result<String, Refusal> {
        self.sweep();
        let now = self.now();
        let p = self.projects.entry(project.to_string()).or_default();
        if let Some(quota) = p.volume_quota.filter(|q| p.volumes.len() >= *q) {
            return Err(Refusal::over_limit(format!(
                "VolumeLimitExceeded: Maximum number of volumes allowed ({quota}) exceeded for quota 'volumes'."
            )));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let name = new.name.clone().unwrap_or_default();
        p.volumes.insert(
            id.clone(),
            Volume {
                size_gb: new.size_gb,
                attached: false,
                fault: None,
                created_at: now,
                server_id: uuid::Uuid::new_v4().to_string(),
                name: new.name,
                description: new.description,
                volume_type: new.volume_type,
                availability_zone: AVAILABILITY_ZONE.into(),
                metadata: new.metadata,
                tags: BTreeMap::new(),
                creating_until: Some(Instant::now() + new.creating_for),
                deleting_since: None,
                delete_fails: false,
            },
        );
        self.record("volume", project, &id, &name, &id, now);
        Ok(id)
    }

    /// `DELETE …/volumes/{id}`, with Cinder's checks and the deletion
    /// faults.
    pub fn delete_volume(&mut self, project: &str, id: &str) -> Result<(), Refusal> {
        self.sweep();
        if self.volume_deletion_faults.refused > 0 {
            self.volume_deletion_faults.refused -= 1;
            return Err(Refusal::server_error());
        }
        let (p, v) = self.volume(project, id)?;
        let status = self.volume_status(p, id, v);
        let has_snapshots = p.snapshots.of_volume(id).next().is_some();
        if !DELETABLE.contains(&status) || v.attached || has_snapshots {
            return Err(Refusal::bad_request(
                "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
            ));
        }
        let faults = &mut self.volume_deletion_faults;
        let fails = faults.error_deleting > 0;
        faults.error_deleting = faults.error_deleting.saturating_sub(1);
        if let Some(p) = self.projects.get_mut(project) {
            if let Some(v) = p.volumes.get_mut(id) {
                v.deleting_since = Some(Instant::now());
                v.delete_fails = fails;
                p.deleting_volumes.push(id.to_string());
            }
        }
        Ok(())
    }

    pub fn volume_views(&mut self, project: &str) -> Vec<VolumeView> {
        self.sweep();
        let Some(p) = self.projects.get(project) else {
            return Vec::new();
        };
        let mut vols: Vec<(&String, &Volume)> = p.volumes.iter().collect();
        vols.sort_by(|a, b| a.1.created_at.cmp(&b.1.created_at).then(a.0.cmp(b.0)));
        vols.into_iter()
            .map(|(id, v)| VolumeView {
                id: id.clone(),
                name: v.name.clone(),
                description: v.description.clone(),
                status: self.volume_status(p, id, v).to_string(),
                size_gb: v.size_gb,
                availability_zone: v.availability_zone.clone(),
                volume_type: v.volume_type.clone(),
                metadata: self.volume_metadata(id, v),
                attached: v.attached,
            })
            .collect()
    }
}

fn links(st: &State, project: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v3/{project}/volumes/{id}", st.base_url)},
        {"rel": "bookmark", "href": format!("{}/{project}/volumes/{id}", st.base_url)},
    ])
}

/// The detail shape of Cinder 3.0 (`GET /v3/{project_id}/volumes/{id}`).
pub(crate) fn detail(st: &State, project: &str, p: &Project, id: &str, v: &Volume) -> Value {
    let status = st.volume_status(p, id, v);
    let attachments = if v.attached {
        json!([{"id": id, "attachment_id": v.server_id, "volume_id": id, "server_id": v.server_id,
                "host_name": null, "device": "/dev/vdb", "attached_at": cinder_time(v.created_at)}])
    } else {
        json!([])
    };
    json!({
        "id": id,
        "status": status,
        "size": v.size_gb,
        "availability_zone": v.availability_zone,
        "created_at": cinder_time(v.created_at),
        "updated_at": cinder_time(v.created_at),
        "name": v.name,
        "description": v.description,
        "volume_type": v.volume_type,
        "snapshot_id": null,
        "source_volid": null,
        "metadata": st.volume_metadata(id, v),
        "links": links(st, project, id),
        "user_id": "sim-user",
        "bootable": "false",
        "encrypted": false,
        "replication_status": "disabled",
        "migration_status": null,
        "consistencygroup_id": null,
        "multiattach": false,
        "attachments": attachments,
        "os-vol-tenant-attr:tenant_id": project,
    })
}

fn volume_json(st: &State, project: &str, id: &str) -> Option<Value> {
    let p = st.projects.get(project)?;
    p.volumes.get(id).map(|v| detail(st, project, p, id, v))
}

fn not_found(id: &str) -> Refusal {
    Refusal::not_found(format!("Volume {id} could not be found."))
}

pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let volume = volume_json(&swept(&state), &project, &id).ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({ "volume": volume })).into_response())
}

/// `POST …/volumes`: 202 with the detail, `creating`.
pub async fn create(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Refusal> {
    let mut st = lock(&state);
    let new = NewVolume::parse(
        body_object(&body, "volume")?,
        st.config.volume_create_duration,
    )?;
    let id = st.create_volume(&project, new)?;
    let volume = volume_json(&st, &project, &id);
    Ok((StatusCode::ACCEPTED, Json(json!({ "volume": volume }))).into_response())
}

/// `DELETE …/volumes/{id}`: 202, no body.
pub async fn delete(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, Refusal> {
    lock(&state).delete_volume(&project, &id)?;
    Ok(StatusCode::ACCEPTED)
}

/// The `metadata` filter as Cinder reads it (`ast.literal_eval`): a dict
/// of strings, JSON or a Python literal; `Some(None)` for any other value,
/// which matches nothing (Cinder's DB layer returns an empty list, no
/// error). Several keys must all match, each value exactly.
fn metadata_filter(q: &HashMap<String, String>) -> Option<Option<BTreeMap<String, String>>> {
    q.get("metadata").map(|raw| literal::string_dict(raw))
}

/// Whether a volume passes the `name`, `status` and `metadata` filters
/// that Cinder's and EVS's volume lists share.
pub(crate) fn listed(
    st: &State,
    p: &Project,
    q: &HashMap<String, String>,
    id: &str,
    v: &Volume,
) -> bool {
    let metadata_ok = match metadata_filter(q) {
        None => true,
        Some(None) => false,
        Some(Some(want)) => {
            let has = st.volume_metadata(id, v);
            want.iter().all(|(k, w)| has.get(k) == Some(w))
        }
    };
    metadata_ok
        && q.get("name").is_none_or(|n| v.name.as_ref() == Some(n))
        && q.get("status")
            .is_none_or(|s| st.volume_status(p, id, v) == s.as_str())
}

/// `…/volumes` (id, links, name) and, with `FULL`, `…/volumes/detail`;
/// exact `name` and `status` filters and the `metadata` filter, by id, a
/// next link whenever the page is full (as Cinder pages).
pub async fn list<const FULL: bool>(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let guard = swept(&state);
    let st = &*guard;
    let Some(p) = st.projects.get(&project) else {
        return Json(json!({"volumes": []})).into_response();
    };
    let mut ids: Vec<&String> = p.volumes.keys().collect();
    ids.sort();
    let items = ids
        .into_iter()
        .filter_map(|id| {
            let v = p.volumes.get(id)?;
            let shown = if FULL {
                detail(st, &project, p, id, v)
            } else {
                json!({"id": id, "links": links(st, &project, id), "name": v.name})
            };
            listed(st, p, &q, id, v).then_some((id.as_str(), shown))
        })
        .collect();
    let page = page_of(items, &q, MAX_PAGE, true);
    let next = page.next.map(|m| (m, page.limit));
    let body = json!({ "volumes": page.items });
    Json(with_next_link(
        body,
        "volumes",
        next,
        &st.base_url,
        &project,
    ))
    .into_response()
}
