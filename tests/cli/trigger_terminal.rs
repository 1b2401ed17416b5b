//! `vbs-agent trigger` on a real terminal (a tmux pane): one status line
//! per target, redrawn in place, then the outcome table. Skipped, with a
//! line saying so, where tmux is not installed.

use std::process::Command;

use crate::helper::failing_volume;
use crate::helper::{volume, volume_id, wait_for, World};

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().expect("tmux runs")
}

/// A tmux session that is killed when the test ends, pass or fail.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_each_target_has_one_line_redrawn_in_place() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed");
        return;
    }
    let world = World::start(vec![volume(1, None), failing_volume(2, "swift down")]).await;
    world.config("0 0 3 1 1 *", &[volume_id(1), volume_id(2)], "", false);
    let done = world.path("exit-code");
    let command = format!(
        "{} trigger --config {} --policy e2e; echo $? > {}; sleep 600",
        env!("CARGO_BIN_EXE_vbs-agent"),
        world.path("policy.yaml").display(),
        done.display()
    );
    let session = Session(format!("vbs-agent-test-{}", std::process::id()));
    let started = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session.0,
        "-x",
        "160",
        "-y",
        "40",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");

    wait_for("trigger to finish", || done.exists()).await;
    let screen = String::from_utf8(tmux(&["capture-pane", "-p", "-t", &session.0]).stdout).unwrap();
    let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
    let (v1, v2) = (volume_id(1), volume_id(2));
    let of = |v: &str| lines.iter().filter(|l| l.contains(v)).count();
    assert_eq!(
        (of(&v1), of(&v2)),
        (2, 2),
        "one live line and one table row per target, nothing scrolled:\n{screen}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(&format!("✓ {v1}  done"))),
        "{screen}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with(&format!("✗ {v2}  done"))
                && l.contains("failed: swift down")),
        "{screen}"
    );
    assert!(screen.contains("1 of 2 job(s) succeeded"), "{screen}");
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "1");
}
