//! `kind: server` (CSBS) against the simulator: protect → checkpoint item
//! (found even when it is listed late) → polled to `available` or `error`
//! with its progress, failure and per-volume backups recorded; retention
//! over simulated weeks; deletions within CSBS's five per project; and no
//! second backup after a lost answer or a killed agent.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::helper::sim::Scripted;
use crate::helper::{
    failing_server, fast, load, server, server_id, server_policy_yaml, text, Setup, World, PROJECT,
};
use chrono::{SubsecRound, TimeDelta, Utc};
use vbs_agent::api::ClientSettings;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

fn messages(history: &std::path::Path, job: i64) -> Vec<String> {
    let conn = rusqlite::Connection::open(history).unwrap();
    let mut stmt = conn
        .prepare("SELECT message FROM events WHERE job_id = ?1 AND message IS NOT NULL ORDER BY id")
        .unwrap();
    stmt.query_map([job], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn deleted(history: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(history).unwrap();
    let mut stmt = conn
        .prepare("SELECT backup_id FROM retention_actions WHERE action = 'deleted' ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every server backup the cloud ever made, deleted ones included.
fn server_backups_made(world: &World) -> Vec<crate::helper::sim::LedgerEntry> {
    world
        .sim
        .ledger()
        .into_iter()
        .filter(|e| e.kind == "checkpoint")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_listed_late_is_waited_for_and_its_progress_recorded() {
    let world = World::start_servers(
        vec![server(1)],
        Duration::from_millis(2500),
        Duration::from_millis(900),
    )
    .await;
    let s = Setup::of(
        &world,
        &server_policy_yaml("late", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let job = &s.run_once().await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let events = messages(&s.config.history_path(), job.id);
    assert!(
        events
            .iter()
            .any(|m| m.contains("item list was still empty")),
        "{events:#?}"
    );
    let progress: Vec<f64> = events
        .iter()
        .filter_map(|m| m.split("progress ").nth(1))
        .filter_map(|p| p.trim_end_matches('%').parse().ok())
        .collect();
    assert!(progress.len() >= 2, "progress seen growing: {events:#?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert!(progress.iter().any(|p| *p < 100.0));
    assert_eq!(
        s.store.server_columns(job.id).unwrap().progress,
        Some(100.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_checkpoint_fails_the_job_with_its_reason_and_code() {
    let srv = failing_server(1, "Snapshot of volume failed", 1234);
    let world = World::start_servers(vec![srv], Duration::from_millis(300), Duration::ZERO).await;
    let s = Setup::of(
        &world,
        &server_policy_yaml("bad", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let job = &s.run_once().await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.fail_reason.as_deref(),
        Some("Snapshot of volume failed (1234: Snapshot of volume failed)")
    );
    let columns = s.store.server_columns(job.id).unwrap();
    assert_eq!(
        columns.fail_code.as_deref(),
        Some("1234: Snapshot of volume failed")
    );
    let volumes = s.store.server_volume_backups(job.id).unwrap();
    assert_eq!(volumes.len(), 2);
    assert!(volumes.iter().all(|v| v.status.as_deref() == Some("error")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_protect_answer_is_adopted_by_name_not_repeated() {
    let world = World::start_servers(
        vec![server(1)],
        Duration::from_millis(600),
        Duration::from_millis(400),
    )
    .await;
    // The cloud acts on the protect call, then the answer is lost.
    world.sim.script(Scripted {
        method: "POST".into(),
        path_contains: "/action".into(),
        status: 502,
        content_type: "text/html".into(),
        body: "<html><title>502 Bad Gateway</title></html>".into(),
        after_handling: true,
        times: 1,
        ..Default::default()
    });
    let s = Setup::of(
        &world,
        &server_policy_yaml("lost", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let job = &s.run_once().await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let made = server_backups_made(&world);
    assert_eq!(made.len(), 1, "one server backup, not two: {made:#?}");
    let events = messages(&s.config.history_path(), job.id);
    assert!(
        events.iter().any(|m| m.contains("adopted by name")),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_server_backups_are_deleted_at_most_five_at_a_time() {
    let world = World::start_servers(vec![server(1)], Duration::ZERO, Duration::ZERO).await;
    let plain = server_policy_yaml("many", "0 0 3 1 1 *", &[server_id(1)], "");
    let s = Setup::of(&world, &plain);
    let slot = Utc::now().trunc_subsecs(0) - TimeDelta::hours(12);
    let mut items = Vec::new();
    for n in 0..9 {
        let r = s
            .engine
            .run_policy(
                &s.config.policies[0],
                slot + TimeDelta::hours(n),
                Trigger::Manual,
            )
            .await
            .unwrap();
        assert_eq!(r.jobs[0].status, JobStatus::Succeeded);
        items.push(r.jobs[0].backup_id.clone().unwrap());
    }
    // The same policy now keeps only the newest: eight go at once.
    let kept = server_policy_yaml(
        "many",
        "0 0 3 1 1 *",
        &[server_id(1)],
        "    retention: { keep_last: 1 }\n",
    );
    let config = load(&world.write_config("", "", &kept));
    let engine = Engine::new(&config, Arc::clone(&s.store), fast()).unwrap();
    let reports = engine
        .prune_policy(&config.policies[0], false)
        .await
        .unwrap();
    assert!(!reports[0].has_failures(), "{reports:#?}");
    let left: Vec<String> = world
        .sim
        .checkpoints(PROJECT)
        .into_iter()
        .map(|c| c.item_id)
        .collect();
    assert_eq!(left, [items[8].clone()]);
    let mut gone = deleted(&config.history_path());
    gone.sort();
    let mut want = items[..8].to_vec();
    want.sort();
    assert_eq!(gone, want, "every deletion recorded");
    let peak = world.sim.peak_checkpoint_deletions(PROJECT);
    let _ = writeln!(
        std::io::stderr(),
        "checkpoint deletions pending at once: at most {peak}"
    );
    assert!((1..=5).contains(&peak), "CSBS's limit of 5 kept: {peak}");
}

/// `vbs-agent ARGS`, off the async runtime so the simulator keeps serving.
async fn agent(args: &[&str]) -> (Option<i32>, String, String) {
    let out = crate::helper::agent_async(args).await;
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_work_for_server_policies() {
    let world = World::start_servers(vec![server(1)], Duration::ZERO, Duration::ZERO).await;
    let policies = server_policy_yaml(
        "cmd",
        "0 0 3 1 1 *",
        &[server_id(1)],
        "    retention: { keep_last: 1 }\n",
    );
    let path = world.write_config("", "", &policies);
    let file = path.to_str().unwrap();

    let (code, out, err) = agent(&["check", "--config", file]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("policy cmd (server, cloud sim, 1 server(s))"),
        "{out}"
    );

    let (code, out, err) = agent(&["trigger", "--config", file, "--policy", "cmd"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 of 1 job(s) succeeded"), "{out}");
    let item = world.sim.checkpoints(PROJECT)[0].clone();

    // checkpoint-item show: JSON is the cloud's object; the table has every leaf.
    let (code, out, err) = agent(&[
        "checkpoint-item",
        "show",
        &item.item_id,
        "--config",
        file,
        "--cloud",
        "sim",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(code, Some(0), "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["id"], item.item_id.as_str());
    assert_eq!(shown["checkpoint_id"], item.checkpoint_id.as_str());
    assert_eq!(
        shown["extend_info"]["volume_backups"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, out, _) = agent(&[
        "checkpoint-item",
        "show",
        &item.item_id,
        "--config",
        file,
        "--cloud",
        "sim",
    ])
    .await;
    assert_eq!(code, Some(0));
    for field in [
        "checkpoint_id",
        "extend_info.progress",
        "extend_info.volume_backups[1].source_volume_id",
        "backup_data.vcpus",
        "status",
    ] {
        assert!(out.lines().any(|l| l.starts_with(field)), "{field}: {out}");
    }
    let (code, _, err) = agent(&[
        "checkpoint-item",
        "show",
        "no-such-item",
        "--config",
        file,
        "--cloud",
        "sim",
    ])
    .await;
    assert_eq!(code, Some(1));
    assert!(err.contains("404"), "{err}");

    // A second backup; the dry run would delete the first and changes nothing.
    // (Made under the same policy without retention, so nothing prunes it yet.)
    let s = Setup::of(
        &world,
        &server_policy_yaml("cmd", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let later = Utc::now().trunc_subsecs(0) + TimeDelta::hours(1);
    let report = s
        .engine
        .run_policy(&s.config.policies[0], later, Trigger::Manual)
        .await
        .unwrap();
    let second = report.jobs[0].clone();
    assert_eq!(second.status, JobStatus::Succeeded);
    world.write_config("", "", &policies);
    let (code, out, err) = agent(&["prune", "--config", file, "--dry-run"]).await;
    assert_eq!(code, Some(0), "{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line(&item.name).contains("would delete"), "{out}");
    assert!(
        line(&second.resource_name).contains("newest available"),
        "{out}"
    );
    assert_eq!(world.sim.checkpoints(PROJECT).len(), 2);
    let (code, out, _) = agent(&["prune", "--config", file]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(world.sim.checkpoints(PROJECT).len(), 1);

    let (code, out, _) = agent(&["history", "--config", file]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains(second.backup_id.as_deref().unwrap()), "{out}");
    assert_eq!(out.matches("succeeded").count(), 2, "{out}");
}

/// 20% server errors, 5% throttling, 2% dropped connections and 1%
/// malformed answers on every CSBS call: each server still gets exactly
/// one backup per slot, and the failing server's job fails with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_jobs_reach_the_right_end_through_a_fault_storm() {
    let failing = failing_server(4, "Creating a snapshot of the disk failed", 6005);
    let world = World::start_servers(
        vec![server(1), server(2), server(3), failing],
        Duration::from_millis(500),
        Duration::from_millis(300),
    )
    .await;
    world.sim.set_faults(crate::helper::storm::faults(404));
    let servers: Vec<String> = (1..=4).map(server_id).collect();
    let s = Setup::of(
        &world,
        &server_policy_yaml(
            "storm",
            "0 0 3 1 1 *",
            &servers,
            "    completion_timeout: 2m\n",
        ),
    );
    let settings = ClientSettings {
        retry_min_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(100),
        max_retries: 6,
        ..ClientSettings::default()
    };
    let engine = Engine::new(&s.config, Arc::clone(&s.store), settings).unwrap();
    let slot = Utc::now().trunc_subsecs(0);
    for n in 0..3 {
        let report = engine
            .run_policy(
                &s.config.policies[0],
                slot + TimeDelta::hours(n),
                Trigger::Manual,
            )
            .await
            .unwrap();
        for job in &report.jobs {
            let want = if job.target == server_id(4) {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            };
            assert_eq!(job.status, want, "{job:#?}");
        }
        let failed = report
            .jobs
            .iter()
            .find(|j| j.target == server_id(4))
            .unwrap();
        assert!(
            failed
                .fail_reason
                .as_deref()
                .is_some_and(|r| r.contains("Creating a snapshot of the disk failed")),
            "{failed:#?}"
        );
    }
    let made = server_backups_made(&world);
    let twice = crate::helper::names_made_twice(made.iter().map(|c| c.name.as_str()));
    assert!(twice.is_empty(), "{twice:?}");
    assert_eq!(made.len(), 12, "one server backup per server and slot");
    let conn = rusqlite::Connection::open(s.config.history_path()).unwrap();
    let retried: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'api_call' AND class <> 'ok' AND path LIKE '/v1/%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(retried > 0, "the storm reached the CSBS calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_server_backup_is_retried_under_its_own_name() {
    let srv = failing_server(1, "backup of volume failed", 42);
    let world = World::start_servers(vec![srv], Duration::from_millis(200), Duration::ZERO).await;
    let s = Setup::of(
        &world,
        &server_policy_yaml(
            "again",
            "0 0 3 1 1 *",
            &[server_id(1)],
            "    retries: { max_attempts: 2, delay: 1s }\n",
        ),
    );
    let job = s.run_once().await;
    assert_eq!(
        (job.status, job.attempt),
        (JobStatus::Failed, 2),
        "{job:#?}"
    );
    assert!(job.resource_name.ends_with("-r2"), "{}", job.resource_name);
    let earlier = s.store.earlier_attempts(job.id).unwrap();
    assert_eq!(earlier.len(), 1);
    let names: Vec<String> = server_backups_made(&world)
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names.len(), 2, "one server backup per attempt: {names:?}");
    assert!(names.contains(&job.resource_name));
    // Both are the policy's own, for retention.
    let ours = s.store.backups_made_by("again", &server_id(1)).unwrap();
    assert!(ours.contains(earlier[0].backup_id.as_ref().unwrap()));
    assert!(ours.contains(job.backup_id.as_ref().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_item_list_is_followed_across_pages() {
    let world =
        World::start_servers(vec![server(1), server(2)], Duration::ZERO, Duration::ZERO).await;
    let s = Setup::of(
        &world,
        &server_policy_yaml("pages", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let client = vbs_agent::api::CloudClient::new(&s.config.clouds["sim"], fast()).unwrap();
    for n in 0..130 {
        let server = if n % 2 == 0 {
            server_id(1)
        } else {
            server_id(2)
        };
        client
            .protect_server(
                "fc4d5750-22e7-4798-8a46-f48f62c4c1da",
                &server,
                &format!("b{n}"),
                "",
            )
            .await
            .unwrap();
    }
    let all = client.checkpoint_items(&[]).await.unwrap();
    assert_eq!(all.len(), 130, "two pages of 100 and 30");
    let mut ids: Vec<_> = all.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 130, "no item twice");
    let first = client
        .checkpoint_items_of_server(&server_id(1))
        .await
        .unwrap();
    assert_eq!(first.len(), 65);
    assert!(first
        .iter()
        .all(|i| i.resource_id.as_deref() == Some(server_id(1).as_str())));
    let found = client
        .find_checkpoint_items("b7", &server_id(2))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name.as_deref(), Some("b7"));
    assert!(client
        .find_checkpoint_items("b7", &server_id(1))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_cloud_finds_csbs_in_the_service_catalog() {
    let world = World::start_servers(vec![server(1)], Duration::ZERO, Duration::ZERO).await;
    let state = world.path("state");
    let text = format!(
        "state_dir: {}\ndefaults:\n  completion_timeout: 30s\n  poll: {{ initial: 200ms, max: 500ms }}\n\
         clouds:\n  sim:\n    project_id: {PROJECT}\n    region: sim-1\n    auth:\n      type: password\n      \
         auth_url: {}/v3\n      user: bot\n      user_domain: Default\n      password_file: {}\n\
         policies:\n{}",
        state.display(),
        world.sim.base_url(),
        world.path("password").display(),
        server_policy_yaml("cat", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    let path = world.path("catalog.yaml");
    std::fs::write(&path, text).unwrap();
    let config = load(&path);
    assert!(config.clouds["sim"].endpoints.server_backup.is_none());
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), fast()).unwrap();
    let s = Setup {
        config,
        store,
        engine,
    };
    let job = s.run_once().await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(server_backups_made(&world).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_cloud_finds_the_compute_endpoint_for_server_selectors_in_the_catalog() {
    let tagged = crate::helper::sim::SimServer {
        tags: [("backup".to_string(), "daily".to_string())].into(),
        ..server(1)
    };
    let world = World::start_servers(vec![tagged, server(2)], Duration::ZERO, Duration::ZERO).await;
    let text = format!(
        "state_dir: {}\ndefaults:\n  completion_timeout: 30s\n  poll: {{ initial: 200ms, max: 500ms }}\n\
         clouds:\n  sim:\n    project_id: {PROJECT}\n    region: sim-1\n    auth:\n      type: password\n      \
         auth_url: {}/v3\n      user: bot\n      user_domain: Default\n      password_file: {}\n\
         policies:\n  - name: tagged\n    kind: server\n    cloud: sim\n    schedule: \"0 0 3 1 1 *\"\n    \
         select:\n      match: {{backup: daily}}\n",
        world.path("state").display(),
        world.sim.base_url(),
        world.path("password").display(),
    );
    let path = world.path("catalog.yaml");
    std::fs::write(&path, text).unwrap();
    let config = load(&path);
    assert!(config.clouds["sim"].endpoints.compute.is_none());
    let s = Setup::new(config, fast());
    let jobs = s.run_now().await;
    let targets: Vec<(&str, JobStatus)> =
        jobs.iter().map(|j| (j.target.as_str(), j.status)).collect();
    assert_eq!(targets, [(server_id(1).as_str(), JobStatus::Succeeded)]);
}

/// An agent killed right after its protect call reached CSBS, restarted
/// before CSBS lists the new checkpoint item: the restarted agent waits for
/// the listing and adopts that backup instead of making a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protect_sent_just_before_a_restart_is_adopted_once_listed() {
    let world = World::start_servers(
        vec![server(1)],
        Duration::from_millis(500),
        Duration::from_secs(3),
    )
    .await;
    let s = Setup::of(
        &world,
        &server_policy_yaml("late", "0 0 3 1 1 *", &[server_id(1)], ""),
    );
    // What the killed agent left: a job that entered protect_requested,
    // and the protect it sent, which CSBS took.
    let slot = Utc::now().trunc_subsecs(0);
    let name = vbs_agent::naming::resource_name("late", slot, &server_id(1));
    let job = vbs_agent::store::NewRunJob {
        target: &server_id(1),
        kind: "server",
        cloud: "sim",
        resource_name: &name,
        status: JobStatus::Running,
        blocked_by: None,
        note: None,
        restore: None,
        service: None,
    };
    let run = s
        .store
        .create_run("late", slot, Trigger::Schedule, &[job], None, Utc::now())
        .unwrap()
        .unwrap();
    let id = s.store.jobs_of_run(run).unwrap()[0].id;
    let entered = vbs_agent::store::JobUpdate {
        phase: Some(vbs_agent::store::Phase::ProtectRequested),
        ..Default::default()
    };
    let event = vbs_agent::store::Event {
        run_id: Some(run),
        job_id: Some(id),
        message: Some("protect_requested (running): attempt 1"),
        ..Default::default()
    };
    s.store
        .update_job_noting(id, &entered, &event, Utc::now())
        .unwrap();
    world
        .post_by_hand(
            &format!(
                "/v1/{PROJECT}/providers/fc4d5750-22e7-4798-8a46-f48f62c4c1da/resources/{}/action",
                server_id(1)
            ),
            serde_json::json!({"protect": {"backup_name": name}}),
        )
        .await;

    assert_eq!(s.engine.resume(&s.config).await.unwrap(), 1);

    let job = s.store.job(id).unwrap();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    let made: Vec<_> = server_backups_made(&world)
        .into_iter()
        .filter(|e| e.name == name)
        .collect();
    assert_eq!(made.len(), 1, "one server backup, adopted: {made:#?}");
    assert!(messages(&s.config.history_path(), id)
        .iter()
        .any(|m| m.contains("adopted by name")));
}
