//! Servers as ECS and Nova show them, for selecting servers to back up:
//! the ECS tag filter (`POST /v1/{p}/servers/resource_instances/action`,
//! and Huawei's `cloudservers` copy), one server's ECS tags
//! (`/v1/{p}/cloudservers/{id}/tags[/action]`), the project's tags, and
//! Nova's list (`/v2.1/{p}/servers[/detail]`, 25 a page by default as on
//! OTC, a next link whenever the page is full), detail and metadata. Only
//! the servers of the project in the path are shown. ECS refusals use
//! `{"error": {"code": "Ecs.xxxx", "message"}}` (`Ecs.0114` for an unknown
//! server; `Ecs.0005`, a bad parameter, is an assumption); Nova's use its
//! fault shape.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::routes::{page_of, vendor_error};
use super::state::{Refusal, State};
use super::tags::{action_response, tag_list, TagError, TagFilter};
use super::volumes::AVAILABILITY_ZONE;
use super::{lock, Shared, SimServer};

/// Nova's page size on OTC when no `limit` is given.
const NOVA_PAGE: usize = 25;

/// A [`TagError`] as ECS answers it.
fn refused(e: TagError) -> Response {
    let message = match e {
        TagError::BadRequest(why) | TagError::InvalidTag(why) => why,
        TagError::TooMany => "a server carries at most 10 tags".into(),
    };
    vendor_error(StatusCode::BAD_REQUEST, "Ecs.0005", &message)
}

fn unknown(id: &str) -> Response {
    vendor_error(
        StatusCode::NOT_FOUND,
        "Ecs.0114",
        &format!("Instance[{id}] could not be found."),
    )
}

/// The project's servers in id order.
fn of_project<'a>(st: &'a State, project: &str) -> Vec<&'a SimServer> {
    let mut servers: Vec<&SimServer> = st
        .csbs
        .servers
        .iter()
        .filter(|s| s.project == project)
        .collect();
    servers.sort_by(|a, b| a.id.cmp(&b.id));
    servers
}

fn server_mut<'a>(st: &'a mut State, project: &str, id: &str) -> Option<&'a mut SimServer> {
    st.csbs
        .servers
        .iter_mut()
        .find(|s| s.project == project && s.id == id)
}

/// `POST /v1/{p}/servers/resource_instances/action`: `filter` or `count`,
/// `tags` and `not_tags` as tag objects, `resource_detail` null as in the
/// vendor's sample.
pub async fn filter(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Response> {
    let wanted = TagFilter::parse(body, false, true).map_err(refused)?;
    let st = lock(&state);
    let matched: Vec<&SimServer> = of_project(&st, &project)
        .into_iter()
        .filter(|s| wanted.selects("ECS", &s.name, &s.tags))
        .collect();
    let answer = wanted.answer(matched, |s| {
        json!({
            "resource_detail": null,
            "resource_id": s.id,
            "resource_name": s.name,
            "tags": tag_list(&s.tags),
        })
    });
    Ok(Json(answer).into_response())
}

/// `GET /v1/{p}/cloudservers/{id}/tags`.
pub async fn show_tags(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    match server_mut(&mut st, &project, &id) {
        Some(s) => Json(json!({ "tags": tag_list(&s.tags) })).into_response(),
        None => unknown(&id),
    }
}

/// `POST /v1/{p}/cloudservers/{id}/tags/action`: `create` / `delete`,
/// 204, idempotent.
pub async fn tags_action(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let mut st = lock(&state);
    let tags = server_mut(&mut st, &project, &id).map(|s| &mut s.tags);
    action_response(tags, body, refused, || unknown(&id))
}

/// `GET /v1/{p}/cloudservers/tags`: every key in use in the project with
/// its values, `{"tags": [{"key", "values": […]}]}`.
pub async fn project_tags(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
) -> Response {
    let st = lock(&state);
    let mut keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in of_project(&st, &project) {
        for (k, v) in &s.tags {
            keys.entry(k).or_default().insert(v);
        }
    }
    let tags: Vec<Value> = keys
        .into_iter()
        .map(|(k, vs)| json!({"key": k, "values": vs}))
        .collect();
    Json(json!({ "tags": tags })).into_response()
}

/// Nova's time format.
fn nova_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn links(st: &State, project: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v2.1/{project}/servers/{id}", st.base_url)},
        {"rel": "bookmark", "href": format!("{}/{project}/servers/{id}", st.base_url)},
    ])
}

