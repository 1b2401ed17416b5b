//! The vendor's restore (`cloudbackups`) and its job: the job's statuses
//! and times on the paused clock, the `VolumeBackup` error codes.

use axum::extract::{Path, State as AxState};
use axum::Json;

use super::*;
use crate::jobs::show;
use crate::restores::vendor;

async fn restore(state: &Shared, backup: &str, body: Option<Value>) -> (u16, Value) {
    let path = Path((P.to_string(), backup.to_string()));
    let (status, _, v) =
        answer(vendor(AxState(Arc::clone(state)), path, body.map(Json)).await).await;
    (status, v)
}

async fn job(state: &Shared, project: &str, id: &str) -> (u16, Value) {
    let path = Path((project.to_string(), id.to_string()));
    let (status, _, v) = answer(show(AxState(Arc::clone(state)), path).await).await;
    (status, v)
}

/// `2016-01-28T16:14:09.466Z`.
fn is_job_time(s: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3fZ").is_ok()
        && s.len() == "2016-01-28T16:14:09.466Z".len()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn the_vendors_restore_answers_a_job_that_runs_and_succeeds() {
    let state = shared();
    let backup = available_backup(&state).await;
    let offset = chrono::TimeDelta::days(-400);
    lock(&state).clock_offset = offset;
    let before = chrono::Utc::now() + offset - chrono::TimeDelta::seconds(1);
    let mut request = fixture("vbs_restore_request_cloudbackups_otc.json");
    request["restore"]["volume_id"] = json!(VOL);
    let (status, v) = restore(&state, &backup, Some(request)).await;
    assert_eq!(status, 200, "{v}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&v),
        keys(&fixture("vbs_restore_job_response_otc.json"))
    );
    let id = v["job_id"].as_str().unwrap().to_string();

    let (status, j) = job(&state, P, &id).await;
    assert_eq!(status, 200);
    assert_eq!(j["status"], "INIT");
    assert_eq!(j["job_type"], "bksRestoreBackup");
    assert_eq!(j["job_id"], id.as_str());
    assert_eq!(
        j["entities"],
        json!({"backup_id": backup, "volume_id": VOL})
    );
    assert_eq!((&j["end_time"], &j["sub_jobs"]), (&json!(""), &json!([])));
    assert!(j["error_code"].is_null() && j["fail_reason"].is_null());
    let begin = j["begin_time"].as_str().unwrap().to_string();
    assert!(is_job_time(&begin), "{begin}");
    let began: chrono::DateTime<chrono::Utc> = begin.parse().unwrap();
    assert!(
        began > before && began < before + chrono::TimeDelta::seconds(5),
        "the cloud's clock"
    );
    assert_eq!(
        statuses(&state, VOL, &backup),
        ("restoring-backup".into(), "restoring".into())
    );

    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(job(&state, P, &id).await.1["status"], "RUNNING");
    tokio::time::advance(Duration::from_millis(1800)).await;
    let (_, j) = job(&state, P, &id).await;
    assert_eq!(j["status"], "SUCCESS");
    let end = j["end_time"].as_str().unwrap();
    assert!(is_job_time(end), "{end}");
    let ended: chrono::DateTime<chrono::Utc> = end.parse().unwrap();
    assert_eq!(ended - began, chrono::TimeDelta::seconds(2));
    assert!(j["error_code"].is_null() && j["fail_reason"].is_null());
    // Every field of the vendor's job sample is there.
    for key in fixture("vbs_job_show_success_otc.json")
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        statuses(&state, VOL, &backup),
        ("available".into(), "available".into())
    );

    let (status, v) = job(&state, P, "4010b39b5281d3590152874bfa3b1604").await;
    assert_eq!((status, code(&v)), (404, "common.0011"));
    let (status, _) = job(&state, "another-project", &id).await;
    assert_eq!(status, 404, "a job belongs to its project");
}

#[tokio::test(start_paused = true)]
async fn a_failing_restore_job_ends_in_fail_with_its_reason() {
    let state = shared();
    let backup = available_backup(&state).await;
    lock(&state).set_volume_fault(
        P,
        VOL,
        Some(VolumeFault::RestoreError {
            fail_reason: "disk read error".into(),
        }),
    );
    let (status, v) = restore(
        &state,
        &backup,
        Some(json!({"restore": {"volume_id": VOL}})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["job_id"].as_str().unwrap().to_string();
    tokio::time::advance(Duration::from_secs(2)).await;
    let (_, j) = job(&state, P, &id).await;
    assert_eq!(
        (&j["status"], &j["error_code"], &j["fail_reason"]),
        (
            &json!("FAIL"),
            &json!("VolumeBackup.0200"),
            &json!("disk read error")
        )
    );
    assert!(is_job_time(j["end_time"].as_str().unwrap()));
    assert_eq!(
        statuses(&state, VOL, &backup),
        ("error_restoring".into(), "available".into())
    );
}

#[tokio::test(start_paused = true)]
async fn the_vendors_refusals_carry_its_string_codes() {
    let state = shared();
    let unknown = "00000000-0000-4000-8000-00000000dead";
    let body = |volume: &str| Some(json!({"restore": {"volume_id": volume}}));

    let (status, v) = restore(&state, unknown, None).await;
    assert_eq!((status, code(&v)), (400, "VolumeBackup.0210"));
    for bad in [
        json!({"restore": {}}),
        json!({"restore": {"volume_id": 7}}),
        json!({"restore": {"volume_id": "disk-1"}}),
    ] {
        let (status, v) = restore(&state, unknown, Some(bad)).await;
        assert_eq!((status, code(&v)), (400, "VolumeBackup.0208"), "{v}");
        assert!(v["error"]["message"].is_string());
    }
    let (status, v) = restore(&state, unknown, body(VOL)).await;
    assert_eq!((status, code(&v)), (404, "VolumeBackup.0111"));

    let s = snap(&mut lock(&state), VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    let backup = lock(&state)
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    let (status, v) = restore(&state, &backup, body(VOL)).await;
    assert_eq!(
        (status, code(&v)),
        (400, "VolumeBackup.0089"),
        "backup creating"
    );
    tokio::time::advance(Duration::from_secs(10)).await;

    let (status, v) = restore(&state, &backup, body(unknown)).await;
    assert_eq!((status, code(&v)), (404, "VolumeBackup.0207"));
    let (status, v) = restore(&state, &backup, body(ATTACHED)).await;
    assert_eq!((status, code(&v)), (400, "VolumeBackup.0205"), "in-use");
    let small = scratch(&state, 5).await;
    let (status, v) = restore(&state, &backup, body(&small)).await;
    assert_eq!((status, code(&v)), (400, "VolumeBackup.0209"));
    assert!(lock(&state).restores.is_empty(), "nothing started");
}
