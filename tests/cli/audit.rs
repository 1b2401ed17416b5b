//! The audit surface as an auditor uses it: `history` filters and formats,
//! `report` and its exit codes, over a history written through the store
//! at chosen times (so nothing depends on the clock), and both commands
//! while a writer holds the database.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::helper::{agent, agent_async, text};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vbs_agent::store::{
    JobStatus, JobUpdate, NewRestore, NewRunJob, Phase, RunScope, Store, Trigger,
};

pub(crate) const A: &str = "0000000a-0000-4000-8000-00000000000a";
pub(crate) const B: &str = "0000000b-0000-4000-8000-00000000000b";
pub(crate) const C: &str = "0000000c-0000-4000-8000-00000000000c";
pub(crate) const H: &str = "0000000d-0000-4000-8000-00000000000d";
pub(crate) const SWIFT: &str = "Connection to swift failed: [Errno 111] ECONNREFUSED";
pub(crate) const QUOTA: &str = "backup quota exceeded";

pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// How a crafted job ends.
pub(crate) enum Outcome {
    Succeeded {
        seconds: i64,
        size_gb: i64,
    },
    Failed(&'static str),
    /// A failed attempt, retried, and the retry failed too.
    RetriedThenFailed(&'static str, &'static str),
    SkippedOverlap,
    Missed,
    /// A drill's restore: the volume restored in this many seconds and
    /// verified.
    Verified(i64),
}

/// Records one run of `policy` at `slot` with one job per target, each
/// ending as given, with every timestamp derived from the slot. A drill
/// policy's (`<policy>.drill`) jobs are restores into scratch volumes.
pub(crate) fn record(store: &Store, policy: &str, slot: DateTime<Utc>, jobs: &[(&str, Outcome)]) {
    record_scoped(store, policy, slot, jobs, None);
}

/// [`record`] with the run's resolved target set; returns its jobs' ids.
pub(crate) fn record_scoped(
    store: &Store,
    policy: &str,
    slot: DateTime<Utc>,
    jobs: &[(&str, Outcome)],
    scope: Option<&RunScope>,
) -> Vec<i64> {
    let drill = policy.ends_with(".drill");
    let names: Vec<String> = jobs
        .iter()
        .map(|(t, _)| format!("{policy}-{}-{}", slot.format("%Y%m%dT%H%M%SZ"), &t[..8]))
        .collect();
    let specs: Vec<NewRunJob<'_>> = jobs
        .iter()
        .zip(&names)
        .map(|((target, outcome), name)| NewRunJob {
            target,
            kind: if drill { "restore" } else { "backup" },
            cloud: "prod",
            resource_name: name,
            status: match outcome {
                Outcome::SkippedOverlap => JobStatus::SkippedOverlap,
                Outcome::Missed => JobStatus::Missed,
                _ => JobStatus::Running,
            },
            blocked_by: None,
            note: None,
            restore: drill.then_some(NewRestore {
                requested_by: "schedule",
                into_volume: "scratch",
                volume_id: None,
                restore_api: "cinder",
                backup_id: None,
            }),
            service: None,
        })
        .collect();
    let run = store
        .create_run(policy, slot, Trigger::Schedule, &specs, scope, slot)
        .unwrap()
        .unwrap();
    let ids: Vec<i64> = store
        .jobs_of_run(run)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    let at = |secs: i64| slot + Duration::seconds(secs);
    for ((target, outcome), &id) in jobs.iter().zip(&ids) {
        let fail = |reason, end| JobUpdate {
            phase: Some(Phase::Done),
            status: Some(JobStatus::Failed),
            fail_reason: Some(reason),
            finished_at: Some(end),
            ..Default::default()
        };
        match outcome {
            Outcome::Succeeded { seconds, size_gb } => {
                let backup = format!("bk-{}-{}", &target[..8], slot.format("%m%d"));
                let update = JobUpdate {
                    phase: Some(Phase::Done),
                    status: Some(JobStatus::Succeeded),
                    backup_id: Some(&backup),
                    size_gb: Some(*size_gb),
                    finished_at: Some(at(*seconds)),
                    ..Default::default()
                };
                store.update_job(id, &update, at(*seconds)).unwrap();
            }
            Outcome::Failed(reason) => store.update_job(id, &fail(reason, at(60)), at(60)).unwrap(),
            Outcome::RetriedThenFailed(first, second) => {
                store.update_job(id, &fail(first, at(60)), at(60)).unwrap();
                store
                    .begin_next_attempt(id, &format!("{}-r2", &target[..8]), at(120))
                    .unwrap();
                store
                    .update_job(id, &fail(second, at(180)), at(180))
                    .unwrap();
            }
            Outcome::Verified(seconds) => {
                store.restore_started(id, None, at(30)).unwrap();
                store.restore_finished(id, at(30 + seconds)).unwrap();
                let update = JobUpdate {
                    phase: Some(Phase::Done),
                    status: Some(JobStatus::Verified),
                    finished_at: Some(at(60 + seconds)),
                    ..Default::default()
                };
                store.update_job(id, &update, at(60 + seconds)).unwrap();
            }
            Outcome::SkippedOverlap | Outcome::Missed => {}
        }
    }
    store.settle_run(run, at(200)).unwrap();
    ids
}

/// A week of nightly history (15–21 November 2026, 01:30 UTC), recorded
/// into `store` (of either backend):
/// - A succeeds every night but one, which was missed; one night took 5 min;
/// - B succeeds until the 19th, then fails two nights (the last one after a retry);
/// - C joins on the 21st and is skipped (its job overlapped);
/// - H, in an hourly policy with `rpo: 2h`, succeeds at 22:00 on the 21st.
pub(crate) fn record_week(store: &Store) {
    for day in 15..=21 {
        let slot = utc(&format!("2026-11-{day}T01:30:00Z"));
        let a = match day {
            18 => Outcome::Missed,
            20 => Outcome::Succeeded {
                seconds: 300,
                size_gb: 8,
            },
            _ => Outcome::Succeeded {
                seconds: 120,
                size_gb: 8,
            },
        };
        let b = match day {
            20 => Outcome::Failed(SWIFT),
            21 => Outcome::RetriedThenFailed(QUOTA, SWIFT),
            _ => Outcome::Succeeded {
                seconds: 60,
                size_gb: 20,
            },
        };
        let mut jobs = vec![(A, a), (B, b)];
        if day == 21 {
            jobs.push((C, Outcome::SkippedOverlap));
        }
        record(store, "nightly", slot, &jobs);
    }
    record(
        store,
        "hourly",
        utc("2026-11-21T22:00:00Z"),
        &[(
            H,
            Outcome::Succeeded {
                seconds: 30,
                size_gb: 4,
            },
        )],
    );
}

/// The week's policy file, its history in `state` or as `history` says:
/// `nightly` without `rpo:` (so 24 h + the 1 h completion timeout) and
/// `hourly` with `rpo: 2h`.
pub(crate) fn policy_file(state: &Path, nightly_extra: &str, history: &str) -> String {
    format!(
        "state_dir: {state}
{history}defaults:
  completion_timeout: 1h
  timezone: UTC
clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints:
      volume: https://evs.example.com
      backup: https://vbs.example.com
    auth:
      type: token
      token_env: VBS_TEST_TOKEN_UNUSED
policies:
  - name: nightly
    kind: backup
    cloud: prod
    schedule: \"0 30 1 * * *\"
{nightly_extra}    volumes: [{A}, {B}, {C}]
  - name: hourly
    kind: backup
    cloud: prod
    schedule: \"0 0 * * * *\"
    rpo: 2h
    volumes: [{H}]
",
        state = state.display()
    )
}

/// The week of [`record_week`] in an SQLite history, and its policy file.
struct History {
    dir: tempfile::TempDir,
}

impl History {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state/history.db")).unwrap();
        record_week(&store);
        let history = Self { dir };
        history.write_config("");
        history
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state/history.db")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    /// The policy file of [`policy_file`].
    fn write_config(&self, nightly_extra: &str) {
        let state = self.dir.path().join("state");
        std::fs::write(self.config(), policy_file(&state, nightly_extra, "")).unwrap();
    }

