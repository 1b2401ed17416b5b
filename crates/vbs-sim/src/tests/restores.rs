//! Cinder-style restores: the status sequences on the paused clock, the
//! volume Cinder creates, its refusals, the restore fault.

use axum::extract::{Path, State as AxState};
use axum::Json;

use super::*;
use crate::restores::cinder;

async fn restore(state: &Shared, backup: &str, body: Value) -> (u16, HeaderMap, Value) {
    let path = Path((P.to_string(), backup.to_string()));
    answer(cinder(AxState(Arc::clone(state)), path, Some(Json(body))).await).await
}

fn bad_request(v: &Value) -> &str {
    v["badRequest"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn a_restore_runs_then_leaves_both_available_and_marks_the_volume() {
    let state = shared();
    let backup = available_backup(&state).await;
    let target = scratch(&state, 10).await;
    let (status, _, v) = restore(&state, &backup, json!({"restore": {"volume_id": target}})).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(
        v,
        json!({"restore": {"backup_id": backup, "volume_id": target, "volume_name": "rt"}})
    );
    let sample = fixture("cinder_backup_restore_response_apiref.json");
    let keys = |v: &Value| {
        v["restore"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&v), keys(&sample));

    assert_eq!(
        statuses(&state, &target, &backup),
        ("restoring-backup".into(), "restoring".into())
    );
    let err = lock(&state).delete_volume(P, &target).unwrap_err();
    assert_eq!(err.status, 400, "a volume being restored into stays");
    assert_eq!(
        lock(&state).delete_backup(P, &backup).unwrap_err().status,
        400
    );
    let again = restore(&state, &backup, json!({"restore": {"volume_id": target}})).await;
    assert_eq!(
        bad_request(&again.2),
        "Invalid backup: Backup status must be available"
    );
    tokio::time::advance(Duration::from_millis(1999)).await;
    assert_eq!(statuses(&state, &target, &backup).0, "restoring-backup");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(
        statuses(&state, &target, &backup),
        ("available".into(), "available".into())
    );
    let view = lock(&state).volume_views(P);
    let restored = view.iter().find(|v| v.id == target).unwrap();
    assert_eq!(restored.metadata.get("src_backup_id"), Some(&backup));

    // The volume does not depend on the backup.
    lock(&state).delete_backup(P, &backup).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        statuses(&state, &target, &backup),
        ("available".into(), "gone".into())
    );
    lock(&state).delete_volume(P, &target).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_restore_into_the_source_volume_leaves_no_mark() {
    let state = shared();
    let backup = available_backup(&state).await;
    let (status, _, v) = restore(&state, &backup, json!({"restore": {"volume_id": VOL}})).await;
    assert_eq!(status, 202, "{v}");
    assert!(v["restore"]["volume_name"].is_null(), "an unnamed volume");
    assert_eq!(statuses(&state, VOL, &backup).0, "restoring-backup");
    let err = lock(&state)
        .create_snapshot(P, VOL, "s".into(), None, true, json!({}))
        .unwrap_err();
    assert!(
        err.message
            .ends_with("current status is: restoring-backup."),
        "{err:?}"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let view = lock(&state).volume_views(P);
    let source = view.iter().find(|v| v.id == VOL).unwrap();
    assert_eq!(source.status, "available");
    assert!(source.metadata.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cinder_refuses_what_it_cannot_restore() {
    let state = shared();
    let unknown = "00000000-0000-4000-8000-00000000dead";
    let (status, _, v) = restore(&state, unknown, json!({"restore": {"volume_id": VOL}})).await;
    assert_eq!(status, 404);
    assert_eq!(
        v["itemNotFound"]["message"],
        format!("Backup {unknown} could not be found.")
    );

    let s = snap(&mut lock(&state), VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    let creating = lock(&state)
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    let (status, _, v) = restore(&state, &creating, json!({"restore": {}})).await;
    assert_eq!(
        (status, bad_request(&v)),
        (400, "Invalid backup: Backup status must be available")
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let backup = creating;

    let (status, _, v) = restore(&state, &backup, json!({"restore": {"volume_id": unknown}})).await;
    assert_eq!(status, 404);
    assert_eq!(
        v["itemNotFound"]["message"],
        format!("Volume {unknown} could not be found.")
    );
    for busy in [ATTACHED.to_string(), {
        let (_, _, v) = answer(
            crate::volumes::create(
                AxState(Arc::clone(&state)),
                Path(P.into()),
                Some(Json(json!({"volume": {"size": 10}}))),
            )
            .await,
        )
        .await;
        v["volume"]["id"].as_str().unwrap().to_string()
    }] {
        let (status, _, v) =
            restore(&state, &backup, json!({"restore": {"volume_id": busy}})).await;
        assert_eq!(
            (status, bad_request(&v)),
            (
                400,
                "Invalid volume: Volume to be restored to must be available"
            ),
            "in-use, then creating"
        );
    }
    let small = scratch(&state, 4).await;
    let (status, _, v) = restore(&state, &backup, json!({"restore": {"volume_id": small}})).await;
    assert_eq!(
        (status, bad_request(&v)),
        (
            400,
            "Invalid volume: volume size 4 is too small to restore backup of size 10."
        )
    );
    let (status, _, v) = restore(&state, &backup, json!({"volume_id": small})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        statuses(&state, &small, &backup),
        ("available".into(), "available".into())
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_volume_cinder_creates_one_within_the_quota() {
    let state = shared();
    let backup = available_backup(&state).await;
    let (status, _, v) = restore(&state, &backup, json!({"restore": {"name": "vol-01"}})).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["restore"]["volume_name"], "vol-01");
    let named = v["restore"]["volume_id"].as_str().unwrap().to_string();
    assert_eq!(statuses(&state, &named, &backup).0, "restoring-backup");
    tokio::time::advance(Duration::from_secs(2)).await;

    let sample = fixture("cinder_backup_restore_request_apiref.json");
    let mut body = sample.clone();
    body["restore"].as_object_mut().unwrap().remove("volume_id");
    body["restore"].as_object_mut().unwrap().remove("name");
    let (status, _, v) = restore(&state, &backup, body).await;
    assert_eq!(status, 202, "{v}");
    let default_name = format!("restore_backup_{backup}");
    assert_eq!(v["restore"]["volume_name"], default_name.as_str());
    let unnamed = v["restore"]["volume_id"].as_str().unwrap().to_string();
    tokio::time::advance(Duration::from_secs(2)).await;
    let views = lock(&state).volume_views(P);
    let created = views.iter().find(|v| v.id == unnamed).unwrap();
    assert_eq!(created.name.as_deref(), Some(default_name.as_str()));
    assert_eq!(
        created.description.as_deref(),
        Some("auto-created_from_restore_from_backup")
    );
    assert_eq!(
        (created.size_gb, created.status.as_str()),
        (10, "available")
    );
    assert_eq!(created.metadata.get("src_backup_id"), Some(&backup));
    let ledger = lock(&state).ledger();
    assert_eq!(ledger.iter().filter(|e| e.kind == "volume").count(), 2);

    lock(&state).projects.get_mut(P).unwrap().volume_quota = Some(4);
    let (status, headers, v) = restore(&state, &backup, json!({"restore": {}})).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(headers["retry-after"], "0");
    assert_eq!(v["overLimit"]["retryAfter"], "0");
    assert_eq!(statuses(&state, &unnamed, &backup).1, "available");
}

#[tokio::test(start_paused = true)]
async fn a_failing_restore_leaves_the_volume_in_error_restoring_and_the_backup_available() {
    let state = shared();
    let backup = available_backup(&state).await;
    let fault = VolumeFault::RestoreError {
        fail_reason: "backend down".into(),
    };
    lock(&state).set_volume_fault(P, VOL, Some(fault.clone()));
    let target = scratch(&state, 20).await;
    let (status, _, _) = restore(&state, &backup, json!({"restore": {"volume_id": target}})).await;
    assert_eq!(status, 202);
    assert_eq!(
        statuses(&state, &target, &backup),
        ("restoring-backup".into(), "restoring".into())
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        statuses(&state, &target, &backup),
        ("error_restoring".into(), "available".into())
    );
    let view = lock(&state).volume_views(P);
    assert!(!view
        .iter()
        .any(|v| v.metadata.contains_key("src_backup_id")));
    let again = restore(&state, &backup, json!({"restore": {"volume_id": target}})).await;
    assert_eq!(again.0, 400, "error_restoring is not available");
    lock(&state).delete_volume(P, &target).unwrap();

    // The fault on the target alone fails it too.
    lock(&state).set_volume_fault(P, VOL, None);
    let other = scratch(&state, 10).await;
    lock(&state).set_volume_fault(P, &other, Some(fault));
    restore(&state, &backup, json!({"restore": {"volume_id": other}})).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(statuses(&state, &other, &backup).0, "error_restoring");
}

#[tokio::test]
async fn restores_are_served_over_http() {
    let sim = started(Faults::default()).await;
    let backup = backup_via_http(&sim, "rt").await;
    let other = backup_via_http(&sim, "rt-2").await;
    let (status, v) = post(
        &sim,
        &format!("/v3/{P}/backups/{backup}/restore"),
        json!({"restore": {"volume_id": VOL}}),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let restoring = sim.volumes(P).into_iter().find(|v| v.id == VOL).unwrap();
    assert_eq!(restoring.status, "restoring-backup");
    let (status, v) = post(
        &sim,
        &format!("/v2/{P}/backups/{backup}/restore"),
        json!({"restore": {}}),
    )
    .await;
    assert_eq!(status, 400, "{v}");

    // The vendor's dialect, and its job.
    let (status, v) = post(
        &sim,
        &format!("/v2/{P}/cloudbackups/{backup}/restore"),
        json!({"restore": {"volume_id": VOL}}),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("VolumeBackup.0089")),
        "the backup is restoring"
    );
    let (_, created) = post(
        &sim,
        &format!("/v3/{P}/volumes"),
        json!({"volume": {"size": 10}}),
    )
    .await;
    let target = created["volume"]["id"].as_str().unwrap().to_string();
    let mut job = Value::Null;
    for _ in 0..100 {
        let (status, v) = post(
            &sim,
            &format!("/v2/{P}/cloudbackups/{other}/restore"),
            json!({"restore": {"volume_id": target}}),
        )
        .await;
        if status == 200 {
            job = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = job["job_id"]
        .as_str()
        .expect("a job once the volume is available");
    let (status, text) = get(&sim, &format!("/v1/{P}/jobs/{id}"), Some("tok"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let j: Value = serde_json::from_str(&text).unwrap();
    assert!(j["status"] == "INIT" || j["status"] == "RUNNING", "{j}");
    let (status, _) = get(&sim, &format!("/v1/{P}/jobs/{id}"), None)
        .await
        .unwrap();
    assert_eq!(status, 401, "jobs need a token too");
}
