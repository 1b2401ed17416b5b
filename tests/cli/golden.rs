//! The same history on both backends gives the same answers: the week of
//! `audit.rs` with its drills, and a row or more in every other table,
//! recorded through the store at fixed times into SQLite and into
//! PostgreSQL (or copied there by `history export`). `history` (table,
//! JSON, CSV), `report` (table, JSON) and every view and table, selected in
//! a total order, must read the same byte for byte; only where an output
//! names the database may it differ. Needs `VBS_PG_URL` (skipped with one
//! line without it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::audit::{
    drill_config, policy_file, record, record_drills, record_scoped, record_week, utc, Outcome, A,
    B, C,
};
use crate::helper::ha::scratch;
use crate::helper::run::command;
use crate::helper::text;
use vbs_agent::store::db::Value;
use vbs_agent::store::scratch::ScratchDatabase;
use vbs_agent::store::{
    CoverageGap, CoverageSnapshot, Event, EventKind, JobStatus, JobUpdate, Phase, Resolution,
    RetentionAction, RunScope, ScopedTarget, ServerVolumeBackup, Store, Trigger,
};

/// The variable the PostgreSQL policy file reads its URL from.
const URL_ENV: &str = "VBS_GOLDEN_HISTORY_URL";

/// The views auditors query (docs/audit.md, selection.md).
const VIEWS: [&str; 6] = [
    "v_jobs",
    "v_failures",
    "v_compliance",
    "v_restores",
    "v_run_targets",
    "v_unprotected",
];

/// The history's tables, but `history_meta` (SQLite names its history when
/// a writer opens it; a PostgreSQL history filled by the store is unnamed)
/// and `leader_lease` (no lease on either).
const TABLES: [&str; 13] = [
    "runs",
    "jobs",
    "job_attempts",
    "events",
    "schedule_marks",
    "retention_actions",
    "backup_shares",
    "server_volume_backups",
    "cloud_projects",
    "restores",
    "run_targets",
    "coverage_snapshots",
    "coverage_gaps",
];

/// A server of the `servers` policy.
const S: &str = "0000000e-0000-4000-8000-00000000000e";

/// The whole crafted history: the week, its drills, and the rest.
pub(crate) fn record_all(store: &Store) {
    record_week(store);
    record_drills(store);
    record_rest(store);
}