/// Nova's server detail (microversion 2.1), `ACTIVE`, booted from its
/// first disk.
fn nova_detail(st: &State, project: &str, s: &SimServer) -> Value {
    let created = nova_time(
        st.csbs
            .server_created
            .get(&s.id)
            .copied()
            .unwrap_or_else(|| st.now()),
    );
    let volumes: Vec<Value> = s.volumes.iter().map(|(v, _)| json!({"id": v})).collect();
    json!({
        "id": s.id,
        "name": s.name,
        "status": "ACTIVE",
        "tenant_id": project,
        "user_id": "sim-user",
        "metadata": {},
        "hostId": "5f1d0c1e8a9b4e7c2d3f6a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
        "image": "",
        "flavor": {"id": "s3.medium.2", "links": []},
        "created": created,
        "updated": created,
        "addresses": {},
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(st, project, &s.id),
        "key_name": null,
        "config_drive": "",
        "progress": 0,
        "security_groups": [{"name": "default"}],
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": AVAILABILITY_ZONE,
        "OS-EXT-STS:vm_state": "active",
        "OS-EXT-STS:task_state": null,
        "OS-EXT-STS:power_state": 1,
        "OS-SRV-USG:launched_at": created,
        "OS-SRV-USG:terminated_at": null,
        "os-extended-volumes:volumes_attached": volumes,
    })
}

/// `GET /v2.1/{p}/servers` (id, links, name) and, with `DETAIL`,
/// `…/servers/detail`: by id, the `name` filter (a substring, as Nova's
/// regular expression mostly is) and `status`; `limit` (25 by default,
/// at most 1000) after `marker`, an unknown marker Nova's 400.
pub async fn list<const DETAIL: bool>(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let st = lock(&state);
    let items: Vec<(&str, Value)> = of_project(&st, &project)
        .into_iter()
        .filter(|s| q.get("name").is_none_or(|n| s.name.contains(n.as_str())))
        .filter(|_| {
            q.get("status")
                .is_none_or(|w| w.eq_ignore_ascii_case("ACTIVE"))
        })
        .map(|s| {
            let shown = if DETAIL {
                nova_detail(&st, &project, s)
            } else {
                json!({"id": s.id, "name": s.name, "links": links(&st, &project, &s.id)})
            };
            (s.id.as_str(), shown)
        })
        .collect();
    let page = page_of(items, &q, NOVA_PAGE, true);
    if !page.marker_found {
        let marker = q.get("marker").cloned().unwrap_or_default();
        return Err(Refusal::bad_request(format!("marker [{marker}] not found")));
    }
    let mut body = json!({ "servers": page.items });
    if let Some(marker) = page.next {
        let path = if DETAIL { "servers/detail" } else { "servers" };
        let href = format!(
            "{}/v2.1/{project}/{path}?limit={}&marker={marker}",
            st.base_url, page.limit
        );
        body["servers_links"] = json!([{"rel": "next", "href": href}]);
    }
    Ok(Json(body).into_response())
}

fn nova_not_found(id: &str) -> Refusal {
    Refusal::not_found(format!("Instance {id} could not be found."))
}

/// `GET /v2.1/{p}/servers/{id}`: the detail, Nova's 404 `itemNotFound`
/// once the server is gone.
pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let mut st = lock(&state);
    let server = server_mut(&mut st, &project, &id)
        .cloned()
        .ok_or_else(|| nova_not_found(&id))?;
    Ok(Json(json!({ "server": nova_detail(&st, &project, &server) })).into_response())
}

/// `GET /v2.1/{p}/servers/{id}/metadata`: always empty here.
pub async fn metadata(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let mut st = lock(&state);
    server_mut(&mut st, &project, &id).ok_or_else(|| nova_not_found(&id))?;
    Ok(Json(json!({ "metadata": {} })).into_response())
}