    fn history(&self, args: &[&str]) -> Output {
        let db = self.db().display().to_string();
        let mut all = vec!["history", "--db", &db];
        all.extend_from_slice(args);
        agent(&all)
    }

    fn report(&self, args: &[&str]) -> Output {
        let config = self.config().display().to_string();
        let mut all = vec!["report", "--config", &config];
        all.extend_from_slice(args);
        agent(&all)
    }
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

fn target<'a>(report: &'a Value, policy: &str, id: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["policy"] == policy && t["target"] == id)
        .unwrap_or_else(|| panic!("{policy}/{id} not in {report}"))
}

#[test]
fn history_filters_by_policy_target_status_and_time() {
    let h = History::new();
    let all = json(&h.history(&["--format", "json"]));
    assert_eq!(
        all.as_array().unwrap().len(),
        16,
        "every job, no default limit"
    );

    let b = json(&h.history(&["--format", "json", "--target", B]));
    assert_eq!(b.as_array().unwrap().len(), 7);
    assert!(b.as_array().unwrap().iter().all(|j| j["target"] == B));

    let bad = json(&h.history(&[
        "--format",
        "json",
        "--policy",
        "nightly",
        "--status",
        "failed,missed,skipped_overlap",
    ]));
    let mut seen: Vec<(String, String)> = bad
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["target"].as_str().unwrap()[..8].to_string(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("0000000a".into(), "missed".into()),
            ("0000000b".into(), "failed".into()),
            ("0000000b".into(), "failed".into()),
            ("0000000c".into(), "skipped_overlap".into()),
        ]
    );

    // Slots from the 19th (a date is midnight UTC) to 20th 12:00 (RFC 3339).
    let window = json(&h.history(&[
        "--format",
        "json",
        "--since",
        "2026-11-19",
        "--until",
        "2026-11-20T13:00:00+01:00",
    ]));
    let slots: Vec<&str> = window
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["slot"].as_str().unwrap())
        .collect();
    assert_eq!(
        slots,
        [
            "2026-11-20T01:30:00.000Z",
            "2026-11-20T01:30:00.000Z",
            "2026-11-19T01:30:00.000Z",
            "2026-11-19T01:30:00.000Z"
        ],
        "newest first"
    );

    let limited = json(&h.history(&["--format", "json", "--limit", "3"]));
    assert_eq!(limited[0]["policy"], "hourly", "the newest job comes first");
    assert_eq!(limited.as_array().unwrap().len(), 3);

    let table = h.history(&["--policy", "nightly", "--target", B, "--status", "failed"]);
    assert_eq!(table.status.code(), Some(0));
    let table = text(&table.stdout);
    assert_eq!(table.lines().count(), 3, "header and two failures: {table}");
    assert!(table.contains(SWIFT), "{table}");

    let wrong = h.history(&["--since", "last tuesday"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("--since: `last tuesday` is not a time"),
        "{}",
        text(&wrong.stderr)
    );
    let wrong = h.history(&["--status", "ok"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("unknown status `ok`; use one of running, succeeded"));
}

/// The fields of `history --format json|csv` as docs/audit.md documents them:
/// the columns of `v_jobs`.
const JOB_FIELDS: [&str; 24] = [
    "job_id",
    "run_id",
    "policy",
    "kind",
    "cloud",
    "target",
    "slot",
    "trigger",
    "status",
    "phase",
    "attempts",
    "resource_name",
    "snapshot_id",
    "backup_id",
    "size_gb",
    "is_incremental",
    "fail_reason",
    "blocked_by",
    "started_at",
    "attempt_started_at",
    "finished_at",
    "retry_at",
    "duration_seconds",
    "updated_at",
];

#[test]
fn history_json_and_csv_carry_every_field_of_a_job() {
    let h = History::new();
    let json = json(&h.history(&[
        "--format",
        "json",
        "--target",
        B,
        "--until",
        "2026-11-21T23:00:00Z",
    ]));
    let retried = &json[0];
    let mut keys: Vec<&str> = retried
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut documented = JOB_FIELDS.to_vec();
    keys.sort_unstable();
    documented.sort_unstable();
    assert_eq!(keys, documented, "JSON has the same fields as CSV");
    assert_eq!(retried["slot"], "2026-11-21T01:30:00.000Z");
    assert_eq!(retried["trigger"], "schedule");
    assert_eq!(retried["updated_at"], "2026-11-21T01:33:00.000Z");
    assert_eq!(retried["status"], "failed");
    assert_eq!(retried["attempts"], 2);
    assert_eq!(retried["fail_reason"], SWIFT);
    assert_eq!(retried["started_at"], "2026-11-21T01:30:00.000Z");
    assert_eq!(retried["attempt_started_at"], "2026-11-21T01:32:00.000Z");
    assert_eq!(retried["finished_at"], "2026-11-21T01:33:00.000Z");
    assert_eq!(retried["duration_seconds"], 180);
    assert!(retried["backup_id"].is_null());
    let ok = &json[2];
    assert_eq!(ok["status"], "succeeded");
    assert_eq!(ok["backup_id"], "bk-0000000b-1119");
    assert_eq!(ok["size_gb"], 20);

    let out = h.history(&["--format", "csv", "--target", B]);
    assert_eq!(out.status.code(), Some(0));
    let csv = text(&out.stdout);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header, JOB_FIELDS, "the documented columns, in order");
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 7);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        &records[0][column("fail_reason")],
        SWIFT,
        "read back intact"
    );
    assert_eq!(
        &records[0][column("backup_id")],
        "",
        "null is an empty field"
    );
    assert_eq!(
        &records[2][column("finished_at")],
        "2026-11-19T01:31:00.000Z"
    );

    let none = h.history(&["--format", "csv", "--policy", "nope"]);
    assert_eq!(
        text(&none.stdout).trim_end(),
        JOB_FIELDS.join(","),
        "an empty result still has its header"
    );
}