/// Rows for the tables the week does not fill, with times that end in
/// half seconds and odd milliseconds, where rounding could differ.
fn record_rest(store: &Store) {
    let t = |s: &str| utc(s);
    let job = |policy: &str, target: &str, day: &str| {
        store
            .recent_jobs(1000)
            .unwrap()
            .iter()
            .find(|j| j.policy == policy && j.target == target && j.slot.to_rfc3339().contains(day))
            .unwrap_or_else(|| panic!("no job {policy} {target} {day}"))
            .id
    };
    let a20 = job("nightly", A, "2026-11-20");
    let b21 = job("nightly", B, "2026-11-21");

    for (n, (kind, method, status, class)) in [
        (EventKind::ApiCall, Some("POST"), Some(202), Some("ok")),
        (
            EventKind::ApiCall,
            Some("GET"),
            Some(503),
            Some("server_error"),
        ),
        (EventKind::State, None, None, None),
        (EventKind::Warning, None, None, None),
        (EventKind::Notification, Some("POST"), None, Some("failed")),
    ]
    .into_iter()
    .enumerate()
    {
        let message = format!("event {n} of job {b21}: ünïcode, 'quotes', \"double\"");
        let event = Event {
            run_id: None,
            job_id: Some(b21),
            method,
            path: method.map(|_| "/v2/p/backups"),
            http_status: status,
            latency_ms: status.map(|_| 17 + n as u64),
            class,
            message: Some(&message),
        };
        let at = t("2026-11-21T01:30:00.001Z") + chrono::Duration::milliseconds(333 * n as i64);
        store.record_event(kind, &event, at).unwrap();
    }
    let took = JobUpdate {
        backup_took: Some(Duration::from_millis(299_500)),
        ..Default::default()
    };
    store
        .update_job(a20, &took, t("2026-11-20T01:35:00.5Z"))
        .unwrap();
    store
        .record_share(
            a20,
            "bk-0000000a-1120",
            "p2",
            Some("share-1"),
            None,
            t("2026-11-20T01:36:00Z"),
        )
        .unwrap();
    store
        .record_share(
            a20,
            "bk-0000000a-1120",
            "p3",
            None,
            Some("quota"),
            t("2026-11-20T01:36:01Z"),
        )
        .unwrap();
    for (n, action) in ["deleted", "blocked_by_dependants", "delete_failed"]
        .into_iter()
        .enumerate()
    {
        let retention = RetentionAction {
            policy: "nightly",
            target: A,
            backup_id: &format!("bk-old-{n}"),
            backup_name: (n != 1).then_some("old"),
            created_at: (n != 2).then(|| t("2026-10-01T01:30:00.250Z")),
            action,
            reason: "keep_daily: 7",
        };
        store
            .record_retention(&retention, t("2026-11-21T01:40:00Z"))
            .unwrap();
    }
    for seen in ["2026-11-15T01:30:00Z", "2026-11-21T22:00:00Z"] {
        store
            .record_cloud_project("prod", "p1", Some("ops"), Some("Default"), t(seen))
            .unwrap();
    }
    store
        .record_cloud_project("dr", "p9", None, None, t("2026-11-16T01:30:00Z"))
        .unwrap();
    store
        .mark_slot(
            "nightly",
            "0 30 1 * * * UTC",
            t("2026-11-21T01:30:00Z"),
            t("2026-11-21T01:30:00.010Z"),
        )
        .unwrap();
    store
        .mark_slot(
            "hourly",
            "0 0 * * * * UTC",
            t("2026-11-21T22:00:00Z"),
            t("2026-11-21T22:00:00.010Z"),
        )
        .unwrap();

    // A drill's restore with its backup's age (ending on a half second)
    // and its scratch volume deleted; another whose scratch volume is left.
    let drill_a = job("nightly.drill", A, "2026-11-17");
    store
        .set_restore_backup(
            drill_a,
            "bk-0000000a-1116",
            Some(t("2026-11-16T01:31:59.500Z")),
            Some(8),
            t("2026-11-17T05:00:10Z"),
        )
        .unwrap();
    store.set_restore_volume(drill_a, "scratch-a").unwrap();
    store
        .set_verify(drill_a, "passed", Some("exit status 0"))
        .unwrap();
    store
        .scratch_deleted(drill_a, t("2026-11-17T05:06:00Z"))
        .unwrap();
    let drill_c = job("nightly.drill", C, "2026-11-21");
    store.set_restore_volume(drill_c, "scratch-c").unwrap();
    store
        .restore_started(drill_c, Some("rj-1"), t("2026-11-21T05:00:30.001Z"))
        .unwrap();
    store
        .restore_finished(drill_c, t("2026-11-21T05:01:59.998Z"))
        .unwrap();
    store
        .set_verify(drill_c, "failed", Some("exit status 1"))
        .unwrap();

    // Three runs of a selector policy, each with its resolved targets.
    for day in 19..=21 {
        let slot = t(&format!("2026-11-{day}T03:00:00Z"));
        let targets: Vec<ScopedTarget> = (1..=4)
            .map(|n| ScopedTarget {
                id: format!("0000000{n}-1111-4000-8000-0000000000{day}"),
                name: (n % 2 == 1).then(|| format!("vol-{n}")),
                reason: if n == 4 {
                    "listed".into()
                } else {
                    "metadata backup=nightly".into()
                },
            })
            .collect();
        let scope = RunScope {
            resolution: if day == 20 {
                Resolution::LastGood
            } else {
                Resolution::Resolved
            },
            resolved_at: slot - chrono::Duration::milliseconds(1500),
            targets: targets.clone(),
        };
        let jobs: Vec<(&str, Outcome)> = targets
            .iter()
            .map(|s| (s.id.as_str(), Outcome::Missed))
            .collect();
        record_scoped(store, "selected", slot, &jobs, Some(&scope));
    }

    // Durations that end on half a second (SQLite rounds them half away
    // from zero) and a reason with a newline, escapes and U+202E.
    let slot = t("2026-11-21T03:30:00Z");
    let halves = [
        "0000000f-0000-4000-8000-000000000001",
        "0000000f-0000-4000-8000-000000000002",
    ];
    let ids = record_scoped(
        store,
        "halves",
        slot,
        &[
            (
                halves[0],
                Outcome::Succeeded {
                    seconds: 2,
                    size_gb: 5,
                },
            ),
            (halves[1], Outcome::Failed("first")),
        ],
        None,
    );
    let end = |ms: i64| slot + chrono::Duration::milliseconds(ms);
    let ok = JobUpdate {
        phase: Some(Phase::Done),
        status: Some(JobStatus::Succeeded),
        snapshot_id: Some("snap-1"),
        size_gb: Some(5),
        is_incremental: Some(true),
        finished_at: Some(end(2_500)),
        ..Default::default()
    };
    store.update_job(ids[0], &ok, end(2_500)).unwrap();
    let failed = JobUpdate {
        phase: Some(Phase::Done),
        status: Some(JobStatus::Failed),
        fail_reason: Some("line one\nline two \u{1b}[31mred\u{1b}[0m \u{202e}reversed\u{85}"),
        finished_at: Some(end(90_500)),
        ..Default::default()
    };
    store.update_job(ids[1], &failed, end(90_500)).unwrap();

    // A server backup with its volumes' backups.
    let slot = t("2026-11-21T02:00:00Z");
    record(
        store,
        "servers",
        slot,
        &[(S, Outcome::Failed("checkpoint error"))],
    );
    let server_job = job("servers", S, "2026-11-21");
    store
        .set_checkpoint(server_job, "cp-1", t("2026-11-21T02:00:01.999Z"))
        .unwrap();
    store
        .set_progress(server_job, 37.5, t("2026-11-21T02:00:30Z"))
        .unwrap();
    let volumes = [
        ServerVolumeBackup {
            volume_backup_id: Some("vb-1".into()),
            source_volume_id: Some("sv-1".into()),
            source_volume_name: Some("root".into()),
            status: Some("available".into()),
            size_mb: Some(10240.25),
            incremental: Some(false),
            bootable: Some(true),
        },
        ServerVolumeBackup {
            volume_backup_id: None,
            source_volume_id: Some("sv-2".into()),
            source_volume_name: None,
            status: Some("error".into()),
            size_mb: None,
            incremental: None,
            bootable: Some(false),
        },
    ];
    store
        .record_server_result(
            server_job,
            "cp-item-1",
            Some("BACKUP.1234"),
            &volumes,
            t("2026-11-21T02:01:00Z"),
        )
        .unwrap();

    // Two coverage snapshots, one with gaps, one whose listing failed.
    let gap = |target: &str, kind: &'static str, opted_out: Option<&str>| CoverageGap {
        target: target.into(),
        kind,
        name: Some(format!("{kind}-{}", &target[..8])),
        opted_out: opted_out.map(String::from),
    };
    store
        .record_coverage(&CoverageSnapshot {
            taken_at: t("2026-11-21T04:00:00.123Z"),
            cloud: "prod".into(),
            volumes: 9,
            servers: Some(1),
            protected: 6,
            unprotected: 2,
            opted_out: 1,
            error: None,
            gaps: vec![
                gap("00000010-0000-4000-8000-000000000010", "volume", None),
                gap("00000011-0000-4000-8000-000000000011", "server", None),
                gap(
                    "00000012-0000-4000-8000-000000000012",
                    "volume",
                    Some("backup: none"),
                ),
            ],
        })
        .unwrap();
    store
        .record_coverage(&CoverageSnapshot {
            taken_at: t("2026-11-21T05:00:00Z"),
            cloud: "dr".into(),
            volumes: 0,
            servers: None,
            protected: 0,
            unprotected: 0,
            opted_out: 0,
            error: Some("503 from the volume endpoint".into()),
            gaps: vec![],
        })
        .unwrap();
}

