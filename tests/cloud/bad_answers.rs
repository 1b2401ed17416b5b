//! Answers the cloud should never give, but sometimes does: each becomes a
//! recorded event and a retry or a clear failure, never a panic, a silent
//! skip or a job stuck forever.

use std::time::Duration;

use crate::helper::sim::{Scripted, VolumeFault};
use crate::helper::Setup;
use crate::helper::{
    policy_yaml, server, server_id, server_policy_yaml, volume, volume_id, World, PROJECT,
};
use vbs_agent::store::{EventRecord, JobRecord, JobStatus};

fn script(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &str,
    after: bool,
) -> Scripted {
    Scripted {
        method: method.into(),
        path_contains: path.into(),
        status,
        content_type: content_type.into(),
        body: body.into(),
        after_handling: after,
        times: 1,
        ..Default::default()
    }
}

/// Runs the one-volume policy once and returns its job and the job's events.
async fn run_once(world: &World, extra: &str) -> (JobRecord, Vec<EventRecord>) {
    run_first(
        world,
        &policy_yaml("bad", "0 0 3 1 1 *", &[volume_id(1)], extra),
    )
    .await
}

/// Runs the first of `policies` once; returns its first job and its events.
async fn run_first(world: &World, policies: &str) -> (JobRecord, Vec<EventRecord>) {
    let s = Setup::of(world, policies);
    let job = s.run_once().await;
    let events = s.store.job_events(job.id).unwrap();
    (job, events)
}

fn has_event(events: &[EventRecord], class: &str, text: &str) -> bool {
    events.iter().any(|e| {
        e.class.as_deref() == Some(class) && e.message.as_deref().is_some_and(|m| m.contains(text))
    })
}

fn backups_named(world: &World, name: &str) -> usize {
    world
        .sim
        .ledger()
        .iter()
        .filter(|e| e.kind == "backup" && e.name == name)
        .count()
}