#[test]
fn report_flags_the_target_out_of_rpo_and_exits_3() {
    let h = History::new();
    let out = h.report(&[
        "--at",
        "2026-11-22T00:00:00Z",
        "--since",
        "7d",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["since"], "2026-11-15T00:00:00.000Z");

    let a = target(&report, "nightly", A);
    assert_eq!(
        a["rpo_seconds"],
        25 * 3600,
        "24 h gap + 1 h completion timeout"
    );
    assert_eq!(a["rpo_source"], "schedule");
    assert_eq!(a["last_success_at"], "2026-11-21T01:30:00.000Z");
    assert_eq!(a["last_success_age_seconds"], 22 * 3600 + 1800);
    assert_eq!(a["rpo_breached"], false);
    assert_eq!(
        (a["succeeded"].as_u64(), a["missed"].as_u64()),
        (Some(6), Some(1))
    );
    assert_eq!(a["success_rate"].as_f64().unwrap(), 6.0 / 7.0);
    assert_eq!(a["attempts"], 6, "a missed slot makes no attempt");
    assert_eq!(a["mean_duration_seconds"].as_f64().unwrap(), 900.0 / 6.0);
    assert_eq!(a["worst_duration_seconds"], 300);
    assert_eq!(a["total_size_gb"], 48);

    let b = target(&report, "nightly", B);
    assert_eq!(b["rpo_breached"], true);
    assert_eq!(b["last_success_at"], "2026-11-19T01:30:00.000Z");
    assert_eq!(b["last_success_resource_id"], "bk-0000000b-1119");
    assert_eq!(b["attempts"], 8, "the retried night counts twice");
    assert_eq!(b["failed"], 2);
    assert_eq!(
        b["failures"],
        serde_json::json!([
            { "reason": SWIFT, "count": 2 },
            { "reason": QUOTA, "count": 1 }
        ]),
        "every failed attempt, by reason"
    );

    let c = target(&report, "nightly", C);
    assert_eq!(c["last_success_at"], Value::Null);
    assert_eq!(c["skipped_overlap"], 1);
    assert_eq!(
        c["rpo_breached"], false,
        "never succeeded, but its first slot is only 22.5 h old"
    );

    let hourly = target(&report, "hourly", H);
    assert_eq!(hourly["rpo_seconds"], 7200);
    assert_eq!(hourly["rpo_source"], "configured");
    assert_eq!(
        hourly["rpo_breached"], false,
        "2 h old exactly is within 2h"
    );

    let table = h.report(&["--at", "2026-11-22T00:00:00Z", "--since", "7d"]);
    assert_eq!(table.status.code(), Some(3));
    let table = text(&table.stdout);
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id}: {table}"))
            .to_string()
    };
    assert!(
        row(B).contains("OUT OF RPO") && row(B).contains("2days 22h 30m"),
        "{table}"
    );
    assert!(
        row(A).contains(" ok ") && row(A).contains("6/7 (86%)"),
        "{table}"
    );
    assert!(row(C).contains("ok (no success yet)"), "{table}");
    assert!(
        table.contains(&format!("    2× {SWIFT}\n    1× {QUOTA}\n")),
        "{table}"
    );
    assert!(table.contains("1 of 4 target(s) out of RPO"), "{table}");
}

