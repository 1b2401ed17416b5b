//! API version discovery and microversions, as Cinder serves them:
//! `GET /` lists the versions (300 Multiple Choices), `GET /v2/` and
//! `GET /v3/` answer the same list with 200, `GET /v3` redirects to
//! `/v3/`. The simulator implements the base v3 API only, so it advertises
//! microversions 3.0 to 3.0; every `/v3` answer carries
//! `OpenStack-API-Version: volume 3.0`, and a request for another
//! microversion is refused as Cinder refuses one it lacks (406, or 400
//! for a malformed one). Clients such as openstacksdk need this before
//! their first call.

use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{lock, Shared};

/// The only microversion the simulator speaks.
pub const MICROVERSION: (u32, u32) = (3, 0);
const HEADER: &str = "OpenStack-API-Version";

fn version_list(base: &str) -> Value {
    let entry = |id: &str, status: &str, version: &str, min: &str, path: &str, n: u32| {
        json!({"id": id, "status": status, "version": version, "min_version": min,
               "updated": if n == 3 { "2016-02-08T12:20:21Z" } else { "2014-06-28T12:20:21Z" },
               "links": [{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                         {"rel": "self", "href": format!("{base}/{path}/")}],
               "media-types": [{"base": "application/json",
                                "type": format!("application/vnd.openstack.volume+json;version={n}")}]})
    };
    let max = format!("{}.{}", MICROVERSION.0, MICROVERSION.1);
    json!({"versions": [
        entry("v2.0", "SUPPORTED", "", "", "v2", 2),
        entry("v3.0", "CURRENT", &max, &max, "v3", 3),
    ]})
}

fn with_version_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let v = format!("volume {}.{}", MICROVERSION.0, MICROVERSION.1);
    if let Ok(v) = HeaderValue::from_str(&v) {
        h.insert(HEADER, v);
    }
    h.insert(header::VARY, HeaderValue::from_static(HEADER));
    resp
}

fn base(state: &Shared) -> String {
    lock(state).base_url.clone()
}

/// `GET /`.
pub async fn root(AxState(state): AxState<Shared>) -> Response {
    let body = version_list(&base(&state));
    with_version_headers((StatusCode::MULTIPLE_CHOICES, Json(body)).into_response())
}

/// `GET /v2/` and `GET /v3/`.
pub async fn version(AxState(state): AxState<Shared>) -> Response {
    with_version_headers(Json(version_list(&base(&state))).into_response())
}

/// `GET /v2` and `GET /v3`: 302 to the same path with a slash.
pub async fn redirect(AxState(state): AxState<Shared>, req: Request) -> Response {
    let to = format!("{}{}/", base(&state), req.uri().path());
    match HeaderValue::from_str(&to) {
        Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// What a request's `OpenStack-API-Version: volume X.Y` asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Asked {
    /// No header, `latest`, or exactly the supported microversion.
    Supported,
    /// A well-formed microversion outside 3.0–3.0.
    Unsupported(String),
    /// Not `MAJOR.MINOR`.
    Malformed(String),
}

/// Reads the header value (`volume 3.0`, `volume latest`, possibly among
/// other services' entries separated by commas).
pub fn asked(header: Option<&str>) -> Asked {
    let Some(value) = header.and_then(|h| {
        h.split(',')
            .map(str::trim)
            .find_map(|e| e.strip_prefix("volume "))
            .map(str::trim)
    }) else {
        return Asked::Supported;
    };
    if value == "latest" {
        return Asked::Supported;
    }
    let parsed = value
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
    match parsed {
        Some(v) if v == MICROVERSION => Asked::Supported,
        Some(_) => Asked::Unsupported(value.to_string()),
        None => Asked::Malformed(value.to_string()),
    }
}

/// Checks the microversion of `/v3/…` requests and stamps their answers.
pub async fn microversion(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Keystone shares the `/v3` prefix but has no volume microversions.
    if !path.starts_with("/v3/") || path.starts_with("/v3/auth/") {
        return next.run(req).await;
    }
    let header = req.headers().get(HEADER).and_then(|v| v.to_str().ok());
    let max = format!("{}.{}", MICROVERSION.0, MICROVERSION.1);
    let refusal = match asked(header) {
        Asked::Supported => None,
        Asked::Unsupported(v) => Some((
            StatusCode::NOT_ACCEPTABLE,
            json!({"computeFault": {"code": 406, "message": format!(
                "Version {v} is not supported by the API. Minimum is {max} and maximum is {max}.")}}),
        )),
        Asked::Malformed(v) => Some((
            StatusCode::BAD_REQUEST,
            json!({"badRequest": {"code": 400, "message": format!(
                "API Version String {v} is of invalid format. Must be of format MajorNum.MinorNum.")}}),
        )),
    };
    let resp = match refusal {
        Some((status, body)) => (status, Json(body)).into_response(),
        None => next.run(req).await,
    };
    with_version_headers(resp)
}
