//! A job ends by its completion timeout whatever the cloud's server does:
//! accepts requests and never answers, sends the headers and never the whole
//! body, or answers 503 with an enormous `Retry-After`. The engine runs on
//! tokio's paused clock (reqwest's timeouts too), so the minutes these
//! would take cost no time and the bound does not depend on the machine.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use tokio::time::Instant;
use vbs_agent::api::{ClientSettings, LAST_LOOK};
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

const COMPLETION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a one-volume job against a cloud at `addr` took, and how it ended.
async fn run_against(addr: std::net::SocketAddr) -> (Duration, JobStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0k3n\n").unwrap();
    let text = format!(
        "state_dir: {state}
clouds:
  hung:
    project_id: {project}
    endpoints: {{ volume: http://{addr}, backup: http://{addr} }}
    auth: {{ type: token, token_file: {token} }}
policies:
  - name: hung
    kind: backup
    cloud: hung
    schedule: \"0 0 3 1 1 *\"
    completion_timeout: {timeout}
    volumes: [{volume}]
",
        state = dir.path().join("state").display(),
        project = crate::helper::PROJECT,
        token = dir.path().join("token").display(),
        timeout = humantime::format_duration(COMPLETION_TIMEOUT),
        volume = crate::helper::volume_id(1),
    );
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, text).unwrap();
    let config = crate::helper::load(&path);
    let store = Arc::new(Store::open(&config.history_path()).unwrap());
    let engine = Engine::new(&config, store, ClientSettings::default()).unwrap();

    let started = Instant::now();
    let slot = Utc::now().trunc_subsecs(0);
    let report = engine
        .run_policy(&config.policies[0], slot, Trigger::Manual)
        .await
        .unwrap();
    let job = &report.jobs[0];
    let reason = job.fail_reason.clone().unwrap_or_default();
    (started.elapsed(), job.status, reason)
}

/// The job is `timed_out` no sooner than its completion timeout and no
/// later than the timeout plus the one last look.
fn assert_timed_out_in_time((took, status, reason): (Duration, JobStatus, String)) {
    assert_eq!(status, JobStatus::TimedOut, "{reason}");
    assert!(reason.contains("within the completion timeout"), "{reason}");
    assert!(
        took >= COMPLETION_TIMEOUT && took <= COMPLETION_TIMEOUT + LAST_LOOK,
        "the job took {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_the_job_out_at_its_completion_timeout() {
    assert_timed_out_in_time(run_against(crate::helper::silent_server()).await);
}

#[tokio::test(start_paused = true)]
async fn an_answer_whose_body_never_ends_times_the_job_out_at_its_completion_timeout() {
    let headers_only = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Content-Length: 4096\r\n\r\n{\"snapshot\": {";
    assert_timed_out_in_time(run_against(crate::helper::raw_server(headers_only)).await);
}

#[tokio::test(start_paused = true)]
async fn an_endless_retry_after_does_not_stretch_the_job_past_its_completion_timeout() {
    let busy = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 999999999\r\n\
                Content-Length: 0\r\n\r\n";
    assert_timed_out_in_time(run_against(crate::helper::raw_server(busy)).await);
}
