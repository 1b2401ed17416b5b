//! The HTTP listener for `metrics_listen`: `GET /metrics` (Prometheus /
//! OpenMetrics text) and `GET /healthz` (200 while the scheduler loop beats,
//! 503 when it is stuck).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Heartbeat, Metrics};

/// The OpenMetrics text format, which Prometheus negotiates and parses.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Shared {
    metrics: Metrics,
    heartbeat: Arc<Heartbeat>,
}

/// The routes, for serving or for calling directly in tests.
pub fn router(metrics: Metrics, heartbeat: Arc<Heartbeat>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .with_state(Shared { metrics, heartbeat })
}

/// Binds `addr` and serves `router` on it until the task is aborted.
pub async fn start(addr: SocketAddr, router: Router) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(listen = %bound, "serving /metrics and /healthz");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    }))
}

async fn metrics_page(State(shared): State<Shared>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n",
            )
                .into_response()
        }
    }
}

async fn healthz(State(shared): State<Shared>) -> Response {
    let age = shared.heartbeat.age();
    if shared.heartbeat.is_alive() {
        match shared.heartbeat.role() {
            Some(role) => (StatusCode::OK, format!("ok\n{role}\n")).into_response(),
            None => (StatusCode::OK, "ok\n").into_response(),
        }
    } else {
        let message = format!(
            "scheduler loop stuck: last heartbeat {} ago\n",
            humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
        );
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    }
}
