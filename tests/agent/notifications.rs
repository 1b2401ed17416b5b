//! `notify:` end to end: a webhook receiver on 127.0.0.1 and command
//! notifiers get the outcomes of real runs against the simulator; a
//! notifier that answers 500 or hangs never holds up the jobs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{SubsecRound, Utc};
use serde_json::Value;

use crate::helper::failing_volume;
use crate::helper::{agent_async, text};
use crate::helper::{volume, volume_id, wait_for, Daemon, World};
use vbs_agent::api::ClientSettings;
use vbs_agent::engine::Engine;
use vbs_agent::notifier::Notifier;
use vbs_agent::store::{JobStatus, Store, Trigger};

const REASON: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";
/// Part of the webhook path, as receivers use it: must never be logged or stored.
const HOOK_TOKEN: &str = "t0k3n-5ecret";

/// A webhook receiver: records every JSON body, answers with `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
}

#[derive(Clone)]
struct Hook {
    got: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
}

async fn record(State(hook): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    hook.got.lock().unwrap().push(body);
    StatusCode::from_u16(hook.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let hook = Hook {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
        };
        let app = Router::new()
            .route("/hook/{token}", post(record))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hook/{HOOK_TOKEN}",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            got: hook.got,
            status: hook.status,
        }
    }

    fn payloads(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }
}

/// The payload about `target`.
fn about<'a>(payloads: &'a [Value], target: &str) -> &'a Value {
    payloads
        .iter()
        .find(|p| p["target"] == target)
        .unwrap_or_else(|| panic!("no notification about {target}: {payloads:?}"))
}

