//! Payloads and which policy gets which notifications.

use std::path::Path;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::*;
use crate::config::{self, DEFAULT_NOTIFY_ON, DEFAULT_NOTIFY_TIMEOUT};
use crate::store::Phase;

fn failed_job() -> JobRecord {
    let slot = Utc.with_ymd_and_hms(2026, 11, 21, 1, 30, 0).unwrap();
    JobRecord {
        id: 42,
        run_id: 9,
        policy: "db-nightly".into(),
        kind: crate::kind::PolicyKind::Backup,
        cloud: "prod".into(),
        target: "c5834fe1-577f-462e-9bf3-1b158e1dde9c".into(),
        slot,
        resource_name: "db-nightly-20261121T013000Z-c5834fe1".into(),
        status: JobStatus::Failed,
        phase: Phase::Done,
        snapshot_id: Some("66a574c0".into()),
        backup_id: Some("1d1139d8".into()),
        size_gb: None,
        is_incremental: None,
        fail_reason: Some("Connection to swift failed".into()),
        started_at: slot,
        finished_at: Some(slot),
        attempt: 1,
        attempt_started_at: slot,
        blocked_by: None,
        retry_at: None,
        service: None,
    }
}

#[test]
fn a_failed_job_payload_has_every_key() {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 1, 31, 5).unwrap();
    let (outcome, payload) = Payload::for_job(&failed_job(), now).unwrap();
    assert_eq!(outcome, NotifyOn::Failure);
    assert_eq!(
        serde_json::to_value(&payload).unwrap(),
        json!({
            "event": "failure", "policy": "db-nightly",
            "target": "c5834fe1-577f-462e-9bf3-1b158e1dde9c", "status": "failed",
            "reason": "Connection to swift failed", "backup_id": "1d1139d8",
            "snapshot_id": "66a574c0", "slot": "2026-11-21T01:30:00Z", "job_id": 42,
            "time": "2026-11-21T01:31:05Z", "age_seconds": null, "rpo_seconds": null,
            "volume_id": null, "verify": null, "cloud": null,
        })
    );
    let env = payload.env();
    assert!(env.contains(&("VBS_STATUS", "failed".into())));
    assert!(env.contains(&("VBS_JOB_ID", "42".into())));
    assert!(
        !env.iter().any(|(k, _)| *k == "VBS_AGE_SECONDS"),
        "unset when null"
    );

    let mut job = failed_job();
    job.status = JobStatus::TimedOut;
    assert_eq!(Payload::for_job(&job, now).unwrap().0, NotifyOn::Failure);
    job.status = JobStatus::Succeeded;
    assert_eq!(Payload::for_job(&job, now).unwrap().0, NotifyOn::Success);
    job.status = JobStatus::SkippedOverlap;
    assert!(Payload::for_job(&job, now).is_none());
}

#[test]
fn a_failed_drill_is_a_drill_failure_with_its_scratch_volume_and_verdict() {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 5, 40, 0).unwrap();
    let mut job = failed_job();
    job.policy = "db-nightly.drill".into();
    job.kind = crate::kind::PolicyKind::Restore;
    job.snapshot_id = None;
    job.fail_reason = Some("verify failed: exit status 1".into());
    let (outcome, payload) = Payload::for_job(&job, now).unwrap();
    assert_eq!(outcome, NotifyOn::DrillFailure);
    let restore = RestoreColumns {
        volume_id: Some("9f1e0c3a".into()),
        verify: Some("failed".into()),
        ..Default::default()
    };
    let v = serde_json::to_value(payload.with_restore(&restore)).unwrap();
    assert_eq!(v["event"], "drill_failure");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["backup_id"], "1d1139d8");
    assert_eq!(v["volume_id"], "9f1e0c3a");
    assert_eq!(v["verify"], "failed");
    assert_eq!(v["reason"], "verify failed: exit status 1");

    job.status = JobStatus::TimedOut;
    assert_eq!(
        Payload::for_job(&job, now).unwrap().0,
        NotifyOn::DrillFailure
    );
    // A restore on request is no drill: its failure is a plain failure.
    job.policy = crate::config::MANUAL_RESTORE_POLICY.into();
    assert_eq!(Payload::for_job(&job, now).unwrap().0, NotifyOn::Failure);
    // A verified drill is not notified (nothing to act on).
    job.policy = "db-nightly.drill".into();
    job.status = JobStatus::Verified;
    assert!(Payload::for_job(&job, now).is_none());
}

#[test]
fn a_drills_rpo_breach_speaks_of_verified_restores() {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap();
    let p = Payload::for_rpo_breach(
        "db-nightly.drill",
        "vol-1",
        Duration::from_secs(8 * 24 * 3600),
        Duration::from_secs(7 * 24 * 3600),
        now,
    );
    assert_eq!(
        p.reason.as_deref(),
        Some("the newest verified restore is 8days old; the restore RPO is 7days")
    );
}

