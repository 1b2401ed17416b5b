use chrono::{Duration, TimeZone, Utc};

use super::test_support::temp_store;
use super::*;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 1, 30, 0).unwrap()
}

fn new_job(run_id: i64) -> NewJob<'static> {
    NewJob {
        run_id,
        policy: "db",
        kind: "backup",
        cloud: "prod",
        target: "c5834fe1-577f-462e-9bf3-1b158e1dde9c",
        slot: t0(),
        resource_name: "db-20261122T013000Z-c5834fe1",
    }
}

#[test]
fn a_slot_is_recorded_once() {
    let (_dir, store) = temp_store();
    let (a, new_a) = store
        .begin_run("db", t0(), Trigger::Schedule, t0())
        .unwrap();
    let (b, new_b) = store
        .begin_run("db", t0(), Trigger::Schedule, t0())
        .unwrap();
    assert_eq!(a, b);
    assert!(new_a && !new_b);
    let job = store.insert_job(&new_job(a), t0()).unwrap();
    assert_eq!(store.insert_job(&new_job(a), t0()).unwrap(), job);
    assert_eq!(store.jobs_of_run(a).unwrap().len(), 1);
}

#[test]
fn job_updates_keep_unchanged_columns() {
    let (_dir, store) = temp_store();
    let (run, _) = store.begin_run("db", t0(), Trigger::Manual, t0()).unwrap();
    let id = store.insert_job(&new_job(run), t0()).unwrap();
    let update = JobUpdate {
        phase: Some(Phase::SnapshotCreating),
        snapshot_id: Some("snap-1"),
        ..Default::default()
    };
    store.update_job(id, &update, t0()).unwrap();
    let done = JobUpdate {
        phase: Some(Phase::Done),
        status: Some(JobStatus::Succeeded),
        backup_id: Some("bk-1"),
        size_gb: Some(10),
        is_incremental: Some(false),
        finished_at: Some(t0() + Duration::seconds(42)),
        ..Default::default()
    };
    store.update_job(id, &done, t0()).unwrap();
    let job = store.job(id).unwrap();
    assert_eq!(job.snapshot_id.as_deref(), Some("snap-1"));
    assert_eq!(job.backup_id.as_deref(), Some("bk-1"));
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.phase, Phase::Done);
    assert_eq!(job.finished_at, Some(t0() + Duration::seconds(42)));
}

#[test]
fn events_are_append_only() {
    let (dir, store) = temp_store();
    store
        .record_event(
            EventKind::ApiCall,
            &Event {
                method: Some("GET"),
                path: Some("/v3/p/backups/x"),
                http_status: Some(200),
                class: Some("ok"),
                ..Default::default()
            },
            t0(),
        )
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let err = conn
        .execute("UPDATE events SET message = 'x'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn.execute("DELETE FROM events", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[test]
fn schedule_marks_never_move_backwards() {
    let (_dir, store) = temp_store();
    assert_eq!(store.last_slot("db").unwrap(), None);
    store.mark_slot("db", t0(), t0()).unwrap();
    store
        .mark_slot("db", t0() - Duration::hours(1), t0())
        .unwrap();
    assert_eq!(store.last_slot("db").unwrap(), Some(t0()));
    store
        .mark_slot("db", t0() + Duration::hours(1), t0())
        .unwrap();
    assert_eq!(
        store.last_slot("db").unwrap(),
        Some(t0() + Duration::hours(1))
    );
}

#[test]
fn read_only_store_reads_while_writer_is_open() {
    let (dir, store) = temp_store();
    let (run, _) = store.begin_run("db", t0(), Trigger::Manual, t0()).unwrap();
    store.insert_job(&new_job(run), t0()).unwrap();
    let reader = Store::open_read_only(&dir.path().join("history.db")).unwrap();
    assert_eq!(reader.recent_jobs(10).unwrap().len(), 1);
}
