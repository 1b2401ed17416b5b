use chrono::{Duration, TimeZone, Utc};

use super::test_support::{pg_store, temp_store};
use super::*;
use crate::kind::PolicyKind;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 1, 30, 0).unwrap()
}

const VOL: &str = "c5834fe1-577f-462e-9bf3-1b158e1dde9c";

fn job(status: JobStatus) -> NewRunJob<'static> {
    NewRunJob {
        target: VOL,
        kind: "backup",
        cloud: "prod",
        resource_name: "db-20261122T013000Z-c5834fe1",
        status,
        blocked_by: None,
        note: None,
        restore: None,
        service: None,
    }
}

fn run_with_one_job(store: &Store) -> (i64, i64) {
    let run = store
        .create_run(
            "db",
            t0(),
            Trigger::Schedule,
            &[job(JobStatus::Running)],
            None,
            t0(),
        )
        .unwrap()
        .unwrap();
    let id = store.jobs_of_run(run).unwrap()[0].id;
    (run, id)
}

/// Runs `test` on a fresh SQLite history, then on a fresh PostgreSQL one
/// when `VBS_PG_URL` names a server: the store behaves the same on both.
fn on_each_backend(test: impl Fn(&Store)) {
    let (_dir, store) = temp_store();
    test(&store);
    if let Some((_db, store)) = pg_store() {
        test(&store);
    }
}

/// One running job in `store` (its run and id), with `update` applied.
fn one_job_updated(store: &Store, update: &JobUpdate) -> (i64, i64) {
    let (run, id) = run_with_one_job(store);
    store.update_job(id, update, t0()).unwrap();
    (run, id)
}

#[test]
fn a_slot_is_recorded_once_with_all_its_jobs() {
    on_each_backend(|store| {
        let (run, _) = run_with_one_job(store);
        let again = store
            .create_run(
                "db",
                t0(),
                Trigger::Schedule,
                &[job(JobStatus::Running)],
                None,
                t0(),
            )
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(store.run_for("db", t0()).unwrap(), Some(run));
        assert_eq!(store.jobs_of_run(run).unwrap().len(), 1);
        assert_eq!(store.run_status(run).unwrap().as_deref(), Some("running"));
    });
}

#[test]
fn job_updates_keep_unchanged_columns_and_settle_the_run() {
    on_each_backend(|store| {
        let (run, id) = one_job_updated(
            store,
            &JobUpdate {
                phase: Some(Phase::SnapshotCreating),
                snapshot_id: Some("snap-1"),
                ..Default::default()
            },
        );
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
        assert_eq!(
            (job.status, job.phase, job.attempt),
            (JobStatus::Succeeded, Phase::Done, 1)
        );
        assert_eq!(job.finished_at, Some(t0() + Duration::seconds(42)));
        assert!(store.unfinished_jobs().unwrap().is_empty());
        store.settle_run(run, t0()).unwrap();
        assert_eq!(store.run_status(run).unwrap().as_deref(), Some("succeeded"));
    });
}

#[test]
fn a_retried_job_keeps_its_earlier_attempt() {
    on_each_backend(|store| {
        let (_, id) = one_job_updated(
            store,
            &JobUpdate {
                status: Some(JobStatus::Failed),
                backup_id: Some("bk-1"),
                fail_reason: Some("swift down"),
                ..Default::default()
            },
        );
        store
            .begin_next_attempt(
                id,
                "db-20261122T013000Z-c5834fe1-r2",
                t0() + Duration::minutes(5),
            )
            .unwrap();
        let job = store.job(id).unwrap();
        assert_eq!(
            (job.attempt, job.status, job.phase),
            (2, JobStatus::Running, Phase::Pending)
        );
        assert_eq!((job.backup_id, job.fail_reason), (None, None));
        assert_eq!(job.resource_name, "db-20261122T013000Z-c5834fe1-r2");
        assert_eq!(job.attempt_started_at, t0() + Duration::minutes(5));
        let earlier = store.earlier_attempts(id).unwrap();
        assert_eq!(
            earlier,
            [AttemptRecord {
                attempt: 1,
                backup_id: Some("bk-1".into()),
                status: JobStatus::Failed,
                fail_reason: Some("swift down".into()),
            }]
        );
    });
}

