//! Fault injection for cloud API routes: errors and throttling before a
//! request is handled, dropped connections before or after, malformed
//! answers after, and slow answers.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::Refusal;
use super::{lock, RequestRecord, Scripted, Shared};

/// What the dice decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    ServerError { unavailable: bool },
    Throttle,
    DropBefore,
    DropAfter,
    Malformed { html: bool },
}

fn roll(state: &Shared, path: &str) -> (Fault, Option<Duration>) {
    let mut st = lock(state);
    st.requests += 1;
    let f = st.faults.clone();
    if !f.paths.is_empty() && !f.paths.iter().any(|p| path.contains(p.as_str())) {
        return (Fault::None, None);
    }
    let mut hit = |rate: f64| rate > 0.0 && st.rng.f64() < rate;
    let slow = hit(f.slow_rate).then(|| Duration::from_millis(f.slow_delay_ms));
    let fault = if hit(f.server_error_rate) {
        Fault::ServerError {
            unavailable: st.rng.bool(),
        }
    } else if hit(f.throttle_rate) {
        Fault::Throttle
    } else if hit(f.drop_rate) {
        if st.rng.bool() {
            Fault::DropBefore
        } else {
            Fault::DropAfter
        }
    } else if hit(f.malformed_rate) {
        Fault::Malformed {
            html: st.rng.bool(),
        }
    } else {
        Fault::None
    };
    (fault, slow)
}

/// A response whose body fails at once: the connection is closed without
/// a complete answer, which the client sees as a transport error.
fn dropped() -> Response {
    Response::new(Body::from_stream(Broken))
}

/// A body stream that fails on its first poll.
struct Broken;

impl futures_core::Stream for Broken {
    type Item = Result<axum::body::Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        ))))
    }
}

/// Takes the first scripted answer matching this request, if any.
fn take_scripted(state: &Shared, req: &Request) -> Option<Scripted> {
    let mut st = lock(state);
    let method = req.method().as_str();
    let path = req.uri().path();
    let i = st.scripted.iter().position(|s| {
        s.times > 0 && s.method.eq_ignore_ascii_case(method) && path.contains(&s.path_contains)
    })?;
    let entry = &mut st.scripted[i];
    entry.times -= 1;
    let answer = entry.clone();
    if entry.times == 0 {
        st.scripted.remove(i);
    }
    Some(answer)
}

fn scripted_response(s: &Scripted, path: &str) -> Response {
    let status = StatusCode::from_u16(s.status).unwrap_or(StatusCode::OK);
    let content_type = HeaderValue::from_str(&s.content_type)
        .unwrap_or(HeaderValue::from_static("application/json"));
    let mut response = (
        status,
        [(header::CONTENT_TYPE, content_type)],
        s.body
            .replace("{id}", path.rsplit('/').next().unwrap_or_default()),
    )
        .into_response();
    for (name, value) in &s.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The request as it arrived, for the request log.
fn record(req: &Request) -> RequestRecord {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let signed_by = header("Authorization")
        .and_then(apig_sign::Authorization::parse)
        .map(|a| a.access_key);
    RequestRecord {
        at: chrono::Utc::now(),
        method: req.method().as_str().to_string(),
        path: req.uri().path().to_string(),
        caller: header("X-Auth-Token").map(str::to_string).or(signed_by),
    }
}

/// A 500 from CBR, in its flat shape: a backup run is refused as busy (`BackupService.0002`, which CBR sends as a 500), any
/// other call fails with an internal error (a code of the simulator's own:
/// the vendor publishes none for it).
fn cbr_server_error(run: bool) -> Response {
    let (code, message) = if run {
        (
            "BackupService.0002",
            "The resources are being backed up or restored. Try again later.",
        )
    } else {
        ("BackupService.9999", "Internal server error.")
    };
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error_code": code, "error_msg": message})),
    )
        .into_response()
}

/// The middleware: logs the request, then answers it as scripted, with a
/// fault, or as the routes do.
pub async fn inject(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    lock(&state).log_request(record(&req));
    if let Some(answer) = take_scripted(&state, &req) {
        lock(&state).requests += 1;
        let path = req.uri().path().to_string();
        if answer.after_handling {
            let _ = next.run(req).await;
        }
        return scripted_response(&answer, &path);
    }
    let (fault, slow) = roll(&state, req.uri().path());
    match fault {
        // A slow answer comes after the work is done, so a client that gives
        // up (or dies) while waiting leaves a resource it never heard of.
        Fault::None => {
            let response = next.run(req).await;
            if let Some(delay) = slow {
                tokio::time::sleep(delay).await;
            }
            response
        }
        Fault::ServerError { unavailable: false } if req.uri().path().starts_with("/cbr/") => {
            let run = req.method() == axum::http::Method::POST
                && req.uri().path().ends_with("/checkpoints");
            cbr_server_error(run)
        }
        Fault::ServerError { unavailable: false } => Refusal::server_error().into_response(),
        Fault::ServerError { unavailable: true } => {
            let body =
                json!({"serviceUnavailable": {"code": 503, "message": "Service Unavailable"}});
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                Json(body),
            )
                .into_response()
        }
        Fault::Throttle => {
            let body = json!({"overLimit": {"code": 429, "message": "This request was rate-limited.", "retryAfter": "1"}});
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                Json(body),
            )
                .into_response()
        }
        Fault::DropBefore => dropped(),
        Fault::DropAfter => {
            let _ = next.run(req).await;
            dropped()
        }
        Fault::Malformed { html } => {
            let _ = next.run(req).await;
            if html {
                let page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>";
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
                    page,
                )
                    .into_response()
            } else {
                (
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    "{\"backup\": {\"id\": \"",
                )
                    .into_response()
            }
        }
    }
}
