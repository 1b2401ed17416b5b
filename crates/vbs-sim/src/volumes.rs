//! `GET …/volumes/{id}`, `…/volumes` and `…/volumes/detail`: the volumes
//! clients look up before they snapshot or back one up (openstacksdk's
//! `find_volume`, so every `openstack volume snapshot create`). Read-only:
//! the simulator's volumes are given in its configuration.

use std::collections::HashMap;

use axum::extract::{Path, Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::routes::page_response;
use super::state::{cinder_time, Project, Refusal, State, Volume};
use super::{swept, Shared};

fn links(st: &State, project: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v3/{project}/volumes/{id}", st.base_url)},
        {"rel": "bookmark", "href": format!("{}/{project}/volumes/{id}", st.base_url)},
    ])
}

/// The detail shape of Cinder 3.0 (`GET /v3/{project_id}/volumes/{id}`).
fn detail(st: &State, project: &str, p: &Project, id: &str, v: &Volume) -> Value {
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
        "availability_zone": "sim-1a",
        "created_at": cinder_time(v.created_at),
        "updated_at": cinder_time(v.created_at),
        "name": null,
        "description": null,
        "volume_type": "SATA",
        "snapshot_id": null,
        "source_volid": null,
        "metadata": {},
        "links": links(st, project, id),
        "user_id": "sim-user",
        "bootable": "false",
        "encrypted": false,
        "replication_status": "disabled",
        "consistencygroup_id": null,
        "multiattach": false,
        "attachments": attachments,
        "os-vol-tenant-attr:tenant_id": project,
    })
}

pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let guard = swept(&state);
    let st = &*guard;
    let volume = st
        .projects
        .get(&project)
        .and_then(|p| p.volumes.get(&id).map(|v| detail(st, &project, p, &id, v)))
        .ok_or_else(|| Refusal::not_found(format!("Volume {id} could not be found.")))?;
    Ok(Json(json!({ "volume": volume })).into_response())
}

/// `…/volumes` (id, links, name) and, with `FULL`, `…/volumes/detail`.
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
            let d = detail(st, &project, p, id, v);
            // Volumes have no names here, so a name filter matches none.
            let keep = !q.contains_key("name")
                && q.get("status").is_none_or(|s| d["status"] == s.as_str());
            let shown = if FULL {
                d
            } else {
                json!({"id": id, "links": d["links"], "name": null})
            };
            keep.then_some((id.as_str(), shown))
        })
        .collect();
    page_response("volumes", items, &q, &st.base_url, &project)
}
