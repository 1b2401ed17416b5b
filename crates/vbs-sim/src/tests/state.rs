//! The state on its own: durations, Cinder's refusals, incremental chains,
//! volume faults.

use std::time::Duration;

use serde_json::json;

use super::*;

#[tokio::test(start_paused = true)]
async fn resources_settle_after_their_durations() {
    let mut st = state();
    let s = snap(&mut st, VOL);
    assert_eq!(st.snapshot_views(P)[0].status, "creating");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(st.snapshot_views(P)[0].status, "available");

    let b = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    assert_eq!(
        st.snapshot_views(P)[0].status,
        "backing-up",
        "Cinder marks the source snapshot"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let view = &st.backup_views(P)[0];
    assert_eq!(
        (view.id.as_str(), view.status.as_str()),
        (b.as_str(), "available")
    );
    assert_eq!(st.snapshot_views(P)[0].status, "available");
}

#[tokio::test(start_paused = true)]
async fn cinder_refusals_are_reproduced() {
    let mut st = state();
    let err = st
        .create_snapshot(P, ATTACHED, "s".into(), None, false, json!({}))
        .unwrap_err();
    assert!(err.message.contains("current status is: in-use"), "{err:?}");
    let err = st
        .create_snapshot(
            P,
            "00000000-0000-4000-8000-000000000099",
            "s".into(),
            None,
            true,
            json!({}),
        )
        .unwrap_err();
    assert_eq!(err.status, 404);

    let s = snap(&mut st, VOL);
    let err = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap_err();
    assert!(
        err.message
            .contains("must be available, but the current status is \"creating\""),
        "{err:?}"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let err = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, true)
        .unwrap_err();
    assert_eq!(
        err.message,
        "Invalid backup: No backups available to do an incremental backup."
    );

    st.create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    let busy = st
        .create_backup(P, VOL, Some(&s), "b2".into(), None, false)
        .unwrap_err();
    assert_eq!(busy.status, 400);
    assert!(
        busy.message.contains("current status is \"backing-up\""),
        "{busy:?}"
    );
    let err = st.delete_snapshot(P, &s).unwrap_err();
    assert!(
        err.message.contains("must be available or error"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn incremental_chains_protect_their_parents() {
    let mut st = state();
    let s = snap(&mut st, VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    let full = st
        .create_backup(P, VOL, Some(&s), "full".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let inc = st
        .create_backup(P, VOL, Some(&s), "inc".into(), None, true)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(st
        .backup_views(P)
        .iter()
        .any(|b| b.id == inc && b.is_incremental));
    let err = st.delete_backup(P, &full).unwrap_err();
    assert_eq!(
        err.message,
        "Invalid backup: Incremental backups exist for this backup."
    );

    st.delete_backup(P, &inc).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    st.delete_backup(P, &full).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(st.backup_views(P).is_empty());
    let ledger = st.ledger();
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.kind == "backup" && e.status == "deleted")
            .count(),
        2
    );
    assert!(ledger
        .iter()
        .all(|e| e.kind != "backup" || e.deleted_at.is_some()));
}

#[tokio::test(start_paused = true)]
async fn volume_faults_set_the_outcome() {
    let mut st = state();
    st.set_volume_fault(
        P,
        VOL,
        Some(VolumeFault::BackupError {
            fail_reason: "swift down".into(),
        }),
    );
    let s = snap(&mut st, VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    st.create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let b = &st.backup_views(P)[0];
    assert_eq!(
        (b.status.as_str(), b.fail_reason.as_deref()),
        ("error", Some("swift down"))
    );

    st.set_volume_fault(P, VOL, Some(VolumeFault::BackupNeverFinishes));
    tokio::time::advance(Duration::from_secs(1)).await;
    st.create_backup(P, VOL, Some(&s), "c".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(st
        .backup_views(P)
        .iter()
        .any(|b| b.name == "c" && b.status == "creating"));
}

#[test]
fn the_request_log_keeps_the_newest_requests() {
    let mut st = state();
    let at = chrono::Utc::now();
    for n in 0..=REQUEST_LOG_MAX {
        st.log_request(RequestRecord {
            at,
            method: "GET".into(),
            path: format!("/{n}"),
            caller: None,
        });
    }
    assert_eq!(st.request_log.len(), REQUEST_LOG_MAX);
    assert_eq!(st.request_log.front().unwrap().path, "/1");
    assert_eq!(
        st.request_log.back().unwrap().path,
        format!("/{REQUEST_LOG_MAX}")
    );
}
