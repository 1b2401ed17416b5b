use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::health::{Heartbeat, STALE_AFTER};
use super::server::router;
use super::Metrics;
use crate::api::CallRecord;

async fn get(metrics: &Metrics, heartbeat: &Arc<Heartbeat>, path: &str) -> (StatusCode, String) {
    let response = router(metrics.clone(), Arc::clone(heartbeat))
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn healthz_fails_once_the_scheduler_stops_beating_and_recovers_when_it_beats() {
    let metrics = Metrics::new();
    let heartbeat = Arc::new(Heartbeat::new());
    assert_eq!(
        get(&metrics, &heartbeat, "/healthz").await.0,
        StatusCode::OK
    );

    // Just inside the bound: still healthy.
    tokio::time::advance(STALE_AFTER).await;
    assert_eq!(
        get(&metrics, &heartbeat, "/healthz").await.0,
        StatusCode::OK
    );

    // The loop has not beaten for longer than the bound: stuck.
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, body) = get(&metrics, &heartbeat, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains("scheduler loop stuck: last heartbeat 1m 1s ago"),
        "{body}"
    );

    heartbeat.beat();
    assert_eq!(
        get(&metrics, &heartbeat, "/healthz").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn api_calls_rpo_and_in_flight_jobs_appear_on_the_metrics_page() {
    let metrics = Metrics::new();
    let call = |path, status| CallRecord {
        method: "GET",
        path,
        status,
        latency: Duration::from_millis(5),
        class: "ok",
        message: None,
    };
    metrics.api_call(&call(
        "/v2/0123456789abcdef0123456789abcdef/backups/detail?limit=100",
        Some(200),
    ));
    metrics.api_call(&call(
        "/v2/fedcba9876543210fedcba9876543210/backups/detail",
        Some(200),
    ));
    metrics.api_call(&call(
        "/v2/0123456789abcdef0123456789abcdef/backups/detail",
        None,
    ));
    metrics.set_rpo_breach("db", "vol-a", true);
    metrics.set_rpo_breach("db", "vol-b", false);
    let first = metrics.job_in_flight();
    let second = metrics.job_in_flight();
    drop(first);

    let (status, page) = get(&metrics, &Arc::new(Heartbeat::new()), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = page.lines().collect();
    let has = |line: &str| lines.contains(&line);
    assert!(
        has(
            r#"vbs_agent_api_requests_total{method="GET",endpoint="/v2/{id}/backups/detail",code="200"} 2"#
        ),
        "{page}"
    );
    assert!(
        has(
            r#"vbs_agent_api_requests_total{method="GET",endpoint="/v2/{id}/backups/detail",code="none"} 1"#
        ),
        "{page}"
    );
    assert!(
        has(r#"vbs_agent_rpo_breach{policy="db",target="vol-a"} 1"#),
        "{page}"
    );
    assert!(
        has(r#"vbs_agent_rpo_breach{policy="db",target="vol-b"} 0"#),
        "{page}"
    );
    assert!(has("vbs_agent_jobs_in_flight 1"), "{page}");
    drop(second);
    assert!(metrics
        .encode()
        .unwrap()
        .lines()
        .any(|l| l == "vbs_agent_jobs_in_flight 0"));
}

#[test]
fn a_verified_restore_sets_its_gauge_and_restore_times_fill_the_histogram() {
    use chrono::{TimeZone, Utc};

    use crate::store::{JobRecord, JobStatus, Phase};

    let metrics = Metrics::new();
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 5, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2026, 11, 22, 5, 20, 0).unwrap();
    let job = JobRecord {
        id: 7,
        run_id: 3,
        policy: "db.drill".into(),
        kind: crate::kind::PolicyKind::Restore,
        cloud: "prod".into(),
        target: "vol-a".into(),
        slot: start,
        resource_name: "db.drill-x".into(),
        status: JobStatus::Verified,
        phase: Phase::Done,
        snapshot_id: None,
        backup_id: Some("bk".into()),
        size_gb: Some(8),
        is_incremental: None,
        fail_reason: None,
        started_at: start,
        finished_at: Some(end),
        attempt: 1,
        attempt_started_at: start,
        blocked_by: None,
        retry_at: None,
        service: None,
    };
    metrics.job_ended(&job);
    metrics.restore_took("db.drill", 90.0);
    metrics.restore_took("db.drill", 700.0);
    metrics.set_last_verified("db.drill", "vol-b", 1_700_000_000);

    let page = metrics.encode().unwrap();
    let has = |line: &str| page.lines().any(|l| l == line);
    let ts = end.timestamp();
    assert!(
        has(&format!(
            r#"vbs_agent_restore_last_verified_timestamp_seconds{{policy="db.drill",target="vol-a"}} {ts}"#
        )),
        "{page}"
    );
    assert!(
        has(
            r#"vbs_agent_restore_last_verified_timestamp_seconds{policy="db.drill",target="vol-b"} 1700000000"#
        ),
        "{page}"
    );
    assert!(
        has(r#"vbs_agent_restore_duration_seconds_count{policy="db.drill"} 2"#),
        "{page}"
    );
    assert!(
        has(r#"vbs_agent_restore_duration_seconds_sum{policy="db.drill"} 790.0"#),
        "{page}"
    );
    assert!(
        page.contains("# TYPE vbs_agent_restore_duration_seconds histogram"),
        "{page}"
    );
}

#[test]
fn unprotected_targets_are_a_gauge_per_cloud() {
    let metrics = Metrics::new();
    metrics.set_unprotected("prod", 3);
    metrics.set_unprotected("prod", 2);
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("vbs_agent_unprotected_targets{cloud=\"prod\"} 2"),
        "{text}"
    );
}