#[tokio::test]
async fn malformed_json_while_polling_is_retried() {
    let world = World::start(vec![volume(1, None)]).await;
    world.sim.script(script(
        "GET",
        "/backups/",
        200,
        "application/json",
        "{\"backup\": {\"id\": ",
        false,
    ));
    let (job, events) = run_once(&world, "").await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert!(
        has_event(&events, "bad_answer", "malformed JSON"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn an_html_error_page_on_create_is_adopted_by_name_not_repeated() {
    let world = World::start(vec![volume(1, None)]).await;
    let page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    world.sim.script(script(
        "POST",
        &format!("/v3/{PROJECT}/backups"),
        200,
        "text/html",
        page,
        true,
    ));
    let (job, events) = run_once(&world, "").await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert!(
        has_event(&events, "bad_answer", "HTML page: 502 Bad Gateway"),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("adopted by name"))),
        "{events:#?}"
    );
    assert_eq!(
        backups_named(&world, &job.resource_name),
        1,
        "the backup was created exactly once"
    );
}

#[tokio::test]
async fn an_empty_body_is_retried() {
    let world = World::start(vec![volume(1, None)]).await;
    world.sim.script(script(
        "GET",
        "/snapshots/",
        200,
        "application/json",
        "",
        false,
    ));
    let (job, events) = run_once(&world, "").await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert!(
        has_event(&events, "bad_answer", "empty body"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_create_answer_without_an_id_is_resolved_by_name() {
    let world = World::start(vec![volume(1, None)]).await;
    let body = r#"{"backup": {"links": [], "name": "whatever"}}"#;
    world.sim.script(script(
        "POST",
        &format!("/v3/{PROJECT}/backups"),
        202,
        "application/json",
        body,
        true,
    ));
    let (job, events) = run_once(&world, "").await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert!(
        has_event(&events, "bad_answer", "missing field `id`"),
        "{events:#?}"
    );
    assert_eq!(backups_named(&world, &job.resource_name), 1);
}

#[tokio::test]
async fn an_unknown_status_is_reported_and_bounded_by_the_timeout() {
    let world = World::start(vec![volume(1, None)]).await;
    let body = format!(
        r#"{{"backup": {{"id": "{{id}}", "status": "frobnicating", "volume_id": "{}"}}}}"#,
        volume_id(1)
    );
    let mut answer = script("GET", "/backups/", 200, "application/json", &body, false);
    answer.times = 10_000;
    world.sim.script(answer);
    let (job, events) = run_once(&world, "    completion_timeout: 3s\n").await;
    assert_eq!(job.status, JobStatus::TimedOut, "{job:#?}");
    let warnings: Vec<_> = events.iter().filter(|e| e.kind == "warning").collect();
    assert!(
        warnings.iter().any(|e| e
            .message
            .as_deref()
            .unwrap_or("")
            .contains("unknown status `frobnicating`")),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_job_with_the_clouds_words() {
    let world = World::start(vec![volume(1, None)]).await;
    let body = r#"{"badRequest": {"code": "VolumeBackup.0080", "message": "The number of backups exceeds the quota."}}"#;
    world.sim.script(script(
        "POST",
        &format!("/v3/{PROJECT}/backups"),
        400,
        "application/json",
        body,
        false,
    ));
    let (job, _) = run_once(&world, "").await;
    assert_eq!(job.status, JobStatus::Failed);
    let reason = job.fail_reason.unwrap();
    assert!(reason.starts_with("quota exhausted"), "{reason}");
    assert!(reason.contains("VolumeBackup.0080"), "{reason}");
    assert!(
        world.sim.snapshots(PROJECT).is_empty(),
        "the snapshot was cleaned up"
    );
}

/// A detail answer about `stolen`, for every look at any `what` (`backup`, …).
fn stolen(what: &str, path: &str, extra: &str) -> Scripted {
    let body = format!(r#"{{"{what}": {{"id": "stolen", "status": "available"{extra}}}}}"#);
    let mut answer = script("GET", path, 200, "application/json", &body, false);
    answer.times = 10_000;
    answer
}

#[tokio::test]
async fn an_answer_about_another_backup_never_makes_the_job_succeed() {
    let world = World::start(vec![volume(1, Some(VolumeFault::BackupNeverFinishes))]).await;
    let volume = format!(r#", "volume_id": "{}""#, volume_id(1));
    world.sim.script(stolen("backup", "/backups/", &volume));
    let (job, events) = run_once(&world, "    completion_timeout: 3s\n").await;
    assert_eq!(job.status, JobStatus::TimedOut, "{job:#?}");
    let backup = world.sim.backups(PROJECT).pop().expect("the real backup");
    assert_eq!(job.backup_id.as_deref(), Some(backup.id.as_str()));
    assert_eq!(backup.status, "creating");
    let said = format!(
        "the answer is about backup `stolen`, not `{}` as asked",
        backup.id
    );
    assert!(has_event(&events, "bad_answer", &said), "{events:#?}");
}

#[tokio::test]
async fn an_answer_about_another_snapshot_is_a_bad_answer() {
    let world = World::start(vec![volume(1, None)]).await;
    let mut answer = stolen("snapshot", "/snapshots/", "");
    answer.times = 1;
    world.sim.script(answer);
    let (job, events) = run_once(&world, "").await;
    assert!(
        has_event(
            &events,
            "bad_answer",
            "the answer is about snapshot `stolen`"
        ),
        "{events:#?}"
    );
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_ne!(job.snapshot_id.as_deref(), Some("stolen"));
}

#[tokio::test]
async fn an_answer_about_another_server_backup_never_makes_the_job_succeed() {
    let world =
        World::start_servers(vec![server(1)], Duration::from_secs(3600), Duration::ZERO).await;
    world
        .sim
        .script(stolen("checkpoint_item", "/checkpoint_items/", ""));
    let policies = server_policy_yaml(
        "bad",
        "0 0 3 1 1 *",
        &[server_id(1)],
        "    completion_timeout: 3s\n",
    );
    let (job, events) = run_first(&world, &policies).await;
    assert_eq!(job.status, JobStatus::TimedOut, "{job:#?}");
    assert_ne!(job.backup_id.as_deref(), Some("stolen"));
    assert!(
        has_event(
            &events,
            "bad_answer",
            "the answer is about checkpoint item `stolen`"
        ),
        "{events:#?}"
    );
}
