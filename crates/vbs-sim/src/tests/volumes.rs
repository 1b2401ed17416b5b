//! Volumes created and deleted through the API: statuses on the paused
//! clock, fields, filters, quota, Cinder's refusals, deletion faults.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State as AxState};
use axum::Json;

use super::*;
use crate::volumes::{create, delete, list, show};

const VOLUME_DELETE_REFUSED: &str = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.";

async fn create_volume(state: &Shared, volume: Value) -> (u16, HeaderMap, Value) {
    let body = Some(Json(json!({ "volume": volume })));
    answer(create(AxState(Arc::clone(state)), Path(P.into()), body).await).await
}

/// A volume created and `available`; its id.
async fn scratch(state: &Shared, name: &str, size: u32) -> String {
    let (status, _, v) = create_volume(
        state,
        json!({"size": size, "availability_zone": "sim-1a", "name": name}),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    tokio::time::advance(Duration::from_secs(1)).await;
    v["volume"]["id"].as_str().unwrap().to_string()
}

async fn show_volume(state: &Shared, id: &str) -> (u16, Value) {
    let (status, _, v) =
        answer(show(AxState(Arc::clone(state)), Path((P.into(), id.into()))).await).await;
    (status, v)
}

/// What `GET …/volumes/{id}` shows as its status, or `gone` for a 404.
async fn status_of(state: &Shared, id: &str) -> String {
    match show_volume(state, id).await {
        (200, v) => v["volume"]["status"].as_str().unwrap().to_string(),
        (status, _) => format!("gone ({status})"),
    }
}

async fn delete_volume(state: &Shared, id: &str) -> (u16, Value) {
    let (status, _, v) =
        answer(delete(AxState(Arc::clone(state)), Path((P.into(), id.into()))).await).await;
    (status, v)
}

async fn listed<const FULL: bool>(state: &Shared, q: &[(&str, &str)]) -> Vec<Value> {
    let q: HashMap<String, String> = q
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (_, _, v) =
        answer(list::<FULL>(AxState(Arc::clone(state)), Path(P.into()), Query(q)).await).await;
    v["volumes"].as_array().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn a_created_volume_is_creating_then_available_with_what_it_was_given() {
    let state = shared();
    let (status, _, v) = create_volume(
        &state,
        json!({"size": 12, "availability_zone": "sim-1a", "name": "vbs-agent-rt-1",
               "description": "drill", "volume_type": "SSD", "metadata": {"vbs-agent": "scratch"}}),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let created = &v["volume"];
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "creating");
    for (key, want) in [
        ("name", json!("vbs-agent-rt-1")),
        ("description", json!("drill")),
        ("size", json!(12)),
        ("availability_zone", json!("sim-1a")),
        ("volume_type", json!("SSD")),
        ("metadata", json!({"vbs-agent": "scratch"})),
        ("bootable", json!("false")),
    ] {
        assert_eq!(created[key], want, "{key}");
    }
    // Every field of upstream's create response is there.
    let sample = fixture("cinder_volume_create_response_apiref.json");
    for key in sample["volume"].as_object().unwrap().keys() {
        assert!(created.get(key).is_some(), "missing {key}");
    }
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(status_of(&state, &id).await, "creating");
    tokio::time::advance(Duration::from_millis(1)).await;
    let (status, shown) = show_volume(&state, &id).await;
    assert_eq!(
        (status, &shown["volume"]["status"]),
        (200, &json!("available"))
    );
    assert_eq!(shown["volume"]["name"], "vbs-agent-rt-1");

    let views = lock(&state).volume_views(P);
    let view = views.iter().find(|v| v.id == id).unwrap();
    assert_eq!(
        (view.name.as_deref(), view.size_gb, view.status.as_str()),
        (Some("vbs-agent-rt-1"), 12, "available")
    );
    assert_eq!(
        view.metadata,
        BTreeMap::from([("vbs-agent".to_string(), "scratch".to_string())])
    );
    assert_eq!(view.availability_zone, "sim-1a");
    let ledger = lock(&state).ledger();
    let entry = ledger.iter().find(|e| e.id == id).unwrap();
    assert_eq!(
        (
            entry.kind.as_str(),
            entry.name.as_str(),
            entry.status.as_str()
        ),
        ("volume", "vbs-agent-rt-1", "available")
    );
}

#[tokio::test(start_paused = true)]
async fn upstreams_sample_request_is_accepted_with_its_nulls() {
    let state = shared();
    let sample = fixture("cinder_volume_create_request_apiref.json");
    let (status, _, v) = answer(
        create(
            AxState(Arc::clone(&state)),
            Path(P.into()),
            Some(Json(sample)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        v["volume"]["availability_zone"], "sim-1a",
        "the default zone"
    );
    assert!(v["volume"]["name"].is_null());
    assert_eq!(v["volume"]["size"], 10);
}

#[tokio::test(start_paused = true)]
async fn lists_filter_volumes_by_exact_name_and_metadata() {
    let state = shared();
    let (_, _, v) = create_volume(
        &state,
        json!({"size": 1, "availability_zone": "sim-1a", "name": "rt-a", "metadata": {"k": "v"}}),
    )
    .await;
    let a = v["volume"]["id"].as_str().unwrap().to_string();
    scratch(&state, "rt-ab", 1).await;

    let found = listed::<false>(&state, &[("name", "rt-a")]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "links", "name"]
    );
    assert_eq!(
        (&found[0]["id"], &found[0]["name"]),
        (&json!(a), &json!("rt-a"))
    );
    assert!(listed::<true>(&state, &[("name", "rt")]).await.is_empty());
    let all = listed::<true>(&state, &[]).await;
    assert_eq!(all.len(), 4);
    let configured = all.iter().find(|v| v["id"] == VOL).unwrap();
    assert!(configured["name"].is_null());

    let by_metadata = listed::<true>(&state, &[("metadata", r#"{"k": "v"}"#)]).await;
    assert_eq!(by_metadata.len(), 1);
    assert_eq!(by_metadata[0]["id"], a.as_str());
    assert_eq!(
        listed::<true>(&state, &[("metadata", "{'k': 'v'}")])
            .await
            .len(),
        1
    );
    assert!(listed::<true>(&state, &[("metadata", r#"{"k": "w"}"#)])
        .await
        .is_empty());
    assert!(
        listed::<true>(&state, &[("metadata", "true")])
            .await
            .is_empty(),
        "not a dict: nothing, as Cinder"
    );
}

#[tokio::test(start_paused = true)]
async fn cinder_refuses_bad_creates_and_a_full_quota() {
    let state = shared();
    let refused = |v: &Value| {
        v["badRequest"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (status, _, v) =
        create_volume(&state, json!({"size": 1, "availability_zone": "eu-de-01"})).await;
    assert_eq!(
        (status, refused(&v)),
        (400, "Availability zone 'eu-de-01' is invalid.".into())
    );
    for size in [json!(0), json!(-1), json!("x"), Value::Null, json!(1.5)] {
        let (status, _, v) = create_volume(&state, json!({"size": size})).await;
        assert_eq!(status, 400, "size {size}: {v}");
        assert!(refused(&v).contains("size"), "{v}");
    }
    let (status, _, _) = create_volume(&state, json!({"size": "2"})).await;
    assert_eq!(status, 202, "a size in a string, as Cinder's schema allows");
    let (status, _, v) = create_volume(&state, json!({"size": 1, "metadata": {"k": 1}})).await;
    assert_eq!(status, 400, "{v}");
    let (status, _, v) = create_volume(&state, json!({"size": 1, "volume_type": "gold"})).await;
    assert_eq!(status, 404, "{v}");
    let (status, _, _) =
        answer(create(AxState(Arc::clone(&state)), Path(P.into()), None).await).await;
    assert_eq!(status, 400);

    lock(&state).projects.get_mut(P).unwrap().volume_quota = Some(4);
    let (status, _, _) = create_volume(&state, json!({"size": 1})).await;
    assert_eq!(status, 202, "the fourth volume fits");
    let (status, headers, v) = create_volume(&state, json!({"size": 1})).await;
    assert_eq!(status, 413);
    assert_eq!(headers["retry-after"], "0");
    assert_eq!(
        v,
        json!({"overLimit": {"code": 413, "message": "VolumeLimitExceeded: Maximum number of volumes allowed (4) exceeded for quota 'volumes'.", "retryAfter": "0"}})
    );
    assert_eq!(lock(&state).volume_views(P).len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_deleted_volume_is_deleting_then_gone_and_kept_in_the_ledger() {
    let state = shared();
    let (_, _, v) = create_volume(&state, json!({"size": 1, "name": "rt"})).await;
    let id = v["volume"]["id"].as_str().unwrap().to_string();
    let (status, v) = delete_volume(&state, &id).await;
    assert_eq!(
        (status, v["badRequest"]["message"].as_str()),
        (400, Some(VOLUME_DELETE_REFUSED)),
        "creating"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let (status, v) = delete_volume(&state, &id).await;
    assert_eq!((status, v), (202, Value::Null), "no body");
    assert_eq!(status_of(&state, &id).await, "deleting");
    let (status, _) = delete_volume(&state, &id).await;
    assert_eq!(status, 400, "already deleting");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(status_of(&state, &id).await, "gone (404)");
    assert_eq!(delete_volume(&state, &id).await.0, 404);
    let ledger = lock(&state).ledger();
    let entry = ledger.iter().find(|e| e.id == id).unwrap();
    assert_eq!(entry.status, "deleted");
    assert!(entry.deleted_at.is_some());
    assert!(lock(&state).volume_views(P).iter().all(|v| v.id != id));
}

#[tokio::test(start_paused = true)]
async fn attached_busy_or_snapshotted_volumes_cannot_be_deleted() {
    let state = shared();
    let (status, v) = delete_volume(&state, ATTACHED).await;
    assert_eq!(
        (status, v["badRequest"]["message"].as_str()),
        (400, Some(VOLUME_DELETE_REFUSED))
    );
    let s = snap(&mut lock(&state), VOL);
    assert_eq!(delete_volume(&state, VOL).await.0, 400, "has a snapshot");
    tokio::time::advance(Duration::from_secs(2)).await;
    lock(&state)
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    lock(&state).delete_snapshot(P, &s).unwrap_err();
    tokio::time::advance(Duration::from_secs(10)).await;
    lock(&state).delete_snapshot(P, &s).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        delete_volume(&state, VOL).await.0,
        202,
        "a backup does not hold it"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(lock(&state).backup_views(P).len(), 1, "its backup stays");
    let err = lock(&state)
        .create_snapshot(P, VOL, "s".into(), None, true, json!({}))
        .unwrap_err();
    assert_eq!(err.status, 404);
}

#[tokio::test(start_paused = true)]
async fn deletions_fail_on_demand_refused_or_in_error_deleting() {
    let state = shared();
    let id = scratch(&state, "rt", 1).await;
    lock(&state).volume_deletion_faults = VolumeDeletionFaults {
        refused: 2,
        error_deleting: 1,
    };
    for _ in 0..2 {
        let (status, v) = delete_volume(&state, &id).await;
        assert_eq!(status, 500);
        assert_eq!(v["computeFault"]["code"], 500);
        assert_eq!(status_of(&state, &id).await, "available");
    }
    assert_eq!(delete_volume(&state, &id).await.0, 202);
    assert_eq!(status_of(&state, &id).await, "deleting");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(status_of(&state, &id).await, "error_deleting");
    let view = lock(&state).volume_views(P);
    assert!(view
        .iter()
        .any(|v| v.id == id && v.status == "error_deleting"));
    let ledger = lock(&state).ledger();
    assert_eq!(
        ledger.iter().find(|e| e.id == id).unwrap().status,
        "error_deleting"
    );

    // Cinder refuses to delete a volume in error_deleting again.
    assert_eq!(delete_volume(&state, &id).await.0, 400);
    assert_eq!(status_of(&state, &id).await, "error_deleting");
    assert_eq!(
        lock(&state).volume_deletion_faults,
        VolumeDeletionFaults::default()
    );
}

#[tokio::test]
async fn volumes_are_created_and_deleted_over_http_under_both_versions() {
    let sim = started(Faults::default()).await;
    let client = reqwest::Client::new();
    for v in ["v2", "v3"] {
        let (status, body) = post(
            &sim,
            &format!("/{v}/{P}/volumes"),
            json!({"volume": {"size": 1, "availability_zone": "sim-1a", "name": format!("rt-{v}")}}),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let id = body["volume"]["id"].as_str().unwrap();
        let url = format!("{}/{v}/{P}/volumes/{id}", sim.base_url());
        let mut deleted = None;
        for _ in 0..100 {
            let resp = client
                .delete(&url)
                .header("X-Auth-Token", "tok")
                .send()
                .await
                .unwrap();
            if resp.status().as_u16() == 202 {
                deleted = Some(resp.text().await.unwrap());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            deleted.as_deref(),
            Some(""),
            "202 with no body once available"
        );
    }
    let resp = client
        .put(format!("{}/sim/volume-deletion-faults", sim.base_url()))
        .json(&json!({"refused": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let resp = client
        .delete(format!("{}/v3/{P}/volumes/{VOL}", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    let left: Vec<_> = sim
        .volumes(P)
        .into_iter()
        .filter(|v| v.name.is_some() && v.status != "deleting")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
