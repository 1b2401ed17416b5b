//! What the service surface of the binary prints: completion scripts, man
//! pages and log lines in both formats.

use std::process::{Command, Output};

use crate::helper::run::output_async;
use crate::helper::{text, volume, volume_id, World, TOKEN};

const SUBCOMMANDS: &[&str] = &[
    "check",
    "run",
    "trigger",
    "prune",
    "history",
    "completions",
    "man",
];

/// `vbs-agent ARGS` with its own log settings: none but those in `env`.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = crate::helper::run::command(args);
    cmd.env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    cmd
}

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("vbs-agent runs")
}

#[test]
fn completion_scripts_offer_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = agent(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "{shell} script lacks `{sub}`:\n{script}"
            );
        }
        assert!(script.contains("log-format"), "{shell}");
    }
    let out = agent(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("possible values"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn man_pages_describe_the_command_and_each_subcommand() {
    let out = agent(&["man"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH vbs-agent 1"),
        "{page}"
    );
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("vbs\\-agent\\-{}", sub.replace('-', "\\-"))),
            "lacks {sub}:\n{page}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = agent(&["man", "--out", out_dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for sub in SUBCOMMANDS {
        let file = out_dir.join(format!("vbs-agent-{sub}.1"));
        let page =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(page.contains(".TH vbs-agent-"), "{}", file.display());
    }
    let export = std::fs::read_to_string(out_dir.join("vbs-agent-history-export.1")).unwrap();
    assert!(
        export.contains("\\-\\-to\\-file"),
        "a page for `history export` too"
    );
    let run = std::fs::read_to_string(out_dir.join("vbs-agent-run.1")).unwrap();
    assert!(run.contains("\\-\\-config"), "{run}");
}

/// `trigger` against the simulator, with these extra arguments and environment.
async fn trigger(world: &World, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args: Vec<String> = vec![
        "trigger".into(),
        "--config".into(),
        world.path("policy.yaml").display().to_string(),
        "--policy".into(),
        "e2e".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    output_async(command(&args, env)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_policy_target_and_job_id_and_no_secret() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);

    let out = trigger(&world, &["--log-format", "json"], &[("RUST_LOG", "debug")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let job_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "job")
        .collect();
    assert!(!job_lines.is_empty(), "{stderr}");
    for line in &job_lines {
        assert_eq!(line["span"]["policy"], "e2e", "{line}");
        assert_eq!(line["span"]["target"], volume_id(1).as_str(), "{line}");
        assert!(line["span"]["job_id"].is_u64(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    // The API calls of the job are among them, at debug level.
    assert!(
        job_lines
            .iter()
            .any(|l| l["fields"]["message"] == "api call"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "the token leaked into the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_logs_for_the_journal_have_no_colours_or_timestamps() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);

    let out = trigger(&world, &[], &[("JOURNAL_STREAM", "8:12345")]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in: {stderr}");
    let job_line = stderr
        .lines()
        .find(|l| l.contains("job{"))
        .unwrap_or_else(|| panic!("no job line in: {stderr}"));
    // Level first (journald stamps the time), then the job's fields.
    assert!(
        job_line.starts_with(" INFO job{") || job_line.starts_with("INFO job{"),
        "{job_line}"
    );
    assert!(
        job_line.contains(&format!("policy=e2e target={} job_id=", volume_id(1))),
        "{job_line}"
    );
}
