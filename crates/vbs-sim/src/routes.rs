//! HTTP routes: Cinder-style snapshots, backups, restores, shares and
//! volumes under both `/v2` and `/v3` (one set of handlers, as real Cinder
//! serves them), the vendor's `cloudbackups` restore and its jobs, CSBS,
//! Keystone, and the `/sim/*` controls for tests; and what the handlers
//! share: refusals, request bodies, lists and paging.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::state::{Backup, Project, Refusal, Resource, Snapshot, State};
use super::{
    aksk, backups, cbr, changes, csbs, faults, jobs, keystone, lock, restores, servers, shapes,
    sharing, snapshots, swept, versions, volume_tags, volumes, Faults, Shared,
    VolumeDeletionFaults, VolumeFault,
};

/// Largest page the list calls return, as VBS does.
pub const MAX_PAGE: usize = 1000;

pub fn router(state: Shared) -> Router {
    let mut cloud = Router::new();
    for v in ["v2", "v3"] {
        cloud = cloud
            .route(
                &format!("/{v}/{{project}}/snapshots"),
                post(snapshots::create).get(list::<Snapshot, false>),
            )
            .route(
                &format!("/{v}/{{project}}/snapshots/detail"),
                get(list::<Snapshot, true>),
            )
            .route(
                &format!("/{v}/{{project}}/snapshots/{{id}}"),
                get(snapshots::show).delete(delete_one::<Snapshot>),
            )
            .route(
                &format!("/{v}/{{project}}/backups"),
                post(backups::create).get(list::<Backup, false>),
            )
            .route(
                &format!("/{v}/{{project}}/backups/detail"),
                get(list::<Backup, true>),
            )
            .route(
                &format!("/{v}/{{project}}/backups/{{id}}"),
                get(backups::show).delete(delete_one::<Backup>),
            )
            .route(
                &format!("/{v}/{{project}}/backups/{{id}}/restore"),
                post(restores::cinder),
            )
            .route(
                &format!("/{v}/{{project}}/os-vendor-backup-sharing"),
                post(sharing::create),
            )
            .route(
                &format!("/{v}/{{project}}/os-vendor-backup-sharing/detail"),
                get(sharing::list),
            )
            .route(
                &format!("/{v}/{{project}}/volumes"),
                post(volumes::create).get(volumes::list::<false>),
            )
            .route(
                &format!("/{v}/{{project}}/volumes/detail"),
                get(volumes::list::<true>),
            )
            .route(
                &format!("/{v}/{{project}}/volumes/{{id}}"),
                get(volumes::show).delete(volumes::delete),
            )
            .route(
                &format!("/{v}/{{project}}/os-vendor-volumes/resource_instances/action"),
                post(volume_tags::filter),
            );
    }
    for base in ["os-vendor-volumes", "cloudvolumes"] {
        cloud = cloud
            .route(
                &format!("/v2/{{project}}/{base}/{{id}}/tags"),
                get(volume_tags::show),
            )
            .route(
                &format!("/v2/{{project}}/{base}/{{id}}/tags/action"),
                post(volume_tags::action),
            );
    }
    for base in ["servers", "cloudservers"] {
        cloud = cloud.route(
            &format!("/v1/{{project}}/{base}/resource_instances/action"),
            post(servers::filter),
        );
    }
    let cloud = cloud
        .route("/v3/auth/catalog", get(keystone::token_catalog))
        .route(
            "/v2/{project}/cloudbackups/{id}/restore",
            post(restores::vendor),
        )
        .route("/v1/{project}/jobs/{id}", get(jobs::show))
        .route("/v2/{project}/cloudvolumes", post(cbr::disk_from_backup))
        .route(
            "/v2/{project}/cloudvolumes/resource_instances/action",
            post(volume_tags::filter),
        )
        .route(
            "/v2/{project}/cloudvolumes/detail",
            get(volume_tags::cloudvolumes),
        )
        .route(
            "/v1/{project}/cloudservers/tags",
            get(servers::project_tags),
        )
        .route(
            "/v1/{project}/cloudservers/{id}/tags",
            get(servers::show_tags),
        )
        .route(
            "/v1/{project}/cloudservers/{id}/tags/action",
            post(servers::tags_action),
        )
        .route("/v2.1/{project}/servers", get(servers::list::<false>))
        .route("/v2.1/{project}/servers/detail", get(servers::list::<true>))
        .route("/v2.1/{project}/servers/{id}", get(servers::show))
        .route(
            "/v2.1/{project}/servers/{id}/metadata",
            get(servers::metadata),
        )
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
        .nest("/cbr", cbr::router())
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
        .route("/sim/requests", get(requests))
        .route("/sim/faults", put(set_faults))
        .route(
            "/sim/projects/{project}/volumes/{volume}/fault",
            put(set_volume_fault),
        )
        .route(
            "/sim/volume-deletion-faults",
            put(set_volume_deletion_faults),
        )
        .route(
            "/sim/projects/{project}/volumes/{volume}",
            delete(changes::delete_volume),
        )
        .route(
            "/sim/projects/{project}/volumes/{volume}/{label}/{key}",
            put(changes::put_volume_label),
        )
        .route("/sim/servers/{server}", delete(changes::delete_server))
        .route(
            "/sim/servers/{server}/tags/{key}",
            put(changes::put_server_tag),
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

/// Cinder's refusals answer `{"<fault>": {"code": N, "message": "…"}}`;
/// an exceeded quota (413) adds `retryAfter` and `Retry-After: 0`.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, Json(shapes::fault(&self))).into_response();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        }
        response
    }
}

