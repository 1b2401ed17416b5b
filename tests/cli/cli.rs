//! The `vbs-agent` binary as an operator runs it: exit codes and output.

use std::path::{Path, PathBuf};

use crate::helper::failing_volume;
use crate::helper::{agent, agent_async, text, volume, volume_id, World};

/// `config/example.yaml` in `dir` with its `state_dir` moved to `state_dir`.
fn example_with_state_dir(dir: &Path, state_dir: &Path) -> PathBuf {
    let example = include_str!("../../config/example.yaml");
    let moved = example.replace(
        "state_dir: /var/lib/vbs-agent",
        &format!("state_dir: {}", state_dir.display()),
    );
    assert_ne!(moved, example, "the example names its state_dir");
    let path = dir.join("policy.yaml");
    std::fs::write(&path, moved).unwrap();
    path
}

#[test]
fn check_accepts_the_example_and_shows_next_fire_times() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("not-yet").join("state");
    let example = example_with_state_dir(dir.path(), &state_dir);
    let out = agent(&["check", "--config", example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!state_dir.exists(), "check creates nothing");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("valid (3 cloud(s), 7 policy(ies))"),
        "{stdout}"
    );
    assert!(
        stdout.contains("policy db-nightly (backup, cloud prod, 1 volume(s))\n  and every volume matching backup=nightly,tier=*, 1 excluded"),
        "{stdout}"
    );
    assert!(
        stdout.contains("policy web-servers (server, cloud prod, 1 server(s))"),
        "{stdout}"
    );
    // db-nightly's drill, a policy of its own.
    assert!(
        stdout.contains("policy db-nightly.drill (restore, cloud prod, 1 volume(s))\n  and every volume matching"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("  next: ").count(),
        21,
        "3 fire times per policy: {stdout}"
    );
    assert!(
        stdout.contains(" CET  (") || stdout.contains(" CEST  ("),
        "local time with zone: {stdout}"
    );
}

#[test]
fn check_reports_every_error_and_exits_2() {
    let broken = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/config-errors/several-errors.yaml"
    );
    let out = agent(&["check", "--config", broken]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("several-errors.yaml:15:15: policies[0].schedule: invalid cron expression"),
        "{stderr}"
    );
    assert!(stderr.contains("3 errors in"), "{stderr}");
    let missing = agent(&["check", "--config", "/nonexistent/policy.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/policy.yaml"));
}

#[test]
fn check_refuses_a_state_dir_the_agent_could_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let with_db_dir = dir.path().join("state");
    std::fs::create_dir_all(with_db_dir.join("history.db")).unwrap();
    let cases = [
        (
            file.clone(),
            format!("state_dir {} is not a directory", file.display()),
        ),
        (
            file.join("state"),
            format!(
                "state_dir {}/state cannot be created: {} is not a directory",
                file.display(),
                file.display()
            ),
        ),
        // Not writable even by root.
        (
            PathBuf::from("/proc/self"),
            "state_dir /proc/self is not writable by this user".into(),
        ),
        (
            PathBuf::from("/proc/vbs-agent"),
            "state_dir /proc/vbs-agent cannot be created".into(),
        ),
        (
            with_db_dir.clone(),
            format!(
                "history {}/history.db is a directory",
                with_db_dir.display()
            ),
        ),
    ];
    for (state_dir, expected) in cases {
        let policy = example_with_state_dir(dir.path(), &state_dir);
        let out = agent(&["check", "--config", policy.to_str().unwrap()]);
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {stderr}",
            state_dir.display()
        );
        assert!(stderr.contains(&expected), "{expected}: {stderr}");
        assert!(
            !text(&out.stdout).contains("valid"),
            "{}",
            text(&out.stdout)
        );
    }
}

