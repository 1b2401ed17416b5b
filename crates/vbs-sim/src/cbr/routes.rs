//! The CBR routes (`/cbr/v3/{project}/…`): vaults, adding disks to one, a
//! backup run and its checkpoint, backups (list, show, delete) and
//! operation logs. Lists page by `offset` and `limit` and report the total
//! as `count`, without links.

use std::collections::HashMap;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{cbr_time, Backup, Member, Vault, DISK, DISK_PROVIDER, SERVER, SERVER_PROVIDER};
use crate::restores::{restore_fault, Restore};
use crate::routes::{page_of, MAX_PAGE};
use crate::state::State;
use crate::volumes::{NewVolume, AVAILABILITY_ZONE};
use crate::{lock, Shared};

/// The routes, to be nested under `/cbr`.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/v3/{project}/vaults", get(vaults))
        .route("/v3/{project}/vaults/{id}", get(vault))
        .route(
            "/v3/{project}/vaults/{id}/addresources",
            post(add_resources),
        )
        .route("/v3/{project}/checkpoints", post(run))
        .route("/v3/{project}/checkpoints/{id}", get(checkpoint))
        .route("/v3/{project}/backups", get(backups))
        .route("/v3/{project}/backups/{id}", get(backup).delete(delete))
        .route("/v3/{project}/backups/{id}/restore", post(restore))
        .route(
            "/v3/{project}/backups/{id}/members",
            post(share).get(members),
        )
        .route(
            "/v3/{project}/backups/{id}/members/{member}",
            axum::routing::delete(unshare),
        )
        .route("/v3/{project}/operation-logs", get(operation_logs))
}

/// CBR's flat error: `{"error_code": "BackupService.xxxx", "error_msg": …}`.
fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({"error_code": code, "error_msg": message})),
    )
        .into_response()
}

fn no_vault(id: &str) -> Response {
    error(
        404,
        "BackupService.6105",
        &format!("Vault {id} does not exist."),
    )
}

fn no_backup(id: &str) -> Response {
    error(
        404,
        "BackupService.6200",
        &format!("Backup {id} does not exist."),
    )
}

/// `{"<key>": [page], "count": total}`: one page by `offset` (or
/// `marker`) and `limit`, as every list pages, without links.
fn counted(key: &str, items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let count = items.len();
    let ids: Vec<String> = items
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let keyed = ids.iter().map(String::as_str).zip(items).collect();
    let page = page_of(keyed, q, MAX_PAGE, false);
    Json(json!({ key: page.items, "count": count })).into_response()
}

fn vault_json(st: &State, v: &Vault) -> Value {
    let for_servers = v.object_type == "server";
    let resources: Vec<Value> = v
        .resources
        .iter()
        .map(|id| {
            let size = st
                .projects
                .get(&v.project)
                .and_then(|p| p.volumes.get(id))
                .map_or(0, |vol| vol.size_gb);
            let kind = if for_servers { SERVER } else { DISK };
            json!({"id": id, "type": kind, "name": null,
                   "protect_status": "available", "size": size,
                   "backup_size": 0, "backup_count": 0, "extra_info": null})
        })
        .collect();
    let (provider, spec) = if for_servers {
        (SERVER_PROVIDER, "vault.backup.server.normal")
    } else {
        (DISK_PROVIDER, "vault.backup.volume.normal")
    };
    json!({
        "id": v.id, "name": v.name, "resources": resources, "provider_id": provider,
        "created_at": cbr_time(v.created_at), "project_id": v.project,
        "enterprise_project_id": 0, "auto_bind": false, "bind_rules": {},
        "auto_expand": false, "policy_id": v.policy_id, "tags": [],
        "billing": {"allocated": 0, "cloud_type": "public", "consistent_level": "crash_consistent",
                    "charging_mode": "post_paid", "protect_type": "backup", "object_type": v.object_type,
                    "spec_code": spec, "used": 0, "status": "available",
                    "size": 100}
    })
}

async fn vaults(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = lock(&state);
    let items = st
        .cbr
        .vaults
        .iter()
        .filter(|v| v.project == project)
        .filter(|v| q.get("name").is_none_or(|n| *n == v.name))
        .filter(|v| q.get("object_type").is_none_or(|t| *t == v.object_type))
        .map(|v| vault_json(&st, v))
        .collect();
    counted("vaults", items, &q)
}

async fn vault(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let st = lock(&state);
    match st
        .cbr
        .vaults
        .iter()
        .find(|v| v.project == project && v.id == id)
    {
        Some(v) => Json(json!({"vault": vault_json(&st, v)})).into_response(),
        None => no_vault(&id),
    }
}