/// The error shape of the vendor's own APIs (VBS `cloudbackups` and jobs,
/// CSBS): `{"error": {"code": "<string>", "message": "…"}}`.
pub fn vendor_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The object under `key` in a request body, or Cinder's 400 naming it.
pub fn body_object<'a>(body: &'a Option<Json<Value>>, key: &str) -> Result<&'a Value, Refusal> {
    body.as_ref()
        .and_then(|Json(b)| b.get(key))
        .filter(|v| v.is_object())
        .ok_or_else(|| bad_body(key))
}

/// A string field the request must have, or Cinder's 400 naming it.
pub fn required(v: &Value, key: &str) -> Result<String, Refusal> {
    text(v, key).ok_or_else(|| bad_body(key))
}

fn bad_body(what: &str) -> Refusal {
    Refusal::bad_request(format!(
        "Missing required element '{what}' in request body."
    ))
}

/// A string field of a request body, if it has one.
pub fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// One page of a list and where the next one starts.
pub(super) struct Page<T> {
    pub items: Vec<T>,
    /// The marker of the next page (the last id shown), if there is one.
    pub next: Option<String>,
    /// The page size used.
    pub limit: usize,
    /// Whether a `marker` asked for was found (or none was asked for).
    pub marker_found: bool,
}

/// Marker/offset/limit paging over items already filtered and sorted:
/// `limit` (`default` when absent, at most [`MAX_PAGE`]) items after the
/// `marker` id or from `offset`. With `when_full`, a next marker is given
/// whenever the page is full, as Cinder's and Nova's `_get_collection_links`
/// do (so the last page may be empty); without, only when more remain.
pub(super) fn page_of<T>(
    items: Vec<(&str, T)>,
    q: &HashMap<String, String>,
    default: usize,
    when_full: bool,
) -> Page<T> {
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok());
    let page = limit.unwrap_or(default).min(MAX_PAGE);
    let mut start = q
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let mut marker_found = true;
    if let Some(marker) = q.get("marker") {
        let at = items.iter().position(|(id, _)| id == marker);
        marker_found = at.is_some();
        start = at.map_or(items.len(), |i| i + 1);
    }
    let total = items.len();
    let mut out = Vec::new();
    let mut last = None;
    for (id, item) in items.into_iter().skip(start).take(page) {
        last = Some(id.to_string());
        out.push(item);
    }
    let more = if when_full {
        page > 0 && out.len() == page
    } else {
        start + out.len() < total
    };
    Page {
        items: out,
        next: last.filter(|_| more),
        limit: page,
        marker_found,
    }
}