#[test]
fn overlap_and_missed_records_are_final_at_once() {
    on_each_backend(|store| {
        let (_, running) = run_with_one_job(store);
        assert_eq!(
            store.running_job_for("prod", VOL, false).unwrap(),
            Some(running)
        );
        assert_eq!(store.running_job_for("other", VOL, false).unwrap(), None);
        // A backup running on the volume does not hold up a restore of it.
        assert_eq!(store.running_job_for("prod", VOL, true).unwrap(), None);
        let skipped = NewRunJob {
            blocked_by: Some(running),
            ..job(JobStatus::SkippedOverlap)
        };
        let run = store
            .create_run(
                "db",
                t0() + Duration::hours(1),
                Trigger::Schedule,
                &[skipped],
                None,
                t0(),
            )
            .unwrap()
            .unwrap();
        let rec = &store.jobs_of_run(run).unwrap()[0];
        assert_eq!(
            (rec.status, rec.phase, rec.blocked_by),
            (JobStatus::SkippedOverlap, Phase::Done, Some(running))
        );
        assert_eq!(store.run_status(run).unwrap().as_deref(), Some("skipped"));
        let run = store
            .create_run(
                "db",
                t0() + Duration::hours(2),
                Trigger::Schedule,
                &[job(JobStatus::Missed)],
                None,
                t0(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(store.run_status(run).unwrap().as_deref(), Some("missed"));
        assert_eq!(
            store.unfinished_jobs().unwrap().len(),
            1,
            "only the running one"
        );
    });
}

#[test]
fn events_are_append_only() {
    let (dir, store) = temp_store();
    let event = Event {
        method: Some("GET"),
        path: Some("/v3/p/backups/x"),
        http_status: Some(200),
        class: Some("ok"),
        ..Default::default()
    };
    store
        .record_event(EventKind::ApiCall, &event, t0())
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
fn schedule_marks_never_move_backwards_unless_the_schedule_changed() {
    on_each_backend(|store| {
        assert_eq!(store.last_mark("db").unwrap(), None);
        store
            .mark_slot("db", "0 30 1 * * * UTC", t0(), t0())
            .unwrap();
        store
            .mark_slot("db", "0 30 1 * * * UTC", t0() - Duration::hours(1), t0())
            .unwrap();
        assert_eq!(
            store.last_mark("db").unwrap(),
            Some((t0(), "0 30 1 * * * UTC".into()))
        );
        store
            .mark_slot("db", "0 0 * * * * UTC", t0() - Duration::hours(1), t0())
            .unwrap();
        assert_eq!(
            store.last_mark("db").unwrap(),
            Some((t0() - Duration::hours(1), "0 0 * * * * UTC".into()))
        );
    });
}

#[test]
fn read_only_store_reads_while_writer_is_open() {
    let (dir, store) = temp_store();
    run_with_one_job(&store);
    let reader = Store::open_read_only(&dir.path().join("history.db")).unwrap();
    assert_eq!(reader.recent_jobs(10).unwrap().len(), 1);
}

#[test]
fn the_migration_list_is_the_files_in_order_numbered_without_a_gap() {
    // The SQLite migrations are the files of migrations/; its folders
    // (postgres/) hold other dialects.
    let mut files: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    let listed: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, files, "store::MIGRATIONS and migrations/ differ");
    for (i, name) in listed.iter().enumerate() {
        let number = format!("{:04}_", i + 1);
        assert!(
            name.starts_with(&number),
            "{name} should start with {number}"
        );
    }
}

#[test]
fn a_history_left_at_any_earlier_migration_opens_at_the_latest() {
    for applied in 1..MIGRATIONS.len() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        migrations(applied).to_latest(&mut conn).unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        run_with_one_job(&store);
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(
            version,
            i64::try_from(MIGRATIONS.len()).unwrap(),
            "from {applied}"
        );
    }
}

#[test]
fn polling_learns_from_the_volumes_successful_backups_of_the_same_kind() {
    on_each_backend(|store| {
        let secs = std::time::Duration::from_secs;
        for (i, (status, incremental, took)) in [
            (JobStatus::Succeeded, false, 3600),
            (JobStatus::Succeeded, true, 300),
            (JobStatus::Failed, true, 9000),
            (JobStatus::Succeeded, true, 320),
        ]
        .into_iter()
        .enumerate()
        {
            let slot = t0() + Duration::days(i as i64);
            let run = store
                .create_run(
                    "db",
                    slot,
                    Trigger::Schedule,
                    &[job(JobStatus::Running)],
                    None,
                    slot,
                )
                .unwrap()
                .unwrap();
            let id = store.jobs_of_run(run).unwrap()[0].id;
            let update = JobUpdate {
                status: Some(status),
                is_incremental: Some(incremental),
                backup_took: Some(secs(took)),
                ..Default::default()
            };
            store.update_job(id, &update, slot).unwrap();
        }
        let of = |inc| store.backup_durations("prod", VOL, inc).unwrap();
        // Newest first; the failed attempt teaches nothing.
        assert_eq!(of(Some(true)), [secs(320), secs(300)]);
        assert_eq!(of(Some(false)), [secs(3600)]);
        assert_eq!(of(None), [secs(320), secs(300), secs(3600)]);
        assert!(store
            .backup_durations("other", VOL, None)
            .unwrap()
            .is_empty());
    });
}

#[test]
fn an_update_applied_in_memory_matches_the_row_read_back() {
    on_each_backend(|store| {
        let (_, id) = run_with_one_job(store);
        let mut job = store.job(id).unwrap();
        let done = t0() + Duration::milliseconds(61_234) + Duration::nanoseconds(567_891);
        for update in [
            JobUpdate {
                phase: Some(Phase::BackupCreating),
                snapshot_id: Some("s-1"),
                backup_id: Some("b-1"),
                ..Default::default()
            },
            JobUpdate {
                status: Some(JobStatus::Failed),
                size_gb: Some(10),
                is_incremental: Some(true),
                fail_reason: Some("quota"),
                retry_at: Some(done),
                ..Default::default()
            },
            JobUpdate {
                phase: Some(Phase::Done),
                finished_at: Some(done),
                ..Default::default()
            },
        ] {
            store.update_job(id, &update, t0()).unwrap();
            update.apply_to(&mut job);
            assert_eq!(job, store.job(id).unwrap());
        }
    });
}

#[test]
fn a_server_job_left_running_by_an_older_agent_continues_in_its_own_phase() {
    // A history as an agent before server phases of their own left it: every
    // migration up to the one that gave server jobs their phases.
    let before = MIGRATIONS
        .iter()
        .position(|(name, _)| *name == "0011_job_kind_phases.sql")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    migrations(before).to_latest(&mut conn).unwrap();
    let at = format_ts(t0());
    conn.execute(
        "INSERT INTO runs (id, policy, slot, trigger, status, started_at)
         VALUES (1, 'srv', ?1, 'schedule', 'running', ?1)",
        [&at],
    )
    .unwrap();
    for (id, kind) in [(1, "server"), (2, "backup")] {
        conn.execute(
            "INSERT INTO jobs (id, run_id, policy, kind, cloud, target, slot, resource_name,
                               status, phase, started_at, attempt_started_at, updated_at)
             VALUES (?1, 1, 'srv', ?2, 'prod', ?1, ?3, 'n', 'running', 'backup_creating',
                     ?3, ?3, ?3)",
            rusqlite::params![id, kind, at],
        )
        .unwrap();
    }
    drop(conn);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.job(1).unwrap().phase, Phase::CheckpointCreating);
    assert_eq!(store.job(2).unwrap().phase, Phase::BackupCreating);
    assert_eq!(store.job(1).unwrap().kind, PolicyKind::Server);
}