/// The crafted history in SQLite and the policy files that read it there
/// and in a PostgreSQL database.
pub(crate) struct Pair {
    pub dir: tempfile::TempDir,
    pub pg: ScratchDatabase,
}

impl Pair {
    /// An SQLite history filled by `fill` (opened as a writer, so it is
    /// named), and a new PostgreSQL database; `None` without `VBS_PG_URL`.
    pub fn new(fill: impl FnOnce(&Store)) -> Option<Self> {
        let pg = scratch()?;
        let dir = tempfile::tempdir().unwrap();
        let pair = Self { dir, pg };
        fill(&Store::open_writer(&pair.sqlite_db(), "test").unwrap());
        // Each in a state_dir of its own, so that neither reads the
        // other's history.
        for (file, state, history) in [
            ("sqlite.yaml", "state", String::new()),
            (
                "postgres.yaml",
                "pg-state",
                format!("history:\n  postgres:\n    url_env: {URL_ENV}\n"),
            ),
        ] {
            let text = policy_file(&pair.dir.path().join(state), &drill_config(""), &history);
            std::fs::write(pair.dir.path().join(file), text).unwrap();
        }
        Some(pair)
    }

    pub fn sqlite_db(&self) -> PathBuf {
        self.dir.path().join("state/history.db")
    }