#[test]
fn an_rpo_breach_payload_says_how_old_and_what_rpo() {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap();
    let p = Payload::for_rpo_breach(
        "db-nightly",
        "vol-1",
        Duration::from_secs(30 * 3600 + 17),
        Duration::from_secs(24 * 3600),
        now,
    );
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["event"], "rpo_breach");
    assert_eq!(v["status"], "rpo_breach");
    assert_eq!(v["age_seconds"], 108_017);
    assert_eq!(v["rpo_seconds"], 86_400);
    assert_eq!(
        v["reason"],
        "the newest good backup is 1day 6h 17s old; the RPO is 1day"
    );
    assert_eq!(v["job_id"], Value::Null);
}

const CLOUDS: &str = "clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints: { volume: https://evs.example.com, backup: https://vbs.example.com }
    auth: { type: token, token_env: VBS_TOKEN }
";

fn policies(notify_default: &str, policies: &str) -> config::Config {
    let text = format!("defaults:\n{notify_default}{CLOUDS}policies:\n{policies}");
    config::parse(&text, Path::new("/etc/vbs-agent/policy.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn policy(name: &str, extra: &str) -> String {
    format!("  - {{ name: {name}, kind: backup, cloud: prod, schedule: \"0 0 1 * * *\", volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]{extra} }}\n")
}

#[test]
fn a_policy_notify_replaces_the_default_one() {
    let config = policies(
        "  notify: { webhook: https://hooks.example.com/t0k3n }\n",
        &[
            policy("inherits", ""),
            policy(
                "own",
                ", notify: { command: [/usr/local/bin/page, storage], on: [success], timeout: 3s }",
            ),
            policy("silent", ", notify: { command: [/bin/true], on: [] }"),
        ]
        .concat(),
    );
    let inherited = config.policies[0].notify.clone().unwrap();
    assert_eq!(
        inherited.webhook.as_ref().map(url::Url::as_str),
        Some("https://hooks.example.com/t0k3n")
    );
    assert_eq!(inherited.on, DEFAULT_NOTIFY_ON);
    assert!(
        inherited.on.contains(&NotifyOn::DrillFailure),
        "a failed drill is heard by default"
    );
    assert_eq!(inherited.timeout, DEFAULT_NOTIFY_TIMEOUT);
    let own = config.policies[1].notify.clone().unwrap();
    assert_eq!((own.webhook, own.on), (None, vec![NotifyOn::Success]));
    assert_eq!(own.command.unwrap(), ["/usr/local/bin/page", "storage"]);
    assert_eq!(own.timeout, Duration::from_secs(3));
    assert!(config.policies[2].notify.as_ref().unwrap().on.is_empty());

    let none = policies("  timezone: UTC\n", &policy("quiet", ""));
    assert_eq!(none.policies[0].notify, None);
}

#[test]
fn secrets_in_the_environment_are_kept_from_commands() {
    let config = policies("  timezone: UTC\n", &policy("p", ""));
    let notifier = Notifier::new(&config, None);
    assert_eq!(*lock(&notifier.hidden_env), ["VBS_TOKEN"]);
}

#[test]
fn the_example_policy_file_notifies_as_its_comments_say() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yaml"));
    let config = config::load(path).unwrap_or_else(|e| panic!("{e}"));
    let notify = |name: &str| config.policy(name).unwrap().notify.clone().unwrap();
    let paging = notify("db-nightly");
    assert_eq!(
        paging.on,
        [
            NotifyOn::Failure,
            NotifyOn::RpoBreach,
            NotifyOn::DrillFailure
        ]
    );
    assert_eq!(paging.command.unwrap()[0], "/usr/local/bin/page-oncall");
    let staging = notify("staging-db");
    assert_eq!(
        (staging.command, staging.on),
        (None, vec![NotifyOn::Failure, NotifyOn::Success])
    );
}

#[test]
fn an_unprotected_payload_names_the_cloud_and_no_policy() {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 1, 31, 5).unwrap();
    let payload = Payload::for_unprotected("prod", "volume", "v-1", Some("db-data"), now);
    let v = serde_json::to_value(&payload).unwrap();
    assert_eq!(v["event"], "unprotected");
    assert_eq!(v["policy"], "");
    assert_eq!(v["cloud"], "prod");
    assert_eq!(
        v["reason"],
        "volume v-1 (db-data) of cloud prod is covered by no policy and not opted out"
    );
    assert!(payload.env().contains(&("VBS_CLOUD", "prod".into())));
}
