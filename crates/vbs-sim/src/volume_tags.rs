//! EVS tags of volumes and the vendor's volume list: the tag filter
//! (`POST …/os-vendor-volumes/resource_instances/action` on OTC, under
//! `/v2` and `/v3`, and Huawei's `…/cloudvolumes/resource_instances/action`),
//! one disk's tags (`…/{id}/tags`, `…/{id}/tags/action`, both paths), and
//! `GET /v2/{p}/cloudvolumes/detail` with a `tags` map per disk and a
//! `count`. Refusals use the vendor's `{"error": {"code", "message"}}`,
//! with the codes of EVS's table (`EVS.1061`, `EVS.1062`, `EVS.1070`); an
//! unknown disk is Cinder's 404.

use std::collections::HashMap;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::routes::{page_of, vendor_error, MAX_PAGE};
use super::state::{Project, Refusal, State, Volume};
use super::tags::{action_response, tag_list, TagError, TagFilter};
use super::volumes::{detail, listed};
use super::{lock, swept, Shared};

/// The service type EVS reports for its disks.
const SERVICE: &str = "EVS";

/// A [`TagError`] as EVS answers it.
fn refused(e: TagError) -> Response {
    let (code, message) = match e {
        TagError::BadRequest(why) => ("EVS.1070", format!("invalid request. {why}")),
        TagError::InvalidTag(why) => ("EVS.1062", format!("invalid tag! {why}")),
        TagError::TooMany => (
            "EVS.1061",
            "The Volume Tags is Exceed Max Limit Num.".into(),
        ),
    };
    vendor_error(StatusCode::BAD_REQUEST, code, &message)
}

/// The EVS detail of a disk: Cinder's, with the fields the vendor adds
/// (as in the `cloudvolumes/detail` and tag-filter samples).
fn evs_detail(st: &State, project: &str, p: &Project, id: &str, v: &Volume) -> Value {
    let mut d = detail(st, project, p, id, v);
    let extra = json!({
        "os-vol-host-attr:host": "pod01.sim#SATA",
        "os-vol-mig-status-attr:migstat": null,
        "os-vol-mig-status-attr:name_id": null,
        "os-volume-replication:extended_status": null,
        "volume_image_metadata": {},
        "service_type": SERVICE,
        "shareable": false,
        "dedicated_storage_id": null,
        "dedicated_storage_name": null,
        "wwn": format!(" 6888603000{}", id.replace('-', "").get(..22).unwrap_or_default()),
    });
    if let (Some(d), Value::Object(extra)) = (d.as_object_mut(), extra) {
        d.extend(extra);
    }
    d
}

/// The project's disks in id order.
fn sorted(p: &Project) -> Vec<(&String, &Volume)> {
    let mut vols: Vec<(&String, &Volume)> = p.volumes.iter().collect();
    vols.sort_by(|a, b| a.0.cmp(b.0));
    vols
}

/// `POST …/resource_instances/action`: `filter` (`total_count` of every
/// match, one page of `resources` by id) or `count`.
pub async fn filter(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Response> {
    let wanted = TagFilter::parse(body, true, false).map_err(refused)?;
    let st = swept(&state);
    let Some(p) = st.projects.get(&project) else {
        return Ok(Json(wanted.answer(Vec::<()>::new(), |_| Value::Null)).into_response());
    };
    let matched: Vec<(&String, &Volume)> = sorted(p)
        .into_iter()
        .filter(|(_, v)| wanted.selects(SERVICE, v.name.as_deref().unwrap_or(""), &v.tags))
        .collect();
    let answer = wanted.answer(matched, |(id, v)| {
        json!({
            "resource_id": id,
            "resource_name": v.name,
            "resource_detail": evs_detail(&st, &project, p, id, v),
            "tags": tag_list(&v.tags),
        })
    });
    Ok(Json(answer).into_response())
}

fn not_found(id: &str) -> Response {
    Refusal::not_found(format!("Volume {id} could not be found.")).into_response()
}

/// `GET …/{id}/tags`: `{"tags": [{key, value}]}`.
pub async fn show(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    match swept(&state).volume(&project, &id) {
        Ok((_, v)) => Json(json!({ "tags": tag_list(&v.tags) })).into_response(),
        Err(_) => not_found(&id),
    }
}

/// `POST …/{id}/tags/action`: `create` or `delete`, 204.
pub async fn action(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let mut st = lock(&state);
    st.sweep();
    let tags = st
        .projects
        .get_mut(&project)
        .and_then(|p| p.volumes.get_mut(&id))
        .map(|v| &mut v.tags);
    action_response(tags, body, refused, || not_found(&id))
}

/// `GET /v2/{p}/cloudvolumes/detail`: the EVS detail of each disk with its
/// `tags` map, `count` (every match, whatever the page), the `name`,
/// `status` and `metadata` filters of the Cinder list, `limit` / `marker` /
/// `offset` paging by id, and a next link (whenever the page is full)
/// that points at the Cinder path `/v2/{p}/volumes/detail`, as the
/// vendor's sample does.
pub async fn cloudvolumes(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = swept(&state);
    let Some(p) = st.projects.get(&project) else {
        return Json(json!({"count": 0, "volumes": []})).into_response();
    };
    let items: Vec<(&str, Value)> = sorted(p)
        .into_iter()
        .filter(|(id, v)| listed(&st, p, &q, id, v))
        .map(|(id, v)| {
            let mut d = evs_detail(&st, &project, p, id, v);
            d["tags"] = json!(v.tags);
            (id.as_str(), d)
        })
        .collect();
    let count = items.len();
    let page = page_of(items, &q, MAX_PAGE, true);
    let mut body = json!({"count": count, "volumes": page.items});
    if let Some(marker) = page.next {
        let href = format!(
            "{}/v2/{project}/volumes/detail?limit={}&marker={marker}",
            st.base_url, page.limit
        );
        body["volumes_links"] = json!([{"href": href, "rel": "next"}]);
    }
    Json(body).into_response()
}
