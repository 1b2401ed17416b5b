//! HTTP routes: Cinder-style snapshots and backups under both `/v2` and
//! `/v3` (one set of handlers, as real Cinder serves them), Keystone, and
//! the `/sim/*` controls for tests.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::state::{Refusal, State};
use super::{
    aksk, csbs, faults, keystone, lock, shapes, versions, volumes, Faults, Shared, VolumeFault,
};

/// Largest page the list calls return, as VBS does.
const MAX_PAGE: usize = 1000;

pub fn router(state: Shared) -> Router {
    let mut cloud = Router::new();
    for v in ["v2", "v3"] {
        cloud = cloud
            .route(
                &format!("/{v}/{{project}}/snapshots"),
                post(create_snapshot).get(list_snapshots),
            )
            .route(
                &format!("/{v}/{{project}}/snapshots/detail"),
                get(list_snapshots_detail),
            )
            .route(
                &format!("/{v}/{{project}}/snapshots/{{id}}"),
                get(show_snapshot).delete(delete_snapshot),
            )
            .route(
                &format!("/{v}/{{project}}/backups"),
                post(create_backup).get(list_backups),
            )
            .route(
                &format!("/{v}/{{project}}/backups/detail"),
                get(list_backups_detail),
            )
            .route(
                &format!("/{v}/{{project}}/backups/{{id}}"),
                get(show_backup).delete(delete_backup),
            )
            .route(
                &format!("/{v}/{{project}}/os-vendor-backup-sharing"),
                post(create_shares),
            )
            .route(
                &format!("/{v}/{{project}}/os-vendor-backup-sharing/detail"),
                get(list_shares),
            )
            .route(
                &format!("/{v}/{{project}}/volumes"),
                get(volumes::list_summary),
            )
            .route(
                &format!("/{v}/{{project}}/volumes/detail"),
                get(volumes::list_detail),
            )
            .route(
                &format!("/{v}/{{project}}/volumes/{{id}}"),
                get(volumes::show),
            );
    }
    let cloud = cloud
        .route("/v3/auth/catalog", get(keystone::token_catalog))
        .route(
            "/v1/{project}/providers/{provider}/resources/{server}/action",
            post(csbs::protect),
        )
        .route("/v1/{project}/checkpoint_items", get(csbs::list_items))
        .route("/v1/{project}/checkpoint_items/{id}", get(csbs::show_item))
        .route(
            "/v1/{project}/providers/{provider}/checkpoints/{id}",
            delete(csbs::delete_checkpoint),
        )
        .route_layer(middleware::from_fn(versions::microversion))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route("/v3/auth/tokens", post(keystone::issue_token))
        .route("/", get(versions::root))
        .route("/v2", get(versions::redirect))
        .route("/v3", get(versions::redirect))
        .route("/v2/", get(versions::version))
        .route("/v3/", get(versions::version))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            faults::inject,
        ));
    let control = Router::new()
        .route("/sim/ledger", get(ledger))
        .route("/sim/faults", put(set_faults))
        .route(
            "/sim/projects/{project}/volumes/{volume}/fault",
            put(set_volume_fault),
        );
    cloud.merge(control).with_state(state)
}

async fn require_token(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    if aksk::is_signed(&req) {
        return match aksk::verify(&state, req).await {
            Ok(req) => next.run(req).await,
            Err(refused) => refused,
        };
    }
    let ok = req
        .headers()
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| lock(&state).token_valid(t));
    if ok {
        next.run(req).await
    } else {
        let body = json!({"unauthorized": {"code": 401, "message": "The request you have made requires authentication."}});
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

pub(super) fn refused(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(shapes::fault(&r))).into_response()
}

fn bad_body(what: &str) -> Response {
    refused(Refusal {
        status: 400,
        fault: "badRequest",
        message: format!("Missing required element '{what}' in request body."),
    })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

async fn create_snapshot(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(s) = body
        .as_ref()
        .and_then(|Json(b)| b.get("snapshot"))
        .filter(|s| s.is_object())
    else {
        return bad_body("snapshot");
    };
    let Some(volume_id) = text(s, "volume_id") else {
        return bad_body("volume_id");
    };
    let force = s.get("force").and_then(Value::as_bool).unwrap_or(false);
    let metadata = s
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let mut st = lock(&state);
    match st.create_snapshot(
        &project,
        &volume_id,
        text(s, "name").unwrap_or_default(),
        text(s, "description"),
        force,
        metadata,
    ) {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({"snapshot": snapshot_json(&st, &project, &id)})),
        )
            .into_response(),
        Err(r) => refused(r),
    }
}

fn snapshot_json(st: &State, project: &str, id: &str) -> Value {
    st.projects
        .get(project)
        .and_then(|p| {
            p.snapshots
                .iter()
                .find(|s| s.id == id)
                .map(|s| shapes::snapshot(st, project, p, s))
        })
        .unwrap_or(Value::Null)
}

