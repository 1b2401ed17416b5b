use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::state::State;
use super::*;

mod clients;
mod http;
mod jobs;
mod restores;
mod state;
mod tags;
mod volumes;

const P: &str = "0123456789abcdef0123456789abcdef";
const VOL: &str = "00000000-0000-4000-8000-000000000001";
const ATTACHED: &str = "00000000-0000-4000-8000-000000000002";

fn config() -> SimConfig {
    SimConfig {
        projects: vec![SimProject::new(
            P,
            vec![
                SimVolume {
                    id: VOL.into(),
                    size_gb: 10,
                    attached: false,
                    fault: None,
                    ..SimVolume::default()
                },
                SimVolume {
                    id: ATTACHED.into(),
                    size_gb: 20,
                    attached: true,
                    fault: None,
                    ..SimVolume::default()
                },
            ],
        )],
        tokens: vec!["tok".into()],
        users: vec![SimUser {
            name: "bot".into(),
            domain: "Default".into(),
            password: "pw".into(),
        }],
        snapshot_duration: Duration::from_secs(2),
        backup_duration: Duration::from_secs(10),
        delete_duration: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

fn state() -> State {
    State::new(config(), "http://sim".into())
}

fn snap(st: &mut State, volume: &str) -> String {
    st.create_snapshot(P, volume, "s".into(), None, true, json!({}))
        .unwrap()
}

/// The state as handlers take it.
fn shared() -> Shared {
    Arc::new(Mutex::new(state()))
}

/// A handler's answer: status, headers, JSON body (null when empty).
async fn answer(r: impl IntoResponse) -> (u16, HeaderMap, Value) {
    let r = r.into_response();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A sample body from the crate's `fixtures/`.
fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A full backup of `VOL` (10 GB), available once this returns (the clock
/// paused).
async fn available_backup(state: &Shared) -> String {
    let s = snap(&mut lock(state), VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    let b = lock(state)
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    lock(state).delete_snapshot(P, &s).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    b
}

/// A volume created through the state and `available`.
async fn scratch(state: &Shared, size_gb: u32) -> String {
    let id = lock(state)
        .create_volume(
            P,
            crate::volumes::NewVolume {
                size_gb,
                name: Some("rt".into()),
                description: None,
                volume_type: "SATA".into(),
                metadata: Default::default(),
                creating_for: Duration::from_secs(1),
            },
        )
        .unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    id
}

/// Statuses of a volume and a backup now.
fn statuses(state: &Shared, volume: &str, backup: &str) -> (String, String) {
    let v = lock(state)
        .volume_views(P)
        .into_iter()
        .find(|v| v.id == volume)
        .map_or("gone".into(), |v| v.status);
    let b = lock(state)
        .backup_views(P)
        .into_iter()
        .find(|b| b.id == backup)
        .map_or("gone".into(), |b| b.status);
    (v, b)
}

// The simulator over HTTP.

async fn started(faults: Faults) -> SimHandle {
    let mut c = config();
    c.snapshot_duration = Duration::ZERO;
    c.backup_duration = Duration::ZERO;
    let sim = start(c, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    sim.set_faults(faults);
    sim
}

async fn get(sim: &SimHandle, path: &str, token: Option<&str>) -> reqwest::Result<(u16, String)> {
    let mut req = reqwest::Client::new().get(format!("{}{path}", sim.base_url()));
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

async fn post(sim: &SimHandle, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn backup_via_http(sim: &SimHandle, name: &str) -> String {
    let (st, s) = post(
        sim,
        &format!("/v2/{P}/snapshots"),
        json!({"snapshot": {"volume_id": VOL, "name": name}}),
    )
    .await;
    assert_eq!(st, 202, "{s}");
    let sid = s["snapshot"]["id"].as_str().unwrap().to_string();
    let (st, b) = post(
        sim,
        &format!("/v3/{P}/backups"),
        json!({"backup": {"volume_id": VOL, "snapshot_id": sid, "name": name}}),
    )
    .await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(
        b["backup"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "links", "name"]
    );
    b["backup"]["id"].as_str().unwrap().to_string()
}
