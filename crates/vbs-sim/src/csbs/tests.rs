use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::*;
use crate::state::State;
use crate::{lock, Shared, SimConfig};

const P: &str = "0123456789abcdef0123456789abcdef";
const SRV: &str = "f8ddc472-cf00-4384-851e-5f2a68c33762";

fn shared() -> Shared {
    let config = SimConfig {
        servers: vec![SimServer {
            project: P.into(),
            id: SRV.into(),
            name: "web".into(),
            volumes: vec![("v1".into(), 20)],
            ..SimServer::default()
        }],
        server_backup_duration: Duration::from_secs(10),
        checkpoint_item_delay: Duration::from_secs(2),
        checkpoint_delete_duration: Duration::from_secs(5),
        ..SimConfig::default()
    };
    Arc::new(Mutex::new(State::new(config, "http://sim".into())))
}

async fn body(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn protect_named(state: &Shared, name: &str) -> String {
    let req = json!({"protect": {"backup_name": name}});
    let (status, v) = body(
        protect(
            AxState(Arc::clone(state)),
            Path((P.into(), PROVIDER.into(), SRV.into())),
            Some(Json(req)),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["checkpoint"]["id"].as_str().unwrap().to_string()
}

async fn list(state: &Shared, q: &[(&str, &str)]) -> Vec<Value> {
    let q = q
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (_, v) = body(list_items(AxState(Arc::clone(state)), Path(P.into()), Query(q)).await).await;
    v["checkpoint_items"].as_array().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn the_vendor_request_is_accepted_and_its_item_appears_late_and_grows() {
    let state = shared();
    // The vendor's sample, as the agent's own tests read it.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/api/csbs_protect_request_otc.json"
    );
    let sample = std::fs::read_to_string(path).unwrap();
    let (status, v) = body(
        protect(
            AxState(Arc::clone(&state)),
            Path((P.into(), PROVIDER.into(), SRV.into())),
            Some(Json(serde_json::from_str(&sample).unwrap())),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let checkpoint = v["checkpoint"]["id"].as_str().unwrap().to_string();
    assert!(list(&state, &[("checkpoint_id", &checkpoint)])
        .await
        .is_empty());
    tokio::time::advance(Duration::from_secs(3)).await;
    let items = list(&state, &[("checkpoint_id", &checkpoint)]).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "protecting");
    let early = items[0]["extend_info"]["progress"].as_f64().unwrap();
    // A second backup of the same server while one runs: CSBS.1001.
    let req = json!({"protect": {"backup_name": "again"}});
    let (status, v) = body(
        protect(
            AxState(Arc::clone(&state)),
            Path((P.into(), PROVIDER.into(), SRV.into())),
            Some(Json(req)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!("CSBS.1001"))
    );
    tokio::time::advance(Duration::from_secs(4)).await;
    let item = &list(&state, &[("name", "backup")]).await[0];
    let later = item["extend_info"]["progress"].as_f64().unwrap();
    assert!(later > early, "{early} → {later}");
    tokio::time::advance(Duration::from_secs(4)).await;
    let item = &list(&state, &[("status", "available")]).await[0];
    assert_eq!(
        item["extend_info"]["volume_backups"][0]["source_volume_id"],
        "v1"
    );
}

#[tokio::test(start_paused = true)]
async fn deletions_beyond_five_wait_their_turn() {
    let state = shared();
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(protect_named(&state, &format!("b{n}")).await);
        tokio::time::advance(Duration::from_secs(11)).await;
    }
    for id in &ids {
        let r = delete_checkpoint(
            AxState(Arc::clone(&state)),
            Path((P.into(), PROVIDER.into(), id.clone())),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let statuses = |state: &Shared| -> Vec<&'static str> {
        let st = lock(state);
        ids.iter()
            .map(|id| st.checkpoint_ledger_status(P, id))
            .collect()
    };
    assert_eq!(
        statuses(&state),
        [
            "deleting",
            "deleting",
            "deleting",
            "deleting",
            "deleting",
            "waiting_delete"
        ]
    );
    // Asking again while it runs is refused.
    let again = delete_checkpoint(
        AxState(Arc::clone(&state)),
        Path((P.into(), PROVIDER.into(), ids[0].clone())),
    )
    .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(
        statuses(&state),
        ["deleted", "deleted", "deleted", "deleted", "deleted", "deleting"]
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(statuses(&state).iter().all(|s| *s == "deleted"));
    assert_eq!(lock(&state).csbs.peak_deletions.get(P), Some(&6));
}