    pub fn config(&self, backend: &str) -> PathBuf {
        self.dir.path().join(format!("{backend}.yaml"))
    }

    /// `vbs-agent ARGS` with the URL of the PostgreSQL history in
    /// [`URL_ENV`] and in `VBS_TARGET_URL` (for `history export`).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command(args);
        cmd.env(URL_ENV, &self.pg.config.url)
            .env("VBS_TARGET_URL", &self.pg.config.url);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("vbs-agent runs")
    }

    /// `vbs-agent history export --to-env … ARGS` into the PostgreSQL
    /// database.
    fn export(&self, args: &[&str]) -> Output {
        let mut all = vec!["history", "export", "--to-env", "VBS_TARGET_URL"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `vbs-agent COMMAND --config <backend>.yaml ARGS`.
    fn on(&self, backend: &str, command: &str, args: &[&str]) -> Output {
        let config = self.config(backend).display().to_string();
        let mut all = vec![command, "--config", &config];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Asserts that every `history` and `report` output, and every view and
    /// table, reads the same on SQLite and on PostgreSQL.
    pub fn assert_same(&self) {
        let described = self.pg.config.describe();
        let sqlite_path = self.sqlite_db().display().to_string();
        // Every command line both backends answer, its words split at
        // spaces.
        let commands = [
            "history",
            "history --limit 1000",
            "history --format json",
            "history --format csv",
            "history --policy nightly --status failed,missed,skipped_overlap",
            "history --target 0000000b-0000-4000-8000-00000000000b --since 2026-11-19 \
             --until 2026-11-21T01:30:00Z --format json",
            "history --policy nope",
            "history --policy nope --format csv",
            "report --at 2026-11-22T00:00:00Z --since 7d",
            "report --at 2026-11-22T00:00:00Z --since 7d --format json",
            "report --at 2026-11-20T00:00:00Z --since 30d",
            "report --at 2026-11-20T00:00:00Z --since 30d --format json",
        ];
        for line in commands {
            let words: Vec<&str> = line.split_whitespace().collect();
            let (command, args) = (words[0], &words[1..]);
            let sqlite = self.on("sqlite", command, args);
            let pg = self.on("postgres", command, args);
            let what = format!("vbs-agent {line}");
            assert!(
                matches!(sqlite.status.code(), Some(0 | 3)),
                "{what}: {}",
                text(&sqlite.stderr)
            );
            assert!(!sqlite.stdout.is_empty(), "{what} printed nothing");
            assert_eq!(
                sqlite.status.code(),
                pg.status.code(),
                "{what}: {}",
                text(&pg.stderr)
            );
            // Only "no matching jobs in <where>" names the database.
            let pg_out = text(&pg.stdout).replace(&described, &sqlite_path);
            assert_eq!(text(&sqlite.stdout), pg_out, "{what}");
        }

        let sqlite = Store::open_read_only(&self.sqlite_db()).unwrap();
        let pg = Store::open_postgres(&self.pg.config).unwrap();
        for name in VIEWS.iter().chain(&TABLES) {
            let rows = dump(&sqlite, name);
            assert!(
                rows.len() > 1,
                "{name} is empty: the comparison would prove nothing"
            );
            assert_eq!(rows, dump(&pg, name), "{name}");
        }
    }
}

/// Every row of a view or table, all columns in a total order (NULLs
/// last on both backends), rendered with [`Value::render`] (NULL shown as
/// such), each followed by its cells' types (`i`nteger, `r`eal, `t`ext,
/// `n`ull: the views have SQLite's types on PostgreSQL too, so `psql` shows
/// `3` where `sqlite3` does); the header first.
/// `v_compliance.last_success_age_hours` is left out: it is measured from
/// the moment of the query.
pub(crate) fn dump(store: &Store, name: &str) -> Vec<String> {
    let (columns, _) = store
        .select(&format!("SELECT * FROM {name} WHERE 1 = 0"))
        .unwrap();
    let columns: Vec<String> = columns
        .into_iter()
        .filter(|c| c != "last_success_age_hours")
        .collect();
    let order: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} IS NULL, {c}"))
        .collect();
    let (_, rows) = store
        .select(&format!(
            "SELECT {} FROM {name} ORDER BY {}",
            columns.join(", "),
            order.join(", ")
        ))
        .unwrap();
    let cell = |v: &Value| match v {
        Value::Null => ("NULL".to_string(), 'n'),
        Value::Int(_) => (v.render(), 'i'),
        Value::Real(_) => (v.render(), 'r'),
        Value::Text(_) => (v.render(), 't'),
    };
    let line = |values: &[Value]| -> String {
        let (cells, kinds): (Vec<String>, String) = values.iter().map(cell).unzip();
        format!("{} ({kinds})", cells.join(" | "))
    };
    std::iter::once(columns.join(" | "))
        .chain(rows.iter().map(|r| line(r.values())))
        .collect()
}

#[test]
fn the_same_history_reads_the_same_on_sqlite_and_postgresql() {
    let Some(pair) = Pair::new(record_all) else {
        return;
    };
    record_all(&Store::open_postgres(&pair.pg.config).unwrap());
    pair.assert_same();
}

/// The rows of `history export`'s table: (table, rows, copied, already there).
pub(crate) fn export_figures(out: &Output) -> Vec<(String, u64, u64, u64)> {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("table"))
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            let n = |i: usize| {
                cells[i]
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("{e}: {l}"))
            };
            (cells[0].to_string(), n(1), n(2), n(3))
        })
        .collect()
}