async fn add_resources(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(resources) = body
        .as_ref()
        .and_then(|Json(b)| b.get("resources"))
        .and_then(Value::as_array)
        .filter(|r| (1..=256).contains(&r.len()))
    else {
        return error(
            400,
            "BackupService.9900",
            "`resources` must list 1 to 256 resources.",
        );
    };
    let ids: Vec<String> = resources
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut st = lock(&state);
    if let Some(taken) = ids.iter().find(|r| {
        st.cbr
            .vaults
            .iter()
            .any(|v| v.project == project && v.id != id && v.resources.contains(r))
    }) {
        return error(
            400,
            "BackupService.6103",
            &format!("Resource {taken} is already in a vault."),
        );
    }
    let Some(v) = st
        .cbr
        .vaults
        .iter_mut()
        .find(|v| v.project == project && v.id == id)
    else {
        return no_vault(&id);
    };
    let wanted = if v.object_type == "server" {
        SERVER
    } else {
        DISK
    };
    if let Some(other) = resources
        .iter()
        .filter_map(|r| r.get("type").and_then(Value::as_str))
        .find(|t| *t != wanted)
    {
        return error(
            400,
            "BackupService.6102",
            &format!("The vault does not support resources of type {other}."),
        );
    }
    for r in &ids {
        if !v.resources.contains(r) {
            v.resources.push(r.clone());
        }
    }
    Json(json!({"add_resource_ids": ids})).into_response()
}