async fn show_snapshot(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    st.sweep();
    match snapshot_json(&st, &project, &id) {
        Value::Null => refused(Refusal {
            status: 404,
            fault: "itemNotFound",
            message: format!("Snapshot {id} could not be found."),
        }),
        s => Json(json!({ "snapshot": s })).into_response(),
    }
}

async fn delete_snapshot(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    match lock(&state).delete_snapshot(&project, &id) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(r) => refused(r),
    }
}

/// Filters, sorting (newest first) and marker/offset/limit paging shared
/// by every list. Returns the page and, when more remain, the next marker.
pub(super) fn paginate<T>(
    items: Vec<(&str, T)>,
    q: &HashMap<String, String>,
) -> (Vec<T>, Option<(String, usize)>) {
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok());
    let page = limit.unwrap_or(MAX_PAGE).min(MAX_PAGE);
    let mut start = q
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    if let Some(marker) = q.get("marker") {
        start = items
            .iter()
            .position(|(id, _)| id == marker)
            .map_or(items.len(), |i| i + 1);
    }
    let total = items.len();
    let mut out = Vec::new();
    let mut last = None;
    for (id, item) in items.into_iter().skip(start).take(page) {
        last = Some(id.to_string());
        out.push(item);
    }
    let more = start + out.len() < total;
    let next = match (more, last) {
        (true, Some(id)) => Some((id, page)),
        _ => None,
    };
    (out, next)
}

/// One page of a list, `{"<key>": […], "<key>_links": [next]}`; the next
/// link lacks the version segment, as in the vendor's sample, so clients
/// must rebuild it from the marker.
pub(super) fn page_response(
    key: &str,
    items: Vec<(&str, Value)>,
    q: &HashMap<String, String>,
    base_url: &str,
    project: &str,
) -> Response {
    let (page, next) = paginate(items, q);
    let mut body = json!({ key: page });
    if let Some((marker, limit)) = next {
        let href = format!("{base_url}/{project}/{key}?limit={limit}&marker={marker}");
        body[format!("{key}_links")] = json!([{"rel": "next", "href": href}]);
    }
    Json(body).into_response()
}

fn matches(q: &HashMap<String, String>, key: &str, value: &str) -> bool {
    q.get(key).is_none_or(|want| want == value)
}

fn list_snapshots_json(
    state: &Shared,
    project: &str,
    q: &HashMap<String, String>,
    detail: bool,
) -> Response {
    let mut st = lock(state);
    st.sweep();
    let st = &*st;
    let Some(p) = st.projects.get(project) else {
        return Json(json!({"snapshots": []})).into_response();
    };
    let mut snaps: Vec<_> = p
        .snapshots
        .iter()
        .filter(|s| {
            matches(q, "name", &s.name)
                && matches(q, "volume_id", &s.volume_id)
                && matches(q, "status", st.snapshot_status(p, s))
        })
        .collect();
    snaps.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = snaps
        .into_iter()
        .map(|s| {
            let full = shapes::snapshot(st, project, p, s);
            let v = if detail { full } else { json!({"id": s.id, "name": s.name, "volume_id": s.volume_id, "status": full["status"], "size": s.size_gb}) };
            (s.id.as_str(), v)
        })
        .collect();
    page_response("snapshots", items, q, &st.base_url, project)
}

async fn list_snapshots(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_snapshots_json(&state, &project, &q, false)
}

async fn list_snapshots_detail(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_snapshots_json(&state, &project, &q, true)
}

async fn create_backup(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(b) = body
        .as_ref()
        .and_then(|Json(b)| b.get("backup"))
        .filter(|b| b.is_object())
    else {
        return bad_body("backup");
    };
    let Some(volume_id) = text(b, "volume_id") else {
        return bad_body("volume_id");
    };
    let incremental = b
        .get("incremental")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let name = text(b, "name").unwrap_or_default();
    let mut st = lock(&state);
    match st.create_backup(
        &project,
        &volume_id,
        text(b, "snapshot_id").as_deref(),
        name,
        text(b, "description"),
        incremental,
    ) {
        Ok(id) => {
            let p = st.projects.get(&project);
            let summary = p
                .and_then(|p| p.backups.iter().find(|x| x.id == id))
                .map(|x| shapes::backup_summary(&st, &project, x));
            (StatusCode::ACCEPTED, Json(json!({ "backup": summary }))).into_response()
        }
        Err(r) => refused(r),
    }
}

async fn show_backup(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    st.sweep();
    let st = &*st;
    let found = st.projects.get(&project).and_then(|p| {
        p.backups
            .iter()
            .find(|b| b.id == id)
            .map(|b| shapes::backup_detail(st, &project, p, b))
    });
    match found {
        Some(b) => Json(json!({ "backup": b })).into_response(),
        None => refused(Refusal {
            status: 404,
            fault: "itemNotFound",
            message: format!("Backup {id} could not be found."),
        }),
    }
}