#[test]
fn an_exported_history_reads_the_same_and_a_second_export_copies_nothing() {
    let Some(pair) = Pair::new(record_all) else {
        return;
    };
    let sqlite = pair.config("sqlite").display().to_string();
    // Small batches, so that every table of more than seven rows is read
    // after a key, the composite ones too.
    let first = pair.export(&["--config", &sqlite, "--batch", "7"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let figures = export_figures(&first);
    let source = Store::open_read_only(&pair.sqlite_db()).unwrap();
    let counts = source.row_counts().unwrap();
    assert_eq!(
        figures.len(),
        counts.len() + 1,
        "a row per table and the total"
    );
    for ((table, rows, copied, there), (name, count)) in figures.iter().zip(&counts) {
        assert_eq!((table.as_str(), *rows), (*name, *count));
        assert!(
            *rows > 0,
            "{table} has no row: its copy is not shown to work"
        );
        assert_eq!((*copied, *there), (*rows, 0), "{table}");
    }
    println!("{}", text(&first.stdout));

    pair.assert_same();
    let pg = Store::open_postgres(&pair.pg.config).unwrap();
    assert_eq!(pg.row_counts().unwrap(), counts);

    let again = pair.export(&["--db", &pair.sqlite_db().display().to_string()]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    for (table, rows, copied, there) in export_figures(&again) {
        assert_eq!((copied, there), (0, rows), "{table} the second time");
    }
    println!("{}", text(&again.stdout));
    assert_eq!(pg.row_counts().unwrap(), counts, "nothing twice");

    // The identities continue after the copied ids.
    let max_run = counts.iter().find(|(t, _)| *t == "runs").unwrap().1;
    let run = pg
        .create_run(
            "later",
            utc("2026-11-30T00:00:00Z"),
            Trigger::Manual,
            &[],
            None,
            utc("2026-11-30T00:00:00Z"),
        )
        .unwrap()
        .unwrap();
    assert_eq!(run, max_run as i64 + 1, "the runs' ids are 1..={max_run}");

    // A job the PostgreSQL history changed since: the export stops there
    // rather than call it "already there" or overwrite it.
    let update = JobUpdate {
        fail_reason: Some("changed in PostgreSQL"),
        ..Default::default()
    };
    pg.update_job(3, &update, utc("2026-11-30T00:00:01Z"))
        .unwrap();
    let diverged = pair.export(&["--config", &sqlite]);
    let stderr = text(&diverged.stderr);
    assert_eq!(diverged.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "jobs id = 3 is not the same in the SQLite history and in the PostgreSQL history"
        ) && stderr.contains("The export never overwrites a row"),
        "{stderr}"
    );
}

/// `history export` of the week alone from a fresh SQLite history (named
/// anew) into `pg`, with its output.
fn export_week_into(pg: &ScratchDatabase) -> (Output, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    record_week(&Store::open_writer(&db, "test").unwrap());
    let id = std::fs::read_to_string(dir.path().join("history.id")).unwrap();
    let out = command(["history", "export", "--db"])
        .arg(&db)
        .args(["--to-env", "VBS_TARGET_URL"])
        .env("VBS_TARGET_URL", &pg.config.url)
        .output()
        .unwrap();
    (out, id.trim().to_string())
}

#[test]
fn export_refuses_a_database_holding_another_history() {
    let Some(pg) = scratch() else {
        return;
    };
    let (first, first_id) = export_week_into(&pg);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let target = Store::open_postgres(&pg.config).unwrap();
    let before = target.row_counts().unwrap();

    let (second, second_id) = export_week_into(&pg);
    let stderr = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "holds history {first_id}, not {second_id} (the one being exported); an export \
             never merges two histories"
        )),
        "{stderr}"
    );
    assert_eq!(target.row_counts().unwrap(), before, "nothing copied");

    // A history its agents wrote, which has no name, is another one too.
    let Some(written) = scratch() else {
        return;
    };
    record_week(&Store::open_postgres(&written.config).unwrap());
    let (refused, _) = export_week_into(&written);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not empty (8 rows in runs) and names no history"),
        "{stderr}"
    );
}

