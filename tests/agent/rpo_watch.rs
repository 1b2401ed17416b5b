//! The daemon watches recovery points: a target that has no good backup
//! within its RPO shows in the `rpo_breach` gauge and is notified once,
//! however many runs fail after that.

use std::sync::{Arc, Mutex};

use crate::helper::sim::VolumeFault;
use crate::helper::{policy_yaml, volume, volume_id, wait_for, Daemon, World};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use vbs_agent::store::Store;

type Got = Arc<Mutex<Vec<Value>>>;

async fn record(State(got): State<Got>, Json(body): Json<Value>) {
    got.lock().unwrap().push(body);
}

/// A webhook receiver on 127.0.0.1: its URL and what it got.
async fn receiver() -> (String, Got) {
    let got = Got::default();
    let app = Router::new()
        .route("/hook", post(record))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_out_of_its_rpo_is_in_the_gauge_and_notified_once() {
    let failing = VolumeFault::BackupError {
        fail_reason: "backup service down".into(),
    };
    let world = World::start_instant(vec![volume(1, Some(failing))]).await;
    let bad = volume_id(1);
    let (hook, got) = receiver().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extra =
        format!("    rpo: 1s\n    notify:\n      webhook: {hook}\n      on: [rpo_breach]\n");
    let path = world.write_config(
        &format!("metrics_listen: 127.0.0.1:{port}\n"),
        "",
        &policy_yaml("watched", "* * * * * *", std::slice::from_ref(&bad), &extra),
    );
    let config = crate::helper::load(&path);
    let daemon = Daemon::start(config);

    // Several failed runs, each followed by a look at the recovery points.
    let history = world.path("state").join("history.db");
    wait_for("four failed jobs and a notification", || {
        let failed = Store::open_read_only(&history)
            .and_then(|s| s.recent_jobs(100))
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j.status.as_str() == "failed")
                    .count()
            })
            .unwrap_or(0);
        failed >= 4 && !got.lock().unwrap().is_empty()
    })
    .await;
    let page = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    daemon.stop().await;

    let series = format!(r#"vbs_agent_rpo_breach{{policy="watched",target="{bad}"}} 1"#);
    assert!(page.lines().any(|l| l == series), "{page}");
    let payloads = got.lock().unwrap().clone();
    assert_eq!(payloads.len(), 1, "notified once: {payloads:?}");
    assert_eq!(payloads[0]["event"], "rpo_breach", "{payloads:?}");
    assert_eq!(payloads[0]["target"], bad.as_str());
    assert_eq!(payloads[0]["rpo_seconds"], 1, "{payloads:?}");
}
