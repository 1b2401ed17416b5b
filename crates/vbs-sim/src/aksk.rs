//! AK/SK-signed requests: the simulator recomputes the `SDK-HMAC-SHA256`
//! signature from the request as received and refuses a mismatch, an
//! unknown access key, an unsigned `X-Sdk-Date`, a date more than 15
//! minutes off (as the Huawei API gateway does) or a project header that
//! differs from the project in the path.

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDateTime, Utc};
use serde_json::json;

use super::{lock, Shared};
use apig_sign as sign;

/// Largest body the simulator reads to check a signature.
const MAX_BODY: usize = 1 << 20;

/// Whether the request carries an `SDK-HMAC-SHA256` authorization.
pub fn is_signed(req: &Request) -> bool {
    req.headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(sign::ALGORITHM))
}

fn refuse(message: &str) -> Response {
    let body = json!({"error_code": "APIGW.0301", "error_msg": format!("Incorrect IAM authentication information: {message}")});
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// The request, rebuilt with its body, if its signature holds.
pub async fn verify(state: &Shared, req: Request) -> Result<Request, Response> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| refuse("unreadable body"))?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let auth = header("Authorization")
        .as_deref()
        .and_then(sign::Authorization::parse)
        .ok_or_else(|| refuse("malformed Authorization header"))?;
    if !auth.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(refuse("X-Sdk-Date is not signed"));
    }
    let date = header(sign::DATE_HEADER).ok_or_else(|| refuse("no X-Sdk-Date"))?;
    let at = NaiveDateTime::parse_from_str(&date, sign::DATE_FORMAT)
        .map_err(|_| refuse("X-Sdk-Date is not YYYYMMDDTHHMMSSZ"))?
        .and_utc();
    if (Utc::now() - at).abs() > chrono::TimeDelta::minutes(15) {
        return Err(refuse("X-Sdk-Date is more than 15 minutes off"));
    }
    let secret = lock(state)
        .access_keys
        .get(&auth.access_key)
        .cloned()
        .ok_or_else(|| refuse("unknown access key"))?;
    let mut signed = Vec::new();
    for name in &auth.signed_headers {
        let value = header(name).ok_or_else(|| refuse("a signed header is missing"))?;
        signed.push((name.clone(), value));
    }
    let canonical = sign::canonical_request(&sign::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &signed,
        body: &body,
    });
    if sign::signature(&secret, &date, &canonical) != auth.signature {
        return Err(refuse("signature mismatch"));
    }
    let project = header("X-Project-Id").ok_or_else(|| refuse("no X-Project-Id"))?;
    let in_path = parts.uri.path().split('/').nth(2).unwrap_or_default();
    if project != in_path {
        return Err(refuse("X-Project-Id differs from the project in the path"));
    }
    Ok(Request::from_parts(parts, Body::from(body)))
}