async fn delete_backup(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    match lock(&state).delete_backup(&project, &id) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(r) => refused(r),
    }
}

fn list_backups_json(
    state: &Shared,
    project: &str,
    q: &HashMap<String, String>,
    detail: bool,
) -> Response {
    let mut st = lock(state);
    st.sweep();
    let st = &*st;
    let Some(p) = st.projects.get(project) else {
        return Json(json!({"backups": []})).into_response();
    };
    let mut backups: Vec<_> = p
        .backups
        .iter()
        .filter(|b| {
            matches(q, "name", &b.name)
                && matches(q, "volume_id", &b.volume_id)
                && matches(q, "status", st.backup_status(b))
        })
        .collect();
    backups.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let items = backups
        .into_iter()
        .map(|b| {
            let v = if detail {
                shapes::backup_detail(st, project, p, b)
            } else {
                shapes::backup_summary(st, project, b)
            };
            (b.id.as_str(), v)
        })
        .collect();
    page_response("backups", items, q, &st.base_url, project)
}

async fn list_backups(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_backups_json(&state, &project, &q, false)
}

async fn list_backups_detail(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_backups_json(&state, &project, &q, true)
}

async fn create_shares(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(req) = body
        .as_ref()
        .and_then(|Json(b)| b.get("shared"))
        .filter(|s| s.is_object())
    else {
        return bad_body("shared");
    };
    let Some(backup_id) = text(req, "backup_id") else {
        return bad_body("backup_id");
    };
    let to: Vec<String> = req
        .get("to_project_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut st = lock(&state);
    match st.share(&project, &backup_id, &to) {
        Ok(ids) => {
            let shared: Vec<Value> = st
                .shares
                .iter()
                .filter(|s| ids.contains(&s.id))
                .map(|s| {
                    json!({"backup_id": s.backup_id, "deleted": null, "created_at": null, "updated_at": null,
                           "to_project_id": s.to_project, "from_project_id": s.from_project,
                           "deleted_at": null, "id": s.id})
                })
                .collect();
            Json(json!({ "shared": shared })).into_response()
        }
        Err(r) => refused(r),
    }
}

/// The share list with the page's filters; `share_to_me=true` lists what
/// other projects shared with this one.
async fn list_shares(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    st.sweep();
    let st = &*st;
    let to_me = q.get("share_to_me").is_some_and(|v| v == "true");
    let mut rows: Vec<(&super::state::Share, Value)> = Vec::new();
    for s in &st.shares {
        let mine = if to_me {
            s.to_project == project
        } else {
            s.from_project == project
        };
        if !mine
            || !matches(&q, "backup_id", &s.backup_id)
            || !matches(&q, "to_project_id", &s.to_project)
            || !matches(&q, "from_project_id", &s.from_project)
        {
            continue;
        }
        let Some((p, b)) = st.projects.get(&s.from_project).and_then(|p| {
            p.backups
                .iter()
                .find(|b| b.id == s.backup_id)
                .map(|b| (p, b))
        }) else {
            continue;
        };
        let backup = shapes::backup_detail(st, &s.from_project, p, b);
        let name_ok = q.get("name").is_none_or(|n| b.name.contains(n.as_str()));
        if !name_ok
            || !matches(&q, "status", st.backup_status(b))
            || !matches(&q, "volume_id", &b.volume_id)
        {
            continue;
        }
        let share = json!({"backup": backup, "backup_id": s.backup_id, "created_at": super::state::cinder_time(s.created_at),
                           "from_project_id": s.from_project, "id": s.id, "to_project_id": s.to_project, "updated_at": null});
        rows.push((s, share));
    }
    let desc = q.get("sort_dir").is_none_or(|d| d != "asc");
    rows.sort_by(|(a, _), (b, _)| {
        let order = match q.get("sort_key").map(String::as_str) {
            Some("id") => a.id.cmp(&b.id),
            _ => a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)),
        };
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    let offset = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(MAX_PAGE)
        .min(MAX_PAGE);
    let page: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, v)| v)
        .collect();
    Json(json!({ "shared": page })).into_response()
}

async fn ledger(AxState(state): AxState<Shared>) -> Response {
    Json(lock(&state).ledger()).into_response()
}

async fn set_faults(AxState(state): AxState<Shared>, Json(faults): Json<Faults>) -> Response {
    lock(&state).set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

async fn set_volume_fault(
    AxState(state): AxState<Shared>,
    Path((project, volume)): Path<(String, String)>,
    Json(fault): Json<Option<VolumeFault>>,
) -> Response {
    lock(&state).set_volume_fault(&project, &volume, fault);
    StatusCode::NO_CONTENT.into_response()
}