#[test]
fn a_target_that_left_and_came_back_is_no_longer_vanished_and_runs_record_their_scope() {
    on_each_backend(|store| {
        let scope = |ids: &[&str]| RunScope {
            resolution: Resolution::Resolved,
            resolved_at: t0(),
            targets: ids
                .iter()
                .map(|id| ScopedTarget {
                    id: id.to_string(),
                    name: None,
                    reason: "metadata backup=nightly".into(),
                })
                .collect(),
        };
        let night = |n: i64, status: JobStatus, targets: &[&str]| {
            let slot = t0() + Duration::days(n);
            store
                .create_run(
                    "db",
                    slot,
                    Trigger::Schedule,
                    &[job(status)],
                    Some(&scope(targets)),
                    slot,
                )
                .unwrap()
                .unwrap()
        };
        night(0, JobStatus::Missed, &[VOL]);
        assert!(store.vanished_targets("db").unwrap().is_empty());
        let left = night(1, JobStatus::LeftScope, &[]);
        let vanished = store.vanished_targets("db").unwrap();
        assert_eq!(vanished.len(), 1);
        assert!(!vanished[0].gone);
        // A run with nothing but a target that left is empty, not failed.
        assert_eq!(store.run_status(left).unwrap().as_deref(), Some("empty"));
        assert_eq!(store.current_scope("db").unwrap(), Some(Vec::new()));
        // Labelled again: in scope, and no longer vanished.
        night(2, JobStatus::Missed, &[VOL]);
        assert!(store.vanished_targets("db").unwrap().is_empty());
        let (at, last) = store.last_resolved_scope("db").unwrap().unwrap();
        assert_eq!((at, last.len()), (t0(), 1));
    });
}