/// A "billion laughs" policy file is refused by `check` with exit 2 and
/// the alias's position, within 1 GiB of address space (it once took
/// `check` to 24 GB; the limit keeps a regression from hurting the host).
#[test]
fn check_refuses_an_alias_bomb_in_bounded_memory() {
    let bomb = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/config-errors/alias-bomb.yaml"
    );
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "ulimit -v 1048576 && exec \"$0\" check --config \"$1\"",
        ])
        .args([env!("CARGO_BIN_EXE_vbs-agent"), bomb])
        .output()
        .expect("sh runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "alias-bomb.yaml:9:45: this alias makes the document more than 100000 YAML nodes"
        ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_runs_a_policy_now_and_history_shows_it() {
    let reason = "Connection to swift failed: [Errno 111] ECONNREFUSED";
    let world = World::start(vec![volume(1, None), failing_volume(2, reason)]).await;
    world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);
    std::fs::rename(world.path("policy.yaml"), world.path("good.yaml")).unwrap();
    world.config("0 0 3 1 1 *", &[volume_id(1), volume_id(2)], "", false);
    let good = world.path("good.yaml").display().to_string();
    let mixed = world.path("policy.yaml").display().to_string();

    let out = agent_async(vec![
        "trigger".into(),
        "--config".into(),
        good.clone(),
        "--policy".into(),
        "e2e".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("succeeded") && stdout.contains("1 of 1 job(s) succeeded"),
        "{stdout}"
    );

    let out = agent_async(vec![
        "trigger".into(),
        "--config".into(),
        mixed.clone(),
        "--policy".into(),
        "e2e".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "one job failed: {}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains(reason));

    let out = agent_async(vec![
        "trigger".into(),
        "--config".into(),
        mixed.clone(),
        "--policy".into(),
        "nope".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no policy `nope`"),
        "{}",
        text(&out.stderr)
    );

    let out = agent_async(vec!["history".into(), "--config".into(), mixed]).await;
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    assert!(table.starts_with("policy"), "{table}");
    assert_eq!(table.lines().count(), 4, "header and three jobs: {table}");
    assert_eq!(table.matches("succeeded").count(), 2, "{table}");
    assert_eq!(table.matches(reason).count(), 1, "{table}");
}

#[test]
#[cfg(feature = "sim")]
fn demo_runs_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(["demo", "--seconds", "12"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert!(
        stdout.contains("failed") && stdout.contains("Connection to swift failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("running"), "every job finished: {stdout}");

    // The closing hint names a history that is still there, and its command works.
    let hint = stdout
        .lines()
        .find(|l| l.contains(" history --db "))
        .unwrap_or_else(|| panic!("no history hint: {stdout}"));
    let db = hint.rsplit(' ').next().unwrap();
    assert!(db.starts_with("vbs-agent-demo/"), "{hint}");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(["history", "--db", db])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let history = text(&again.stdout);
    assert_eq!(
        history.matches("succeeded").count(),
        stdout.matches("succeeded").count(),
        "{history}"
    );
}

#[test]
fn history_names_a_foreign_database_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other-app.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(
        &text_file,
        "not a database at all, just some text\n".repeat(200),
    )
    .unwrap();
    for file in [&foreign, &text_file] {
        for format in ["table", "json", "csv"] {
            let out = agent(&[
                "history",
                "--db",
                file.to_str().unwrap(),
                "--format",
                format,
            ]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert_eq!(
                stderr,
                format!("error: {} is not a vbs-agent history\n", file.display())
            );
        }
    }
}

#[test]
fn an_error_names_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let policy = example_with_state_dir(dir.path(), &file.join("state"));
    let out = agent(&[
        "trigger",
        "--config",
        policy.to_str().unwrap(),
        "--policy",
        "db-nightly",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: state_dir {}/state cannot be created: Not a directory (os error 20)\n",
            file.display()
        )
    );
}

#[test]
fn check_shows_the_first_errors_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let volume = volume_id(1);
    let volumes = format!("      - {volume}\n").repeat(1001);
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "state_dir: {}\nclouds:\n  c:\n    project_id: {}\n    endpoints: {{ volume: http://127.0.0.1:1, backup: http://127.0.0.1:1 }}\n    auth: {{ type: token, token_file: /nonexistent }}\npolicies:\n  - name: p\n    kind: backup\n    cloud: c\n    schedule: \"0 0 1 * * *\"\n    volumes:\n{volumes}",
            dir.path().display(),
            crate::helper::PROJECT,
        ),
    )
    .unwrap();
    let out = agent(&["check", "--config", policy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 52, "{stderr}");
    assert!(lines[..50]
        .iter()
        .all(|l| l.contains(&format!("volume {volume} is listed twice"))));
    assert_eq!(lines[50], "and 950 more");
    assert_eq!(lines[51], format!("1000 errors in {}", policy.display()));
}
