//! `POST /v3/auth/tokens`: Keystone v3 password authentication scoped to a
//! project, by ID or by name and domain; the token comes back in
//! `X-Subject-Token`. As Keystone does, an unknown project gets the same 401
//! as a wrong password.

use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{lock, Shared};

fn unauthorized() -> Response {
    let body = json!({"error": {"code": 401, "title": "Unauthorized",
        "message": "The request you have made requires authentication."}});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

pub async fn issue_token(AxState(state): AxState<Shared>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"code": 400, "title": "Bad Request", "message": "Expecting to find auth in request body."}}))).into_response();
    };
    let user = &body["auth"]["identity"]["password"]["user"];
    let (name, password, domain) = (
        user["name"].as_str(),
        user["password"].as_str(),
        user["domain"]["name"].as_str(),
    );
    let scope = &body["auth"]["scope"]["project"];
    let mut st = lock(&state);
    let known_user = st.config.users.iter().any(|u| {
        Some(u.name.as_str()) == name
            && Some(u.password.as_str()) == password
            && Some(u.domain.as_str()) == domain
    });
    let scoped = match scope["id"].as_str() {
        Some(id) => st.config.projects.iter().find(|p| p.id == id),
        None => {
            let domain = &scope["domain"];
            let domain = domain["name"].as_str().or(domain["id"].as_str());
            st.config
                .projects
                .iter()
                .find(|p| scope["name"].as_str() == Some(&p.name) && domain == Some(&p.domain))
        }
    };
    let Some((project, project_name, project_domain)) =
        scoped.map(|p| (p.id.clone(), p.name.clone(), p.domain.clone()))
    else {
        return unauthorized();
    };
    if !known_user {
        return unauthorized();
    }
    let token = format!("gAAAA{}", uuid::Uuid::new_v4().simple());
    let ttl = st.config.token_ttl;
    st.issued
        .insert(token.clone(), (project.clone(), Instant::now() + ttl));
    let base = st.base_url.clone();
    drop(st);

    let now = Utc::now();
    let expires = now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::hours(24));
    let body = json!({"token": {
        "methods": ["password"],
        "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "issued_at": now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "audit_ids": [uuid::Uuid::new_v4().simple().to_string()],
        "is_domain": false,
        "project": {"id": project, "name": project_name,
                    "domain": {"id": project_domain, "name": project_domain}},
        "user": {"id": uuid::Uuid::new_v4().simple().to_string(), "name": name,
                 "domain": {"id": "default", "name": domain}, "password_expires_at": null},
        "roles": [{"id": "member", "name": "member"}],
        "catalog": catalog(&base, &project),
    }});
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&token) {
        headers.insert("X-Subject-Token", v);
    }
    (StatusCode::CREATED, headers, Json(body)).into_response()
}

/// The service catalog: every service is this simulator, on the public
/// interface of region `sim-1`; the decoys (another region, the admin
/// interface) point at a port nothing listens on, so a client that ignores
/// region or interface fails.
fn catalog(base: &str, project: &str) -> Value {
    let endpoint = |kind: &str, version: &str| {
        let here = |interface: &str, region: &str, url: String| {
            json!({"interface": interface, "region": region, "region_id": region,
                   "id": uuid::Uuid::new_v4().simple().to_string(), "url": url})
        };
        json!({"type": kind, "name": "cinder", "id": uuid::Uuid::new_v4().simple().to_string(),
               "endpoints": [
                   here("admin", "sim-1", format!("http://127.0.0.1:9/{version}/{project}")),
                   here("public", "sim-1", format!("{base}/{version}/{project}")),
                   here("public", "sim-0", format!("http://127.0.0.1:9/{version}/{project}"))]})
    };
    json!([
        endpoint("volumev3", "v3"),
        endpoint("volumev2", "v2"),
        endpoint("vbs", "v2"),
        endpoint("csbs", "v1"),
        endpoint("cbr", "cbr/v3"),
        endpoint("compute", "v2.1")
    ])
}

/// `GET /v3/auth/catalog`: the catalog for the token in `X-Auth-Token`
/// (checked by the router); a static token gets the first project's.
pub async fn token_catalog(AxState(state): AxState<Shared>, headers: HeaderMap) -> Response {
    let token = headers
        .get("X-Auth-Token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let st = lock(&state);
    let project = st
        .issued
        .get(token)
        .map(|(p, _)| p.clone())
        .or_else(|| st.config.projects.first().map(|p| p.id.clone()))
        .unwrap_or_default();
    let body = json!({"catalog": catalog(&st.base_url, &project),
                      "links": {"self": format!("{}/v3/auth/catalog", st.base_url)}});
    (StatusCode::OK, Json(body)).into_response()
}
