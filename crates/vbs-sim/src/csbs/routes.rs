//! The CSBS routes: protect, the checkpoint item list and detail, and
//! checkpoint deletion, with CSBS's own error shape.

use std::collections::HashMap;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{Checkpoint, PROVIDER};
use crate::routes::page_response;
use crate::state::cinder_time;
use crate::{lock, Shared};

/// CSBS answers errors as `{"error": {"code": "CSBS.xxxx", "message": …}}`.
use crate::routes::vendor_error as csbs_error;

fn valid_backup_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `POST /v1/{project}/providers/{provider}/resources/{server}/action`.
pub async fn protect(
    AxState(state): AxState<Shared>,
    Path((project, provider, server)): Path<(String, String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(p) = body
        .as_ref()
        .and_then(|Json(b)| b.get("protect"))
        .filter(|p| p.is_object())
    else {
        return csbs_error(
            StatusCode::BAD_REQUEST,
            "CSBS.1000",
            "the body has no `protect` object",
        );
    };
    if provider != PROVIDER {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1100",
            "the provider does not exist",
        );
    }
    let name = p
        .get("backup_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_backup_name(&name) {
        return csbs_error(
            StatusCode::BAD_REQUEST,
            "CSBS.1000",
            "backup_name must be 1-255 letters, digits, _ or -",
        );
    }
    let mut st = lock(&state);
    let Some(srv) = st
        .csbs
        .servers
        .iter()
        .find(|s| s.project == project && s.id == server)
        .cloned()
    else {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1104",
            &format!("server {server} does not exist"),
        );
    };
    let views = st.checkpoint_views(&project);
    if views
        .iter()
        .any(|(s, c)| c.server_id == server && *s == "protecting")
    {
        return csbs_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CSBS.1001",
            "a backup of this server is already being executed",
        );
    }
    let incremental = views
        .iter()
        .any(|(s, c)| c.server_id == server && *s == "available");
    let now = st.now();
    let checkpoint = Checkpoint {
        project: project.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        item_id: uuid::Uuid::new_v4().to_string(),
        server_id: server.clone(),
        server_name: srv.name.clone(),
        name,
        description: p
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        created: Instant::now(),
        created_at: now,
        incremental,
        fault: srv.fault.clone(),
        volume_backups: srv
            .volumes
            .iter()
            .map(|(v, size)| (uuid::Uuid::new_v4().to_string(), v.clone(), *size))
            .collect(),
        delete_requested: None,
    };
    st.record(
        "checkpoint",
        &project,
        &checkpoint.id,
        &checkpoint.name,
        &server,
        now,
    );
    st.csbs.looks += 1;
    // The SDK fixture has the resource's extra_info as the string "{}".
    let extra_info = if st.csbs.looks.is_multiple_of(2) {
        json!("{}")
    } else {
        json!({})
    };
    let answer = json!({"checkpoint": {
        "status": "protecting",
        "created_at": cinder_time(now),
        "id": checkpoint.id,
        "resource_graph": Value::Null,
        "project_id": project,
        "extra_info": Value::Null,
        "protection_plan": {
            "id": format!("fake_{}", uuid::Uuid::new_v4()),
            "resources": [{"type": "OS::Nova::Server", "id": server, "name": srv.name, "extra_info": extra_info}],
            "name": format!("server protect plan for {server}"),
        },
    }});
    st.csbs.checkpoints.push(checkpoint);
    Json(answer).into_response()
}

/// `GET /v1/{project}/checkpoint_items` with `checkpoint_id`, `resource_id`,
/// `name`, `status`, `limit`, `marker`. An item is listed only once it is
/// `checkpoint_item_delay` old.
pub async fn list_items(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    let delay = st.config.checkpoint_item_delay;
    let matches = |key: &str, value: &str| q.get(key).is_none_or(|want| want == value);
    let mut rows: Vec<(usize, &'static str)> = st
        .checkpoint_views(&project)
        .into_iter()
        .filter(|(s, c)| {
            c.created.elapsed() >= delay
                && matches("checkpoint_id", &c.id)
                && matches("resource_id", &c.server_id)
                && matches("name", &c.name)
                && matches("status", s)
        })
        .filter_map(|(s, c)| {
            let idx = st.csbs.checkpoints.iter().position(|x| x.id == c.id)?;
            Some((idx, s))
        })
        .collect();
    rows.sort_by(|a, b| {
        let (x, y) = (&st.csbs.checkpoints[a.0], &st.csbs.checkpoints[b.0]);
        y.created_at
            .cmp(&x.created_at)
            .then(y.item_id.cmp(&x.item_id))
    });
    let mut items: Vec<(String, Value)> = Vec::new();
    for (idx, status) in rows {
        let id = st.csbs.checkpoints[idx].item_id.clone();
        items.push((id, st.item_json(status, idx)));
    }
    let items: Vec<(&str, Value)> = items
        .iter()
        .map(|(id, v)| (id.as_str(), v.clone()))
        .collect();
    page_response("checkpoint_items", items, &q, &st.base_url, &project)
}

/// `GET /v1/{project}/checkpoint_items/{id}`.
pub async fn show_item(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    let found = st
        .checkpoint_views(&project)
        .into_iter()
        .find(|(_, c)| c.item_id == id)
        .and_then(|(s, c)| {
            let idx = st.csbs.checkpoints.iter().position(|x| x.id == c.id)?;
            Some((idx, s))
        });
    match found {
        Some((idx, status)) => {
            Json(json!({"checkpoint_item": st.item_json(status, idx)})).into_response()
        }
        None => csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1105",
            &format!("backup {id} does not exist"),
        ),
    }
}

/// `DELETE /v1/{project}/providers/{provider}/checkpoints/{id}`: accepted
/// and queued; a second delete of the same checkpoint is refused (400).
pub async fn delete_checkpoint(
    AxState(state): AxState<Shared>,
    Path((project, provider, id)): Path<(String, String, String)>,
) -> Response {
    if provider != PROVIDER {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1100",
            "the provider does not exist",
        );
    }
    let mut st = lock(&state);
    let status = st
        .checkpoint_views(&project)
        .into_iter()
        .find(|(_, c)| c.id == id)
        .map(|(s, _)| s);
    match status {
        None => {
            return csbs_error(
                StatusCode::NOT_FOUND,
                "CSBS.1105",
                &format!("checkpoint {id} does not exist"),
            )
        }
        Some("waiting_delete" | "deleting") => {
            return csbs_error(
                StatusCode::BAD_REQUEST,
                "CSBS.2003",
                "the backup is already being deleted",
            )
        }
        Some("protecting") => {
            return csbs_error(
                StatusCode::BAD_REQUEST,
                "CSBS.2003",
                "the backup is still being made",
            )
        }
        Some(_) => {}
    }
    let now = Instant::now();
    if let Some(c) = st
        .csbs
        .checkpoints
        .iter_mut()
        .find(|c| c.id == id && c.project == project)
    {
        c.delete_requested = Some(now);
    }
    let pending = st
        .checkpoint_deletions(&project)
        .values()
        .filter(|d| d.end > now)
        .count();
    let peak = st.csbs.peak_deletions.entry(project).or_default();
    *peak = (*peak).max(pending);
    Json(json!({})).into_response()
}