#[test]
fn export_refuses_while_an_agent_leads_the_database() {
    let Some(pg) = scratch() else {
        return;
    };
    let target = Store::open_postgres(&pg.config).unwrap();
    let db = vbs_agent::store::db::PgDb::connect(&pg.config, Duration::from_secs(10)).unwrap();
    db.with(|c| {
        c.execute(
            "INSERT INTO leader_lease (name, holder, epoch, acquired_at, renewed_at, expires_at)
             VALUES ('leader', 'host-a:4242', 7, now(), now(), now() + interval '1 hour')",
            &[],
        )
    })
    .unwrap();
    let (out, _) = export_week_into(&pg);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("host-a:4242 leads the PostgreSQL history")
            && stderr.contains("(lease epoch 7)")
            && stderr.contains("stop the agents on every host first (systemctl stop vbs-agent)"),
        "{stderr}"
    );
    assert!(
        target.row_counts().unwrap().iter().all(|(_, n)| *n == 0),
        "nothing written"
    );
}

#[test]
fn export_takes_no_password_on_its_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db").display().to_string();
    let out = crate::helper::agent(&[
        "history",
        "export",
        "--db",
        &db,
        "--to",
        "postgres://vbs:s3cret@127.0.0.1:5432/vbs",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--to holds a password")
            && stderr.contains("--to-env VAR or --to-file FILE"),
        "{stderr}"
    );
    assert!(!Path::new(&db).exists(), "nothing was opened");
}