/// `(method, class, http_status, message)` of every notification event.
fn deliveries(history: &Path) -> Vec<(String, String, Option<u16>, String)> {
    let db = rusqlite::Connection::open(history).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT method, class, http_status, message FROM events
             WHERE kind = 'notification' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A `command:` list in YAML: `sh -c SCRIPT FILE` (the script sees FILE as `$0`).
fn sh(script: &str, file: &Path) -> String {
    format!(
        "      command:\n        - sh\n        - -c\n        - '{script}'\n        - {}\n",
        file.display()
    )
}

fn world_volumes() -> Vec<crate::helper::sim::SimVolume> {
    vec![volume(1, None), failing_volume(2, REASON)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_notifies_the_webhook_and_the_command_of_each_outcome() {
    let world = World::start(world_volumes()).await;
    let hook = Receiver::start(204).await;
    let out_file = world.path("command-out");
    let notify = format!(
        "    notify:\n      webhook: {}\n{}      on: [failure, success]\n",
        hook.url,
        sh(
            r#"cat > "$0.$VBS_TARGET"; echo "$VBS_EVENT $VBS_STATUS" > "$0.$VBS_TARGET.env""#,
            &out_file
        ),
    );
    let config = world.config("0 0 3 1 1 *", &[volume_id(1), volume_id(2)], &notify, false);
    let path = world.path("policy.yaml").display().to_string();

    let out = agent_async(&["trigger", "--config", &path, "--policy", "e2e"]).await;
    assert_eq!(out.status.code(), Some(1), "one volume fails");

    let payloads = hook.payloads();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    let failed = about(&payloads, &volume_id(2));
    assert_eq!(
        (&failed["event"], &failed["status"], &failed["reason"]),
        (&"failure".into(), &"failed".into(), &REASON.into())
    );
    assert_eq!(failed["policy"], "e2e");
    assert!(failed["job_id"].is_i64() && failed["slot"].is_string() && failed["time"].is_string());
    let ok = about(&payloads, &volume_id(1));
    assert_eq!(
        (&ok["event"], &ok["status"]),
        (&"success".into(), &"succeeded".into())
    );
    let backup_id = ok["backup_id"].as_str().expect("a backup id");
    assert!(world
        .sim
        .backups(crate::helper::PROJECT)
        .iter()
        .any(|b| b.id == backup_id && b.status == "available"));

    // The two jobs end concurrently: each command writes its own files.
    let read = |suffix: String| {
        let mut name = out_file.clone().into_os_string();
        name.push(suffix);
        std::fs::read_to_string(name).unwrap()
    };
    let (v1, v2) = (volume_id(1), volume_id(2));
    let stdin: Value = serde_json::from_str(&read(format!(".{v2}"))).unwrap();
    assert_eq!(&stdin, failed, "the same payload on the command's stdin");
    assert_eq!(read(format!(".{v2}.env")), "failure failed\n");
    assert_eq!(read(format!(".{v1}.env")), "success succeeded\n");

    let recorded = deliveries(&config.history_path());
    assert_eq!(
        recorded.len(),
        4,
        "two outcomes, two notifiers: {recorded:?}"
    );
    assert!(
        recorded.iter().all(|(_, class, _, _)| class == "ok"),
        "{recorded:?}"
    );
    let stored = format!("{recorded:?}");
    let stderr = text(&out.stderr);
    assert!(
        !stored.contains(HOOK_TOKEN) && !stderr.contains(HOOK_TOKEN),
        "the webhook's token stays out of the history and the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_prints_plain_progress_lines_when_not_on_a_terminal() {
    let world = World::start(world_volumes()).await;
    world.config("0 0 3 1 1 *", &[volume_id(1), volume_id(2)], "", false);
    let path = world.path("policy.yaml").display().to_string();
    let out = agent_async(&["trigger", "--config", &path, "--policy", "e2e"]).await;
    let stdout = text(&out.stdout);
    let (v1, v2) = (volume_id(1), volume_id(2));
    let line_of = |needles: &[&str]| {
        stdout
            .lines()
            .position(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no line with {needles:?}:\n{stdout}"))
    };
    // Phase changes, the cloud's statuses as they change (the first look at
    // least), and the ends, in order.
    let requested = line_of(&[&format!("{v1} snapshot_requested (running)")]);
    let creating = line_of(&[&format!("{v1} backup_creating (running)")]);
    let available = line_of(&[&format!("{v1} backup "), ": available"]);
    let done = line_of(&[&format!("{v1} finished: succeeded (")]);
    assert!(
        requested < creating && creating < available && available < done,
        "{stdout}"
    );
    line_of(&[&format!("{v2} finished: failed: {REASON}")]);
    let first = stdout.lines().next().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(first.split(' ').next().unwrap()).is_ok(),
        "each line starts with its time: {first}"
    );
    assert!(!stdout.contains('\u{1b}'), "no terminal control codes");
    assert!(stdout.contains("1 of 2 job(s) succeeded"), "{stdout}");
}

/// Engine and notifier over the world's policy file, as `trigger` sets them up.
fn engine(
    world: &World,
    notify: &str,
) -> (Engine, Arc<Notifier>, PathBuf, vbs_agent::config::Policy) {
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], notify, false);
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let notifier = Arc::new(Notifier::new(&config, Some(store.clone())));
    let engine = Engine::new(&config, store, ClientSettings::default())
        .unwrap()
        .with_listener(notifier.clone());
    (
        engine,
        notifier,
        config.history_path(),
        config.policies[0].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_failing_notifier_does_not_hold_up_the_job() {
    let world = World::start(vec![volume(1, None)]).await;
    let hook = Receiver::start(500).await;
    let release = world.path("release");
    // Reads the payload, then waits until the test lets it go.
    let notify = format!(
        "    notify:\n      webhook: {}\n{}      on: [success]\n      timeout: 10m\n",
        hook.url,
        sh(
            r#"cat > "$0.in"; while [ ! -e "$0" ]; do sleep 0.05; done"#,
            &release
        ),
    );
    let (engine, notifier, history, policy) = engine(&world, &notify);

    let slot = Utc::now().trunc_subsecs(0);
    let report = engine
        .run_policy(&policy, slot, Trigger::Manual)
        .await
        .unwrap();
    assert_eq!(report.jobs[0].status, JobStatus::Succeeded);

    // The run is over and recorded while the command notifier still hangs.
    let input = world.path("release.in");
    wait_for("the command has its payload", || {
        std::fs::read_to_string(&input)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some()
    })
    .await;
    wait_for("the webhook was called", || !hook.payloads().is_empty()).await;
    assert!(!release.exists());
    let store = Store::open(&history).unwrap();
    assert_eq!(
        store.job(report.jobs[0].id).unwrap().status,
        JobStatus::Succeeded
    );
    assert!(
        deliveries(&history).iter().all(|(m, ..)| m != "command"),
        "the command has not finished"
    );

    std::fs::write(&release, "").unwrap();
    notifier.flush().await;
    let recorded = deliveries(&history);
    let webhook = recorded.iter().find(|(m, ..)| m == "POST").unwrap();
    assert_eq!((webhook.1.as_str(), webhook.2), ("failed", Some(500)));
    assert!(webhook.3.contains("refused with HTTP 500"), "{}", webhook.3);
    let command = recorded.iter().find(|(m, ..)| m == "command").unwrap();
    assert_eq!(command.1, "ok");
    assert_eq!(hook.status.load(Ordering::SeqCst), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpo_breach_is_notified_and_a_hung_command_is_given_up() {
    let world = World::start(vec![volume(1, None)]).await;
    let hook = Receiver::start(200).await;
    let started = world.path("started");
    let notify = format!(
        "    notify:\n      webhook: {}\n{}      on: [rpo_breach]\n      timeout: 1s\n",
        hook.url,
        sh(r#"touch "$0"; while true; do sleep 0.05; done"#, &started),
    );
    let (_engine, notifier, history, policy) = engine(&world, &notify);
    let (age, rpo) = (Duration::from_secs(2 * 86_400), Duration::from_secs(86_400));

    notifier.rpo_breach(&policy, &volume_id(1), age, rpo);
    notifier.flush().await;

    let payloads = hook.payloads();
    let breach = about(&payloads, &volume_id(1));
    assert_eq!(
        (&breach["event"], &breach["policy"]),
        (&"rpo_breach".into(), &"e2e".into())
    );
    assert_eq!(
        (
            breach["age_seconds"].as_u64(),
            breach["rpo_seconds"].as_u64()
        ),
        (Some(172_800), Some(86_400))
    );
    assert!(started.exists(), "the command ran");
    let recorded = deliveries(&history);
    let command = recorded.iter().find(|(m, ..)| m == "command").unwrap();
    assert_eq!(command.1, "timed_out", "{recorded:?}");
    assert!(command.3.contains("no answer within 1s"), "{}", command.3);
}

/// The longest `notify.timeout` the policy file allows still ends a
/// delivery to a webhook that takes the request and never answers, so
/// `trigger` (which waits for deliveries in flight) exits. On tokio's
/// paused clock the ten minutes take no time.
#[tokio::test(start_paused = true)]
async fn a_webhook_that_never_answers_is_given_up_at_the_longest_allowed_timeout() {
    let world = World::start(vec![volume(1, None)]).await;
    let longest = vbs_agent::config::MAX_NOTIFY_TIMEOUT;
    let notify = format!(
        "    notify:\n      webhook: http://{}/hook\n      on: [rpo_breach]\n      timeout: {}\n",
        crate::helper::silent_server(),
        humantime::format_duration(longest),
    );
    let (_engine, notifier, history, policy) = engine(&world, &notify);

    let started = tokio::time::Instant::now();
    notifier.rpo_breach(
        &policy,
        &volume_id(1),
        Duration::from_secs(90_000),
        Duration::from_secs(86_400),
    );
    notifier.flush().await;
    let waited = started.elapsed();
    assert!(
        waited >= longest && waited < longest + Duration::from_secs(1),
        "flush waited {waited:?}"
    );
    let recorded = deliveries(&history);
    let webhook = recorded.iter().find(|(m, ..)| m == "POST").unwrap();
    assert_eq!(webhook.1, "timed_out", "{recorded:?}");
    assert!(webhook.3.contains("no answer within 10m"), "{}", webhook.3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_notifies_every_failed_job_once_and_no_success() {
    let world = World::start(world_volumes()).await;
    let hook = Receiver::start(200).await;
    let notify = format!("    notify:\n      webhook: {}\n", hook.url);
    let config = world.config(
        "*/2 * * * * *",
        &[volume_id(1), volume_id(2)],
        &notify,
        false,
    );
    let history = config.history_path();
    let daemon = Daemon::start(config);
    wait_for("two failures notified", || hook.payloads().len() >= 2).await;
    daemon.stop().await;

    let jobs = Store::open_read_only(&history)
        .unwrap()
        .recent_jobs(1000)
        .unwrap();
    let mut failed: Vec<i64> = jobs
        .iter()
        .filter(|j| j.status == JobStatus::Failed)
        .map(|j| j.id)
        .collect();
    let payloads = hook.payloads();
    let mut notified: Vec<i64> = payloads
        .iter()
        .map(|p| p["job_id"].as_i64().unwrap())
        .collect();
    failed.sort_unstable();
    notified.sort_unstable();
    assert_eq!(
        notified, failed,
        "each failed job once, succeeded ones not (on: default)"
    );
    assert!(payloads
        .iter()
        .all(|p| p["target"] == volume_id(2).as_str() && p["reason"] == REASON));
    assert!(jobs.iter().any(|j| j.status == JobStatus::Succeeded));
    assert_eq!(deliveries(&history).len(), failed.len());
}

#[tokio::test]
async fn the_daemon_records_coverage_at_start_and_notifies_each_unprotected_volume_once() {
    let opted_out = crate::helper::sim::SimVolume {
        metadata: [("backup".to_string(), "none".to_string())].into(),
        ..volume(3, None)
    };
    let world = World::start(vec![volume(1, None), volume(2, None), opted_out]).await;
    let hook = Receiver::start(200).await;
    let notify = format!(
        "    notify:\n      webhook: {}\n      on: [failure, unprotected]\n",
        hook.url
    );
    // A policy that will not fire during the test: coverage is taken at start.
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], &notify, false);
    let history = config.history_path();
    let daemon = Daemon::start(config.clone());
    wait_for("the unprotected volume notified", || {
        !hook.payloads().is_empty()
    })
    .await;
    daemon.stop().await;

    // Restarted with the snapshot long past: a new one is taken at start,
    // and the volume already told about is not told again.
    let db = rusqlite::Connection::open(&history).unwrap();
    db.execute(
        "UPDATE coverage_snapshots SET taken_at = '2026-01-01T00:00:00.000Z'",
        [],
    )
    .unwrap();
    let snapshots = || -> i64 {
        db.query_row("SELECT count(*) FROM coverage_snapshots", [], |r| r.get(0))
            .unwrap()
    };
    let daemon = Daemon::start(config);
    wait_for("a second snapshot", || snapshots() == 2).await;
    daemon.stop().await;
    drop(db);

    let payloads = hook.payloads();
    assert_eq!(payloads.len(), 1, "{payloads:#?}");
    let p = about(&payloads, &volume_id(2));
    assert_eq!(
        (&p["event"], &p["cloud"], &p["policy"]),
        (
            &Value::from("unprotected"),
            &Value::from("sim"),
            &Value::from("")
        )
    );
    let db = rusqlite::Connection::open(&history).unwrap();
    let gaps: Vec<(String, String, Option<String>)> = db
        .prepare("SELECT target, status, reason FROM coverage_gaps\n              WHERE snapshot_id = (SELECT max(id) FROM coverage_snapshots) ORDER BY target")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        gaps,
        [
            (volume_id(2), "unprotected".to_string(), None),
            (
                volume_id(3),
                "opted_out".to_string(),
                Some("opted out by backup=none".to_string())
            ),
        ]
    );
    let counts: (i64, i64, i64, i64) = db
        .query_row(
            "SELECT volumes, protected, unprotected, opted_out FROM coverage_snapshots ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(counts, (3, 1, 1, 1));
}
