//! `vbs-agent targets` and `vbs-agent coverage` as a user runs them,
//! against the simulator: what is in scope and why, what nothing covers,
//! the formats and the exit codes.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::helper::sim::SimVolume;
use crate::helper::{agent_async, text, volume, volume_id, World};

fn labelled(n: u32, key: &str, value: &str) -> SimVolume {
    SimVolume {
        metadata: BTreeMap::from([(key.to_string(), value.to_string())]),
        ..volume(n, None)
    }
}

/// A world of five volumes: 1 and 2 labelled nightly, 3 opted out, 4
/// labelled nightly but excluded, 5 unlabelled; and a policy file whose
/// policy selects nightly, excludes 4 and lists `listed`.
async fn world(listed: &[u32]) -> (World, String) {
    let world = World::start_instant(vec![
        labelled(1, "backup", "nightly"),
        labelled(2, "backup", "nightly"),
        labelled(3, "backup", "none"),
        labelled(4, "backup", "nightly"),
        volume(5, None),
    ])
    .await;
    let listed: Vec<String> = listed.iter().map(|n| volume_id(*n)).collect();
    let volumes = if listed.is_empty() {
        String::new()
    } else {
        format!("    volumes: [{}]\n", listed.join(", "))
    };
    let policy = format!(
        "  - name: nightly\n    kind: backup\n    cloud: sim\n    schedule: \"0 30 1 * * *\"\n    select:\n      match: {{backup: nightly}}\n      exclude: [{}]\n{volumes}",
        volume_id(4)
    );
    let path = world.write_config("", "", &policy);
    (world, path.to_string_lossy().into_owned())
}

#[tokio::test]
async fn targets_shows_each_target_with_why_and_the_matches_left_out() {
    let (_world, path) = world(&[5]).await;
    let out = agent_async(["targets", "--config", &path]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let row = |n: u32| {
        shown
            .lines()
            .find(|l| l.contains(&volume_id(n)))
            .unwrap_or_else(|| panic!("no row for volume {n}:\n{shown}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(row(1).ends_with("yes metadata backup=nightly"), "{shown}");
    assert!(row(2).ends_with("yes metadata backup=nightly"), "{shown}");
    assert!(
        row(4).ends_with("no listed under select.exclude"),
        "{shown}"
    );
    assert!(row(5).ends_with("yes listed"), "{shown}");
    // The opted-out volume does not match `backup: nightly`: not shown.
    assert!(!shown.contains(&volume_id(3)), "{shown}");
}

#[tokio::test]
async fn coverage_flags_what_nothing_covers_and_exits_3() {
    let (_world, path) = world(&[]).await;
    let out = agent_async(["coverage", "--config", &path, "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let status: BTreeMap<String, (String, Option<String>)> = rows
        .iter()
        .filter(|r| r["kind"] == "volume")
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                (
                    r["status"].as_str().unwrap().to_string(),
                    r["note"].as_str().map(str::to_string),
                ),
            )
        })
        .collect();
    let want = |s: &str, note: Option<&str>| (s.to_string(), note.map(str::to_string));
    assert_eq!(
        status,
        BTreeMap::from([
            (volume_id(1), want("protected", None)),
            (volume_id(2), want("protected", None)),
            (
                volume_id(3),
                want("opted_out", Some("opted out by backup=none"))
            ),
            (
                volume_id(4),
                want("opted_out", Some("excluded by policy nightly"))
            ),
            (volume_id(5), want("UNPROTECTED", None)),
        ])
    );

    let csv = agent_async(["coverage", "--config", &path, "--format", "csv"]).await;
    let csv = text(&csv.stdout);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("cloud,kind,id,name,status,policies,last_good_backup,last_good_policy,note")
    );
    assert!(
        lines.any(|l| l.contains(&volume_id(5)) && l.contains(",UNPROTECTED,")),
        "{csv}"
    );
}

#[tokio::test]
async fn coverage_exits_0_once_the_forgotten_volume_is_listed() {
    let (_world, path) = world(&[5]).await;
    let out = agent_async(["coverage", "--config", &path, "--cloud", "sim"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("0 unprotected"),
        "{}",
        text(&out.stdout)
    );
    let unknown = agent_async(["coverage", "--config", &path, "--cloud", "nope"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no cloud `nope`"));
}