#[test]
fn events_held_back_are_committed_in_order_with_the_next_write_or_a_flush() {
    let (dir, store) = temp_store();
    store.defer_events(true).unwrap();
    let call = |path: &'static str| Event {
        method: Some("GET"),
        path: Some(path),
        ..Default::default()
    };
    let outside = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let paths = || -> Vec<String> {
        let mut stmt = outside
            .prepare("SELECT path FROM events ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    store
        .record_event(EventKind::ApiCall, &call("/a"), t0())
        .unwrap();
    store
        .record_event(EventKind::ApiCall, &call("/b"), t0())
        .unwrap();
    assert!(paths().is_empty(), "held back until the next write");
    run_with_one_job(&store);
    assert_eq!(paths(), ["/a", "/b"]);
    store
        .record_event(EventKind::ApiCall, &call("/c"), t0())
        .unwrap();
    store.flush().unwrap();
    assert_eq!(paths(), ["/a", "/b", "/c"]);
    store
        .record_event(EventKind::ApiCall, &call("/d"), t0())
        .unwrap();
    drop(store);
    assert_eq!(
        paths(),
        ["/a", "/b", "/c", "/d"],
        "written when the store closes"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transition_is_held_back_read_back_made_durable_on_demand_and_can_be_discarded() {
    let (dir, store) = temp_store();
    store.defer_events(true).unwrap();
    let (run, id) = run_with_one_job(&store);
    let outside = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let phase_outside = || -> String {
        outside
            .query_row("SELECT phase FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    };
    let note = |message: &'static str| Event {
        run_id: Some(run),
        job_id: Some(id),
        message: Some(message),
        ..Default::default()
    };
    let to = |phase| JobUpdate {
        phase: Some(phase),
        ..Default::default()
    };
    let before = phase_outside();
    let waiting = store
        .update_job_noting(id, &to(Phase::SnapshotCreating), &note("waiting"), t0())
        .unwrap();
    assert_eq!(phase_outside(), before, "held back");
    assert_eq!(
        store.job(id).unwrap().phase,
        Phase::SnapshotCreating,
        "the agent reads its own writes"
    );
    let intent = store
        .update_job_noting(id, &to(Phase::BackupRequested), &note("intent"), t0())
        .unwrap();
    assert!(waiting < intent, "tickets come in order");
    let started = tokio::time::Instant::now();
    store.durable(intent).await.unwrap();
    assert_eq!(
        started.elapsed(),
        crate::store::GROUP_WINDOW,
        "waited for others to join"
    );
    assert_eq!(phase_outside(), "backup_requested");
    let messages: Vec<String> = store
        .job_events(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        messages.ends_with(&["waiting".to_string(), "intent".to_string()]),
        "{messages:?}"
    );
    let started = tokio::time::Instant::now();
    store.durable(waiting).await.unwrap();
    assert_eq!(
        started.elapsed(),
        std::time::Duration::ZERO,
        "committed already"
    );
    let lost = store
        .update_job_noting(id, &to(Phase::Done), &note("lost"), t0())
        .unwrap();
    assert_eq!(store.discard_deferred(), 2, "the update and its event");
    assert!(matches!(
        store.durable(lost).await,
        Err(StoreError::Discarded)
    ));
    drop(store);
    assert_eq!(
        phase_outside(),
        "backup_requested",
        "nothing discarded is written"
    );
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_fails_leaves_its_writes_held_and_their_tickets_not_durable() {
    let (_dir, store) = temp_store();
    store.defer_events(true).unwrap();
    let (run, id) = run_with_one_job(&store);
    let update = JobUpdate {
        phase: Some(Phase::SnapshotRequested),
        ..Default::default()
    };
    let event = Event {
        run_id: Some(run),
        job_id: Some(id),
        message: Some("intent"),
        ..Default::default()
    };
    let ticket = store.update_job_noting(id, &update, &event, t0()).unwrap();
    let refuse = |on: bool| {
        let sql = if on {
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON events
             BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        } else {
            "DROP TRIGGER temp.refuse"
        };
        store.sqlite().unwrap().execute_batch(sql).unwrap();
    };
    refuse(true);
    let err = store.durable(ticket).await.unwrap_err();
    assert!(err.to_string().contains("disk says no"), "{err}");
    refuse(false);
    store.durable(ticket).await.unwrap();
    assert_eq!(store.job(id).unwrap().phase, Phase::SnapshotRequested);
}