#[test]
fn a_target_that_never_succeeded_breaches_once_its_first_slot_is_older_than_the_rpo() {
    let h = History::new();
    // A day later C's first slot (the 21st, 01:30) is 46.5 h old.
    let out = h.report(&["--at", "2026-11-23T00:00:00Z", "--format", "json"]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(target(&report, "nightly", C)["rpo_breached"], true);
    assert_eq!(target(&report, "hourly", H)["rpo_breached"], true);
}

#[test]
fn report_exits_0_when_every_target_is_within_its_rpo() {
    let h = History::new();
    // As of the 20th, before B's failures; C and H were not due yet.
    let out = h.report(&["--at", "2026-11-20T00:00:00Z"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0 of 4 target(s) out of RPO"), "{stdout}");
    let c_row = stdout.lines().find(|l| l.contains(C)).unwrap();
    assert!(
        c_row.contains("never") && c_row.contains("not yet due"),
        "{stdout}"
    );

    // A configured RPO wider than B's gap makes the 22nd compliant too.
    h.write_config("    rpo: 3d\n");
    let out = h.report(&["--at", "2026-11-22T00:00:00Z", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(target(&report, "nightly", B)["rpo_seconds"], 3 * 86400);

    let bad = h.report(&["--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("--since: `yesterday` is not a time"));
}

/// A daily drill of `nightly` (05:00) restoring one of its three volumes
/// per run: each volume every third day, so a derived restore RPO of
/// 3 × 24 h + the drill's 6 h timeout. A was last verified on the 17th,
/// B on the 20th, C on the 19th and its drill on the 21st failed.
fn drilled_history(drill_extra: &str) -> History {
    let h = History::new();
    record_drills(&Store::open(&h.db()).unwrap());
    // The backups' own RPO wide enough that only the drill can breach.
    h.write_config(&drill_config(drill_extra));
    h
}

/// The `nightly` lines of [`drilled_history`]'s policy file.
pub(crate) fn drill_config(drill_extra: &str) -> String {
    format!(
        "    rpo: 3d\n    drill:\n      schedule: \"0 0 5 * * *\"\n      sample: 1\n{drill_extra}"
    )
}

/// The drills of [`drilled_history`], recorded into `store`.
pub(crate) fn record_drills(store: &Store) {
    let day = |d: u32| utc(&format!("2026-11-{d}T05:00:00Z"));
    record(
        store,
        "nightly.drill",
        day(17),
        &[(A, Outcome::Verified(240))],
    );
    record(
        store,
        "nightly.drill",
        day(19),
        &[(C, Outcome::Verified(90))],
    );
    record(
        store,
        "nightly.drill",
        day(20),
        &[(B, Outcome::Verified(120))],
    );
    record(
        store,
        "nightly.drill",
        day(21),
        &[(C, Outcome::Failed("verify failed: exit status 1"))],
    );
}

#[test]
fn report_shows_restores_and_exits_3_on_a_restore_rpo_breach() {
    let h = drilled_history("");
    let at = ["--at", "2026-11-22T00:00:00Z", "--since", "7d"];
    let out = h.report(&[&at[..], &["--format", "json"]].concat());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();

    let backup = target(&report, "nightly", A);
    assert_eq!(backup["rpo_breached"], false);
    assert_eq!(
        (&backup["restore_rpo"], &backup["restores"]),
        (&Value::Null, &Value::Null)
    );

    let a = target(&report, "nightly.drill", A);
    assert_eq!(a["kind"], "restore");
    assert_eq!(
        a["rpo_seconds"],
        78 * 3600,
        "3 runs of 24 h + the 6 h timeout"
    );
    assert_eq!(a["rpo_source"], "schedule");
    assert_eq!(
        (&a["restore_rpo"], &a["rpo_breached"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    assert_eq!(
        a["restores"]["last_verified_at"],
        "2026-11-17T05:00:00.000Z"
    );
    assert_eq!(
        a["restores"]["last_verified_age_seconds"],
        4 * 86400 + 19 * 3600
    );
    assert_eq!(a["restores"]["worst_restore_seconds"], 240.0);

    let b = target(&report, "nightly.drill", B);
    assert_eq!(b["restore_rpo"], false);
    let c = target(&report, "nightly.drill", C);
    assert_eq!(c["restore_rpo"], false, "verified on the 19th, within 78 h");
    assert_eq!(c["failed"], 1);
    assert_eq!(c["restores"]["verified"], 1);
    assert_eq!(c["restores"]["median_restore_seconds"], 90.0);

    let table = h.report(&at);
    assert_eq!(table.status.code(), Some(3));
    let table = text(&table.stdout);
    let drill_row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with("nightly.drill") && l.contains(id))
            .unwrap_or_else(|| panic!("{id}: {table}"))
            .to_string()
    };
    assert!(
        table.contains("restores (drills: a verified restore within the restore RPO)"),
        "{table}"
    );
    assert!(
        table.contains("last verified") && table.contains("median restore"),
        "{table}"
    );
    assert!(drill_row(A).contains("OUT OF RESTORE RPO"), "{table}");
    assert!(
        drill_row(A).contains("4days 19h") && drill_row(A).contains("3days 6h"),
        "{table}"
    );
    assert!(
        drill_row(C).contains("1/2 (50%)") && drill_row(C).contains("1m 30s"),
        "{table}"
    );
    assert!(table.contains("0 of 4 target(s) out of RPO"), "{table}");
    assert!(
        table.contains("1 of 3 drilled volume(s) out of restore RPO"),
        "{table}"
    );

    // A drill rpo wide enough: nothing is out, exit 0.
    let h = drilled_history("      rpo: 5d\n");
    let out = h.report(&at);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("0 of 3 drilled volume(s) out of restore RPO"));

    // v_compliance counts a drill's verified restores as its successes.
    let conn =
        rusqlite::Connection::open_with_flags(h.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let row: (i64, i64, String) = conn
        .query_row(
            "SELECT succeeded, failed, last_success_at FROM v_compliance
             WHERE policy = 'nightly.drill' AND target = ?1",
            [C],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, (1, 1, "2026-11-19T05:00:00.000Z".to_string()));
}

#[test]
fn audit_commands_read_while_a_writer_holds_the_database() {
    let h = History::new();
    // A writer in WAL mode with a write transaction open, as the daemon
    // has while it records a job.
    let writer = rusqlite::Connection::open(h.db()).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute(
            "UPDATE jobs SET status = 'failed', fail_reason = 'uncommitted' WHERE target = ?1",
            [A],
        )
        .unwrap();

    // Were they to write anything (a migration, a journal-mode change),
    // they would wait for the lock and fail after the busy timeout.
    let out = h.history(&["--format", "json", "--target", A]);
    let jobs = json(&out);
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["fail_reason"].is_null()),
        "readers see the last committed state"
    );
    let out = h.report(&["--at", "2026-11-22T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 of 4 target(s) out of RPO"));

    writer.execute_batch("COMMIT").unwrap();
    let jobs = json(&h.history(&["--format", "json", "--target", A, "--status", "failed"]));
    assert_eq!(jobs.as_array().unwrap().len(), 7, "committed now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_report_read_the_running_daemons_history() {
    use crate::helper::{volume, volume_id, wait_for, World};

    let world = World::start_instant(vec![volume(1, None), volume(2, None)]).await;
    let config = world.config("*/2 * * * * *", &[volume_id(1), volume_id(2)], "", false);
    let db = config.history_path();
    let daemon = crate::helper::Daemon::start(config);
    let succeeded = || {
        Store::open_read_only(&db)
            .and_then(|s| s.recent_jobs(100))
            .map(|jobs| {
                jobs.iter()
                    .filter(|j| j.status == JobStatus::Succeeded)
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for("four backups", || succeeded() >= 4).await;

    let policy = world.path("policy.yaml").display().to_string();
    let out = agent_async(vec![
        "history".into(),
        "--config".into(),
        policy.clone(),
        "--format".into(),
        "json".into(),
        "--status".into(),
        "succeeded".into(),
    ])
    .await;
    let jobs = json(&out);
    assert!(jobs.as_array().unwrap().len() >= 4, "{jobs}");
    assert!(jobs
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["backup_id"].is_string() && j["size_gb"] == 8));

    let out = agent_async(vec![
        "report".into(),
        "--config".into(),
        policy,
        "--format".into(),
        "json".into(),
    ])
    .await;
    let report = json(&out);
    for n in [1, 2] {
        let t = target(&report, "e2e", &volume_id(n));
        assert_eq!(t["rpo_source"], "schedule");
        assert_eq!(
            t["rpo_seconds"], 32,
            "2 s between fires + 30 s completion timeout"
        );
        assert_eq!(t["rpo_breached"], false, "{t}");
        assert!(t["succeeded"].as_u64().unwrap() >= 1, "{t}");
        assert_eq!(t["failed"], 0, "{t}");
    }

    daemon.stop().await;
}

#[test]
fn the_views_answer_with_plain_sql() {
    let h = History::new();
    let conn =
        rusqlite::Connection::open_with_flags(h.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let compliance: Vec<String> = conn
        .prepare(
            "SELECT printf('%s %s %s %s %d/%d/%d', substr(target, 1, 8), last_status,
                           ifnull(last_success_at, '-'), ifnull(last_success_resource_id, '-'),
                           succeeded, failed, not_run)
             FROM v_compliance WHERE policy = 'nightly' ORDER BY target",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        compliance,
        [
            "0000000a succeeded 2026-11-21T01:30:00.000Z bk-0000000a-1121 6/0/1",
            "0000000b failed 2026-11-19T01:30:00.000Z bk-0000000b-1119 5/2/0",
            "0000000c skipped_overlap - - 0/0/1",
        ]
    );

    // Which targets had no good backup in the week, and why: one query.
    let no_good: Vec<(String, String, String, i64)> = conn
        .prepare(
            "SELECT target, status, reason, count(*) FROM v_failures
             WHERE slot >= '2026-11-20' AND final = 1
               AND (policy, target) NOT IN (SELECT policy, target FROM v_jobs
                                            WHERE status = 'succeeded' AND slot >= '2026-11-20')
             GROUP BY target, status, reason ORDER BY target",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        no_good,
        [
            (B.into(), "failed".into(), SWIFT.into(), 2),
            (
                C.into(),
                "skipped_overlap".into(),
                "the previous job of this target was still running".into(),
                1
            ),
        ]
    );

    let retried: i64 = conn
        .query_row(
            "SELECT count(*) FROM v_failures WHERE final = 0 AND reason = ?1",
            [QUOTA],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        retried, 1,
        "the retried attempt is listed with its own reason"
    );
    let duration: i64 = conn
        .query_row(
            "SELECT duration_seconds FROM v_jobs WHERE target = ?1 AND slot LIKE '2026-11-20%'",
            [A],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(duration, 300);
}

#[test]
fn check_shows_each_policys_rpo_and_where_it_comes_from() {
    let h = History::new();
    let config = h.config().display().to_string();
    let out = agent(&["check", "--config", &config]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("rpo: 1day 1h (the schedule's longest gap + jitter + completion_timeout)"),
        "{stdout}"
    );
    assert!(stdout.contains("rpo: 2h (configured)"), "{stdout}");
}

#[test]
fn report_on_a_history_without_the_views_says_how_to_migrate_it() {
    let h = History::new();
    let conn = rusqlite::Connection::open(h.db()).unwrap();
    conn.execute_batch("DROP VIEW v_compliance; DROP VIEW v_failures; DROP VIEW v_jobs;")
        .unwrap();
    drop(conn);
    let out = h.report(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("an older vbs-agent wrote it; start the agent"),
        "{}",
        text(&out.stderr)
    );
}
