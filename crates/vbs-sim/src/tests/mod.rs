use std::time::Duration;

use serde_json::{json, Value};

use super::state::State;
use super::*;

mod clients;
mod http;
mod state;

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
                },
                SimVolume {
                    id: ATTACHED.into(),
                    size_gb: 20,
                    attached: true,
                    fault: None,
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
