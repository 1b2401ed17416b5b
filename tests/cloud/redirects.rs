//! Redirects are never followed: a 3xx from a cloud API, from Keystone or
//! from a webhook is a recorded error, and the address it points to (a
//! recording server on another loopback port) never sees a token, a
//! password, a request body or the webhook's secret.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use chrono::{SubsecRound, Utc};

use crate::helper::sim::Scripted;
use crate::helper::{volume, volume_id, World, PASSWORD, PROJECT, TOKEN};
use vbs_agent::api::ClientSettings;
use vbs_agent::engine::Engine;
use vbs_agent::notifier::Notifier;
use vbs_agent::store::{EventRecord, JobRecord, JobStatus, Store, Trigger};

/// Part of the webhook's query, as receivers use it.
const HOOK_SECRET: &str = "hook-secret-91c4";

/// Serves `app` on a free loopback port; returns `http://127.0.0.1:PORT`.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Every request that reached the recording server, as text: request
/// line, headers and body.
type Seen = Arc<Mutex<Vec<String>>>;

async fn record(State(seen): State<Seen>, req: Request) -> &'static str {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    seen.lock().unwrap().push(format!(
        "{} {}\n{:?}\n{}",
        parts.method,
        parts.uri,
        parts.headers,
        String::from_utf8_lossy(&body)
    ));
    "{}"
}

/// The server redirects point to; answers 200 `{}` to anything.
async fn recorder() -> (String, Seen) {
    let seen = Seen::default();
    let base = serve(Router::new().fallback(record).with_state(seen.clone())).await;
    (base, seen)
}

/// A cloud answer redirecting `method` requests to paths containing `path`.
fn redirect(method: &str, path: &str, status: u16, location: &str) -> Scripted {
    Scripted {
        method: method.into(),
        path_contains: path.into(),
        status,
        content_type: "text/html".into(),
        body: "<html><title>Moved</title></html>".into(),
        times: 1,
        headers: vec![("Location".into(), location.into())],
        ..Default::default()
    }
}

/// Runs the one-volume policy once; returns its job and the job's events.
async fn run_once(world: &World, password_auth: bool) -> (JobRecord, Vec<EventRecord>) {
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], "", password_auth);
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, Arc::clone(&store), ClientSettings::default()).unwrap();
    let slot = Utc::now().trunc_subsecs(0);
    let report = engine
        .run_policy(&config.policies[0], slot, Trigger::Manual)
        .await
        .unwrap();
    let job = report.jobs[0].clone();
    let events = store.job_events(job.id).unwrap();
    (job, events)
}

/// The job failed because of the redirect, and the attempt is an event.
fn assert_refused_redirect(
    job: &JobRecord,
    events: &[EventRecord],
    status: u16,
    to: &str,
    fix: &str,
) {
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let reason = job.fail_reason.as_deref().unwrap_or_default();
    let said = format!("answered {status} with a redirect to {to}");
    assert!(reason.contains(&said), "{reason}");
    assert!(reason.contains("does not follow redirects"), "{reason}");
    assert!(reason.contains(&format!("fix {fix}")), "{reason}");
    assert!(
        events.iter().any(|e| e.http_status == Some(status)
            && e.class.as_deref() == Some("permanent")
            && e.message.as_deref().is_some_and(|m| m.contains(&said))),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_on_a_backup_poll_is_an_error_and_the_token_stays_home() {
    let world = World::start(vec![volume(1, None)]).await;
    let (elsewhere, seen) = recorder().await;
    let location = format!("{elsewhere}/v3/{PROJECT}/backups/stolen?keep=1");
    world
        .sim
        .script(redirect("GET", "/backups/", 302, &location));
    let (job, events) = run_once(&world, false).await;
    let to = format!("{elsewhere}/v3/{PROJECT}/backups/stolen;");
    assert_refused_redirect(&job, &events, 302, &to, "the endpoint URL");
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
    assert!(!format!("{events:?}").contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_307_on_a_create_sends_neither_the_body_nor_the_token_elsewhere() {
    let world = World::start(vec![volume(1, None)]).await;
    let (elsewhere, seen) = recorder().await;
    let backups = format!("/v3/{PROJECT}/backups");
    world.sim.script(redirect(
        "POST",
        &backups,
        307,
        &format!("{elsewhere}{backups}"),
    ));
    let (job, events) = run_once(&world, false).await;
    assert_refused_redirect(
        &job,
        &events,
        307,
        &format!("{elsewhere}{backups};"),
        "the endpoint URL",
    );
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
    let made = world.sim.ledger();
    assert!(made.iter().all(|e| e.kind != "backup"), "{made:?}");
    assert!(world.sim.snapshots(PROJECT).is_empty(), "cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_307_from_keystone_never_sends_the_password_anywhere() {
    let world = World::start(vec![volume(1, None)]).await;
    let (elsewhere, seen) = recorder().await;
    let mut answer = redirect(
        "POST",
        "/v3/auth/tokens",
        307,
        &format!("{elsewhere}/v3/auth/tokens"),
    );
    answer.times = 10;
    world.sim.script(answer);
    let (job, events) = run_once(&world, true).await;
    let to = format!("{elsewhere}/v3/auth/tokens;");
    assert_refused_redirect(&job, &events, 307, &to, "auth_url");
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
    let asked = events
        .iter()
        .filter(|e| e.path.as_deref() == Some("/v3/auth/tokens"))
        .count();
    assert_eq!(
        asked, 1,
        "the password went out once, to Keystone: {events:#?}"
    );
    assert!(!format!("{events:?}").contains(PASSWORD));
}

/// A webhook that redirects every request to `location`.
async fn redirecting_hook(location: String) -> String {
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response()
        }
    });
    serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_webhook_is_a_failed_delivery_and_its_secret_stays_home() {
    let world = World::start(vec![volume(1, None)]).await;
    let (elsewhere, seen) = recorder().await;
    let hook = redirecting_hook(format!("{elsewhere}/collect?from=hook")).await;
    let notify = format!(
        "    notify:\n      webhook: {hook}/hook?token={HOOK_SECRET}\n      on: [success]\n"
    );
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], &notify, false);
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let notifier = Arc::new(Notifier::new(&config, Some(Arc::clone(&store))));
    let engine = Engine::new(&config, Arc::clone(&store), ClientSettings::default())
        .unwrap()
        .with_listener(notifier.clone());
    let slot = Utc::now().trunc_subsecs(0);
    let report = engine
        .run_policy(&config.policies[0], slot, Trigger::Manual)
        .await
        .unwrap();
    notifier.flush().await;

    assert_eq!(report.jobs[0].status, JobStatus::Succeeded);
    let delivery = store
        .job_events(report.jobs[0].id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "notification")
        .expect("the delivery is recorded");
    assert_eq!(
        (delivery.class.as_deref(), delivery.http_status),
        (Some("failed"), Some(307))
    );
    let message = delivery.message.unwrap_or_default();
    assert!(
        message.contains(&format!("to {hook}: not delivered"))
            && message.contains(&format!("a redirect to {elsewhere};"))
            && message.contains("fix the webhook URL"),
        "{message}"
    );
    assert!(!message.contains(HOOK_SECRET), "{message}");
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
}