/// Filters, sorting (newest first) and marker/offset/limit paging shared
/// by every list. Returns the page and, when more remain, the next marker.
pub(super) fn paginate<T>(
    items: Vec<(&str, T)>,
    q: &HashMap<String, String>,
) -> (Vec<T>, Option<(String, usize)>) {
    let page = page_of(items, q, MAX_PAGE, false);
    let next = page.next.map(|m| (m, page.limit));
    (page.items, next)
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
    Json(with_next_link(
        json!({ key: page }),
        key,
        next,
        base_url,
        project,
    ))
    .into_response()
}

/// `body` with `<key>_links` added when there is a next page (the
/// versionless href of [`page_response`]).
pub(super) fn with_next_link(
    mut body: Value,
    key: &str,
    next: Option<(String, usize)>,
    base_url: &str,
    project: &str,
) -> Value {
    if let Some((marker, limit)) = next {
        let href = format!("{base_url}/{project}/{key}?limit={limit}&marker={marker}");
        body[format!("{key}_links")] = json!([{"rel": "next", "href": href}]);
    }
    body
}

/// Whether the query leaves `key` open or asks for exactly `value`.
pub fn matches(q: &HashMap<String, String>, key: &str, value: &str) -> bool {
    q.get(key).is_none_or(|want| want == value)
}

/// What the routes of snapshots and backups need of a kind beyond its
/// [`Resource`] lifecycle.
pub trait Routed: Resource {
    /// Its status now.
    fn status(&self, st: &State, p: &Project) -> &'static str;
    /// Its JSON in a list: the summary fields, or with `detail` all.
    fn listed(&self, st: &State, project: &str, p: &Project, detail: bool) -> Value;
    /// Starts its deletion, with Cinder's checks.
    fn delete(st: &mut State, project: &str, id: &str) -> Result<(), Refusal>;
}

/// A list of snapshots or backups (`DETAIL`: `…/detail`): the exact `name`,
/// `volume_id` and `status` filters, newest first, one page.
pub async fn list<R: Routed, const DETAIL: bool>(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = swept(&state);
    let Some(p) = st.projects.get(&project) else {
        return Json(json!({ R::LIST: [] })).into_response();
    };
    let shelf = R::of(p);
    let candidates: Box<dyn Iterator<Item = &R>> = match q.get("volume_id") {
        Some(volume) => Box::new(shelf.of_volume(volume)),
        None => Box::new(shelf.iter()),
    };
    let mut found: Vec<&R> = candidates
        .filter(|r| {
            matches(&q, "name", r.name())
                && matches(&q, "volume_id", r.volume_id())
                && matches(&q, "status", r.status(&st, p))
        })
        .collect();
    found.sort_by(|a, b| b.created_at().cmp(&a.created_at()).then(b.id().cmp(a.id())));
    let items = found
        .into_iter()
        .map(|r| (r.id(), r.listed(&st, &project, p, DETAIL)))
        .collect();
    page_response(R::LIST, items, &q, &st.base_url, &project)
}

/// `DELETE …/snapshots/{id}` and `…/backups/{id}`: 202 once it started.
pub async fn delete_one<R: Routed>(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Result<StatusCode, Refusal> {
    R::delete(&mut lock(&state), &project, &id)?;
    Ok(StatusCode::ACCEPTED)
}

async fn ledger(AxState(state): AxState<Shared>) -> Response {
    Json(lock(&state).ledger()).into_response()
}

async fn requests(AxState(state): AxState<Shared>) -> Response {
    Json(&lock(&state).request_log).into_response()
}

async fn set_faults(AxState(state): AxState<Shared>, Json(faults): Json<Faults>) -> Response {
    lock(&state).set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

async fn set_volume_deletion_faults(
    AxState(state): AxState<Shared>,
    Json(faults): Json<VolumeDeletionFaults>,
) -> Response {
    lock(&state).volume_deletion_faults = faults;
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
