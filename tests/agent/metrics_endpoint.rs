//! `metrics_listen`: an in-process agent against the simulator, scraped on
//! 127.0.0.1 after its jobs ran, and again after a restart.

use crate::helper::sim::VolumeFault;
use crate::helper::{policy_yaml, volume, volume_id, Daemon, World};
use chrono::{Datelike, Timelike};
use vbs_agent::store::{JobRecord, JobStatus, Store};

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// GET on the agent's listener, retried while it is still starting.
async fn get(port: u16, path: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut last_error = String::new();
    for _ in 0..200 {
        match reqwest::get(&url).await {
            Ok(r) => return (r.status().as_u16(), r.text().await.unwrap()),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url} never answered: {last_error}");
}

/// The value of the series written exactly as `series` (name and labels).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The sum of every series of the metric `name`.
fn total(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn jobs(world: &World) -> Vec<JobRecord> {
    Store::open_read_only(&world.path("state").join("history.db"))
        .and_then(|s| s.recent_jobs(100))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_page_counts_jobs_api_calls_and_last_successes() {
    let failing = VolumeFault::BackupError {
        fail_reason: "backup service down".into(),
    };
    let world = World::start(vec![volume(1, None), volume(2, Some(failing))]).await;
    let (good, bad) = (volume_id(1), volume_id(2));
    // One slot, three seconds from now: the page is read when all is quiet.
    let t = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
    let schedule = format!(
        "{} {} {} {} {} *",
        t.second(),
        t.minute(),
        t.hour(),
        t.day(),
        t.month()
    );
    let port = free_port();
    let path = world.write_config(
        &format!("metrics_listen: 127.0.0.1:{port}\n"),
        "",
        &policy_yaml("e2e", &schedule, &[good.clone(), bad.clone()], ""),
    );
    let config = crate::helper::load(&path);

    let daemon = Daemon::start(config.clone());
    assert_eq!(get(port, "/healthz").await, (200, "ok\n".to_string()));
    // The page itself says when both jobs have ended.
    let mut page = String::new();
    for _ in 0..2400 {
        let (status, text) = get(port, "/metrics").await;
        assert_eq!(status, 200);
        page = text;
        if total(&page, "vbs_agent_jobs_total") >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let history = jobs(&world);
    let succeeded = history
        .iter()
        .find(|j| j.status == JobStatus::Succeeded)
        .expect("the good volume's job succeeded");
    assert_eq!(succeeded.target, good);
    let jobs_of = |status: &str| {
        value(
            &page,
            &format!(r#"vbs_agent_jobs_total{{policy="e2e",status="{status}"}}"#),
        )
    };
    assert_eq!(jobs_of("succeeded"), Some(1.0), "{page}");
    assert_eq!(jobs_of("failed"), Some(1.0), "{page}");
    assert_eq!(
        value(
            &page,
            r#"vbs_agent_job_duration_seconds_count{policy="e2e",status="succeeded"}"#
        ),
        Some(1.0),
        "{page}"
    );
    let finished = succeeded.finished_at.unwrap().timestamp() as f64;
    let last_success =
        format!(r#"vbs_agent_last_success_timestamp_seconds{{policy="e2e",target="{good}"}}"#);
    assert_eq!(value(&page, &last_success), Some(finished), "{page}");
    // The failing volume has no last success (only its RPO gauge names it).
    assert!(
        !page.contains(&format!(
            r#"vbs_agent_last_success_timestamp_seconds{{policy="e2e",target="{bad}"}}"#
        )),
        "{page}"
    );
    assert_eq!(
        value(&page, "vbs_agent_jobs_in_flight"),
        Some(0.0),
        "{page}"
    );
    // Every request the cloud saw is counted, under an id-free endpoint.
    assert_eq!(
        total(&page, "vbs_agent_api_requests_total"),
        world.sim.request_count() as f64,
        "{page}"
    );
    // One snapshot and one backup created per volume.
    for endpoint in ["/v2/{id}/snapshots", "/v3/{id}/backups"] {
        let series = format!(
            r#"vbs_agent_api_requests_total{{method="POST",endpoint="{endpoint}",code="202"}}"#
        );
        assert_eq!(value(&page, &series), Some(2.0), "{page}");
    }

    daemon.stop().await;

    // After a restart the last success comes from the history at once.
    let daemon = Daemon::start(config);
    let (_, page) = get(port, "/metrics").await;
    assert_eq!(value(&page, &last_success), Some(finished), "{page}");
    assert_eq!(total(&page, "vbs_agent_jobs_total"), 0.0, "{page}");
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_metrics_port_stops_the_start_with_the_address_named() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let path = world.write_config(
        &format!("metrics_listen: 127.0.0.1:{port}\n"),
        "",
        &policy_yaml("e2e", "0 0 3 1 1 *", &[volume_id(1)], ""),
    );
    let err = vbs_agent::daemon::run(crate::helper::load(&path), std::future::pending())
        .await
        .expect_err("the port is taken");
    let message = err.to_string();
    assert!(
        message.contains(&format!("cannot listen on metrics_listen 127.0.0.1:{port}")),
        "{message}"
    );
    drop(taken);
}