/// `POST …/checkpoints`: resources from `resource_details` or `resources`,
/// else all of the vault's.
async fn run(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(c) = body.as_ref().and_then(|Json(b)| b.get("checkpoint")) else {
        return error(400, "BackupService.9900", "The body has no `checkpoint`.");
    };
    let Some(vault_id) = c.get("vault_id").and_then(Value::as_str) else {
        return error(400, "BackupService.9900", "`vault_id` is missing.");
    };
    let p = c.get("parameters").cloned().unwrap_or(Value::Null);
    let text = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (name, description) = (text("name"), text("description"));
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-');
    if !name.is_empty() && !name_ok {
        return error(
            400,
            "BackupService.9900",
            "`name` must be 1 to 64 of A-Z a-z 0-9 _ -.",
        );
    }
    let ids = |k: &str, pick: fn(&Value) -> Option<&str>| -> Vec<String> {
        p.get(k)
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(pick).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut volumes = ids("resource_details", |r| r.get("id").and_then(Value::as_str));
    if volumes.is_empty() {
        volumes = ids("resources", Value::as_str);
    }
    let incremental = p
        .get("incremental")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let mut st = lock(&state);
    st.cbr_sweep();
    let at = match st.cbr_run(
        &project,
        vault_id,
        &volumes,
        &name,
        &description,
        incremental,
    ) {
        Ok(at) => at,
        Err((status, code, message)) => return error(status, code, &message),
    };
    let c = &st.cbr.checkpoints[at];
    let vault = st.cbr.vaults.iter().find(|v| v.id == c.vault_id);
    let taken: Vec<Value> = st
        .cbr
        .backups
        .iter()
        .filter(|b| b.checkpoint_id == c.id)
        .map(|b| {
            json!({"id": b.volume_id, "type": b.resource_type, "name": null,
                         "resource_size": b.size_gb, "protect_status": "available"})
        })
        .collect();
    let skipped: Vec<Value> = c
        .skipped
        .iter()
        .map(|(id, code, reason)| {
            json!({"id": id, "type": "OS::Cinder::Volume", "name": null,
                                          "code": code, "reason": reason})
        })
        .collect();
    let body = json!({"checkpoint": {
        "id": c.id, "status": "protecting", "created_at": cbr_time(c.created_at),
        "project_id": project,
        "vault": {"id": c.vault_id, "name": vault.map(|v| v.name.clone()),
                  "resources": taken, "skipped_resources": skipped},
        "extra_info": {"name": c.name, "description": c.description, "retention_duration": -1}
    }});
    Json(body).into_response()
}

/// `GET …/checkpoints/{id}`: without `extra_info`, as the real one answers.
async fn checkpoint(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    let Some(c) = st
        .cbr
        .checkpoints
        .iter()
        .find(|c| c.project == project && c.id == id)
    else {
        return error(
            404,
            "BackupService.6217",
            &format!("Restore point {id} does not exist."),
        );
    };
    let body = json!({"checkpoint": {
        "id": c.id, "status": st.cbr_checkpoint_status(&c.id),
        "created_at": cbr_time(c.created_at), "project_id": project,
        "vault": {"id": c.vault_id, "name": null, "resources": [], "skipped_resources": []}
    }});
    Json(body).into_response()
}

fn backup_json(b: &Backup, status: &str) -> Value {
    let provider = if b.resource_type == SERVER {
        SERVER_PROVIDER
    } else {
        DISK_PROVIDER
    };
    let children: Vec<Value> = b
        .children
        .iter()
        .map(|(id, disk, gb)| {
            json!({"id": id, "checkpoint_id": b.checkpoint_id, "name": b.name, "status": status,
                   "resource_id": disk, "resource_type": DISK, "resource_size": gb,
                   "resource_az": AVAILABILITY_ZONE, "vault_id": b.vault_id,
                   "provider_id": DISK_PROVIDER, "image_type": "backup", "children": [],
                   "created_at": cbr_time(b.created_at),
                   "extend_info": {"incremental": b.incremental, "bootable": false}})
        })
        .collect();
    json!({
        "id": b.id, "checkpoint_id": b.checkpoint_id, "name": b.name, "description": b.description,
        "status": status, "resource_id": b.volume_id, "resource_name": null,
        "resource_type": b.resource_type, "resource_az": AVAILABILITY_ZONE,
        "resource_size": b.size_gb, "vault_id": b.vault_id, "provider_id": provider,
        "project_id": b.project, "enterprise_project_id": 0, "image_type": "backup",
        "created_at": cbr_time(b.created_at),
        "updated_at": b.delete_requested.map(|(_, at)| cbr_time(at)),
        "expired_at": null, "parent_id": null, "children": children,
        "extend_info": {"auto_trigger": false, "incremental": b.incremental, "bootable": false,
                        "snapshot_id": null, "support_lld": true, "supported_restore_mode": "backup",
                        "encrypted": false, "system_disk": false,
                        "fail_reason": (status == "error").then(|| b.fails.clone()).flatten()}
    })
}

async fn backups(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    let open = |k: &str, v: &str| q.get(k).is_none_or(|want| want == v);
    let mut found: Vec<(&Backup, &'static str)> = st
        .cbr
        .backups
        .iter()
        .filter(|b| b.project == project && st.cbr_listed(b))
        .filter_map(|b| st.cbr_backup_status(b).map(|s| (b, s)))
        .filter(|(b, s)| {
            open("checkpoint_id", &b.checkpoint_id)
                && open("resource_id", &b.volume_id)
                && open("vault_id", &b.vault_id)
                && open("name", &b.name)
                && open("status", s)
        })
        .collect();
    found.sort_by(|(a, _), (b, _)| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = found.iter().map(|(b, s)| backup_json(b, s)).collect();
    counted("backups", items, &q)
}

async fn backup(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    let found = st
        .cbr
        .backup(&project, &id)
        .and_then(|b| st.cbr_backup_status(b).map(|s| (b, s)));
    match found {
        Some((b, s)) => Json(json!({"backup": backup_json(b, s)})).into_response(),
        None => no_backup(&id),
    }
}

/// `DELETE …/backups/{id}`: 204, then `deleting` until it is gone.
async fn delete(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    let now = st.now();
    let Some(at) = st
        .cbr
        .backups
        .iter()
        .position(|b| b.project == project && b.id == id)
    else {
        return no_backup(&id);
    };
    match st.cbr_backup_status(&st.cbr.backups[at]) {
        Some("available" | "error") => {}
        Some("deleting") => return StatusCode::NO_CONTENT.into_response(),
        _ => {
            return error(
                400,
                "BackupService.6216",
                "The backup is in use and cannot be deleted.",
            )
        }
    }
    st.cbr.backups[at].delete_requested = Some((Instant::now(), now));
    StatusCode::NO_CONTENT.into_response()
}

/// `GET …/operation-logs`: one `backup` log per backup and one `delete` log
/// per deletion asked for, filtered by type, resource, vault and status.
async fn operation_logs(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    let open = |k: &str, v: &str| q.get(k).is_none_or(|want| want == v);
    let mut logs = Vec::new();
    for b in st.cbr.backups.iter().filter(|b| b.project == project) {
        let Some(status) = st.cbr_backup_status(b) else {
            continue;
        };
        let backup_status = match (status, b.delete_requested) {
            ("protecting", _) => "running",
            ("error", _) => "failed",
            _ => "success",
        };
        let mut entries = vec![("backup", backup_status, b.created_at)];
        if let Some((_, at)) = b.delete_requested {
            entries.push(("delete", "running", at));
        }
        for (kind, log_status, at) in entries {
            if !(open("operation_type", kind)
                && open("resource_id", &b.volume_id)
                && open("vault_id", &b.vault_id)
                && open("status", log_status))
            {
                continue;
            }
            let (code, message) = match (log_status, &b.fails) {
                ("failed", Some(reason)) => ("BackupService.7003", reason.as_str()),
                _ => ("", ""),
            };
            let progress = if log_status == "running" { 50 } else { 100 };
            logs.push(json!({
                "id": format!("{}-{kind}", b.id), "operation_type": kind, "status": log_status,
                "checkpoint_id": b.checkpoint_id, "policy_id": "",
                "provider_id": if b.resource_type == SERVER { SERVER_PROVIDER } else { DISK_PROVIDER },
                "vault_id": b.vault_id, "vault_name": null, "project_id": project,
                "started_at": cbr_time(at), "created_at": cbr_time(at), "updated_at": cbr_time(at),
                "ended_at": (log_status != "running").then(|| cbr_time(at)),
                "error_info": {"code": code, "message": message},
                "extra_info": {
                    "resource": {"id": b.volume_id, "type": b.resource_type, "name": null},
                    "backup": {"backup_id": b.id, "backup_name": b.name},
                    "common": {"progress": progress, "request_id": format!("req-{}", b.id)}
                }
            }));
        }
    }
    counted("operation_logs", logs, &q)
}

/// `POST …/backups/{id}/restore` of a disk backup: onto its own disk only,
/// which must be `available`, and never while another restore of the
/// project runs; 202 with an empty body. The disk is `restoring-backup`
/// and the backup `restoring` until it ends.
async fn restore(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(volume_id) = body
        .as_ref()
        .and_then(|Json(b)| b.pointer("/restore/volume_id"))
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return error(400, "BackupService.9900", "`restore.volume_id` is missing.");
    };
    let mut st = lock(&state);
    st.cbr_sweep();
    let Some(b) = st.cbr.backup(&project, &id) else {
        return no_backup(&id);
    };
    if st.cbr_backup_status(b) != Some("available") {
        return error(400, "BackupService.2005", "The backup is not available.");
    }
    // Which code CBR gives another disk is not published; the UMN says a
    // disk backup restores onto its original disk only.
    if b.volume_id != volume_id {
        return error(
            400,
            "BackupService.9900",
            "A disk backup can only be restored onto its original disk.",
        );
    }
    let running = st
        .restores
        .iter()
        .any(|r| r.project == project && st.restore_phase(r) == crate::restores::Phase::Running);
    if running {
        return error(400, "BackupService.2010", "A restore is already running.");
    }
    let Ok((p, v)) = st.volume(&project, &volume_id) else {
        return error(404, "BackupService.7000", "The disk does not exist.");
    };
    let status = st.volume_status(p, &volume_id, v);
    if status != "available" {
        return error(
            400,
            "BackupService.2011",
            &format!("The disk is {status}; it must be available (stop the server and detach it)."),
        );
    }
    let fail_reason = restore_fault(p, &[&volume_id]);
    let began_at = st.now();
    st.restores.push(Restore {
        project,
        backup_id: id,
        volume_id,
        started: Instant::now(),
        began_at,
        fail_reason,
        marks_volume: false,
        job_id: None,
        job_type: "cbrRestore",
    });
    StatusCode::ACCEPTED.into_response()
}

fn member_json(m: &Member) -> Value {
    json!({"id": m.id, "backup_id": m.backup_id, "dest_project_id": m.project,
           "status": "pending", "created_at": cbr_time(m.created_at), "updated_at": null,
           "vault_id": null, "image_id": null})
}

/// `POST …/backups/{id}/members`: shares an `available` backup with
/// projects (not twice with one); each member starts `pending`.
async fn share(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(projects) = body
        .as_ref()
        .and_then(|Json(b)| b.get("members"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
    else {
        return error(
            400,
            "BackupService.9900",
            "`members` must list project ids.",
        );
    };
    let mut st = lock(&state);
    st.cbr_sweep();
    let Some(b) = st.cbr.backup(&project, &id) else {
        return no_backup(&id);
    };
    if st.cbr_backup_status(b) != Some("available") {
        return error(
            400,
            "BackupService.6702",
            "Only available backups can be shared.",
        );
    }
    if let Some(dup) = projects.iter().find(|p| {
        st.cbr
            .members
            .iter()
            .any(|m| m.backup_id == id && m.project == **p)
    }) {
        return error(
            400,
            "BackupService.6703",
            &format!("The backup is already shared with {dup}."),
        );
    }
    let now = st.now();
    let added: Vec<Value> = projects
        .into_iter()
        .map(|p| {
            let m = Member {
                id: uuid::Uuid::new_v4().to_string(),
                backup_id: id.clone(),
                project: p,
                created_at: now,
            };
            let shown = member_json(&m);
            st.cbr.members.push(m);
            shown
        })
        .collect();
    Json(json!({ "members": added })).into_response()
}

async fn members(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    st.cbr_sweep();
    if st.cbr.backup(&project, &id).is_none() {
        return no_backup(&id);
    }
    let items = st
        .cbr
        .members
        .iter()
        .filter(|m| m.backup_id == id)
        .map(member_json)
        .collect();
    counted("members", items, &q)
}

/// `DELETE …/backups/{id}/members/{member}`, the member being the
/// recipient's project id: 204.
async fn unshare(
    AxState(state): AxState<Shared>,
    Path((project, id, member)): Path<(String, String, String)>,
) -> Response {
    let mut st = lock(&state);
    if st.cbr.backup(&project, &id).is_none() {
        return no_backup(&id);
    }
    let before = st.cbr.members.len();
    st.cbr
        .members
        .retain(|m| !(m.backup_id == id && m.project == member));
    if st.cbr.members.len() == before {
        return error(
            404,
            "BackupService.6705",
            &format!("Member {member} does not exist."),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// EVS `POST /v2/{project}/cloudvolumes` with a CBR `backup_id`: a new
/// disk from the backup, answered 200 with a job. The disk is `creating`,
/// then `restoring-backup` while the data is written, then `available`;
/// the job (`createVolume`) runs until then, with the disk's id in
/// `entities.volume_id`. EVS's checks: one disk only (EVS.1051), a known
/// (EVS.1006) and `available` (EVS.1044) backup, at least its size
/// (EVS.1022), in its availability zone (EVS.1049).
pub async fn disk_from_backup(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let evs = |code: &str, message: &str| {
        crate::routes::vendor_error(StatusCode::BAD_REQUEST, code, message)
    };
    let Some(v) = body.as_ref().and_then(|Json(b)| b.get("volume")) else {
        return evs("EVS.2002", "The body has no `volume`.");
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(backup_id) = text("backup_id") else {
        return evs(
            "EVS.2002",
            "The simulator makes disks from CBR backups only.",
        );
    };
    if v.get("count")
        .and_then(Value::as_u64)
        .is_some_and(|c| c != 1)
    {
        return evs(
            "EVS.1051",
            "Only one disk can be created from a backup at a time.",
        );
    }
    let size = v.get("size").and_then(Value::as_u64).unwrap_or(0);
    let mut st = lock(&state);
    st.cbr_sweep();
    let Some(b) = st.cbr.backup(&project, &backup_id) else {
        return evs("EVS.1006", &format!("Backup {backup_id} is invalid."));
    };
    if st.cbr_backup_status(b) != Some("available") {
        return evs("EVS.1044", "The backup is not available.");
    }
    if size < u64::from(b.size_gb) {
        return evs("EVS.1022", "The disk is smaller than the backup.");
    }
    if text("availability_zone").as_deref() != Some(AVAILABILITY_ZONE) {
        return evs(
            "EVS.1049",
            "The disk's availability zone differs from the backup's.",
        );
    }
    let fail_reason = st
        .projects
        .get(&project)
        .and_then(|p| restore_fault(p, &[&b.volume_id]));
    let creating_for = st.config.volume_create_duration;
    let new = NewVolume {
        size_gb: u32::try_from(size).unwrap_or(u32::MAX),
        name: text("name"),
        description: text("description"),
        volume_type: text("volume_type").unwrap_or_else(|| "SATA".into()),
        metadata: Default::default(),
        creating_for,
    };
    let volume_id = match st.create_volume(&project, new) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    let job_id = uuid::Uuid::new_v4().simple().to_string();
    let began_at = st.now();
    st.restores.push(Restore {
        project,
        backup_id,
        volume_id,
        // The data is written once the disk exists.
        started: Instant::now() + creating_for,
        began_at,
        fail_reason,
        marks_volume: true,
        job_id: Some(job_id.clone()),
        job_type: "createVolume",
    });
    Json(json!({ "job_id": job_id })).into_response()
}
