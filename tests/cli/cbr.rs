//! CBR through the binary: one policy file with a VBS cloud and a CBR
//! cloud runs both and `report` covers both; a policy moved from VBS to
//! CBR keeps one history; `backups`, `backup show` and `targets` on a CBR
//! cloud.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helper::{
    agent_async, cbr_policy_yaml, disk_vault, jobs, load, policy_yaml, text, volume, volume_id,
    World, CBR_CLOUD, PROJECT,
};

const NEVER: &str = "0 0 3 1 1 *";

/// `vbs-agent ARGS…` with `--config FILE` after the first word(s) given.
async fn run(args: &[&str]) -> std::process::Output {
    agent_async(args).await
}

async fn trigger(config: &str, policy: &str) -> String {
    let out = run(&["trigger", "--config", config, "--policy", policy]).await;
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "trigger {policy}: {stdout}{}",
        text(&out.stderr)
    );
    stdout
}

/// The report's entry for (policy, target).
fn entry<'a>(report: &'a Value, policy: &str, target: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["policy"] == policy && t["target"] == target)
        .unwrap_or_else(|| panic!("no {policy} {target} in {report}"))
}

/// A VBS world (volume 1) and a CBR world (volume 2 in vault `sim-disks`),
/// and one policy file in the VBS world's directory with cloud `vbs`
/// (policy `vbs-nightly`) and cloud `cbr` (`backup_service: cbr`, policy
/// `cbr-nightly` into the vault).
async fn two_clouds() -> (World, World, PathBuf) {
    let vbs = World::start_instant(vec![volume(1, None)]).await;
    let cbr = World::start_cbr(
        vec![volume(2, None)],
        vec![disk_vault("sim-disks", &[2])],
        Duration::ZERO,
        Duration::ZERO,
    )
    .await;
    let clouds = format!(
        "{}{}",
        vbs.clouds_yaml_with(false, "")
            .replacen("  sim:\n", "  vbs:\n", 1),
        cbr.clouds_yaml_with(false, CBR_CLOUD)
            .replacen("clouds:\n  sim:\n", "  cbr:\n", 1),
    );
    let policies = format!(
        "{}{}",
        policy_yaml("vbs-nightly", NEVER, &[volume_id(1)], "").replace("cloud: sim", "cloud: vbs"),
        cbr_policy_yaml(
            "cbr-nightly",
            NEVER,
            &[volume_id(2)],
            "    vault: sim-disks\n"
        )
        .replace("cloud: sim", "cloud: cbr"),
    );
    let path = vbs.write_config_clouds("", &clouds, &policies);
    (vbs, cbr, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_file_with_a_vbs_cloud_and_a_cbr_cloud_runs_both_and_report_covers_both() {
    let (vbs, cbr, path) = two_clouds().await;
    let config = path.display().to_string();
    trigger(&config, "vbs-nightly").await;
    trigger(&config, "cbr-nightly").await;

    let history = jobs(&load(&path).history_path());
    assert_eq!(history.len(), 2, "{history:#?}");
    let job = |policy: &str| history.iter().find(|j| j.policy == policy).unwrap();
    let (on_vbs, on_cbr) = (job("vbs-nightly"), job("cbr-nightly"));
    assert_eq!(
        (on_vbs.status.as_str(), on_vbs.service()),
        ("succeeded", "vbs")
    );
    assert_eq!(
        (on_cbr.status.as_str(), on_cbr.service()),
        ("succeeded", "cbr")
    );
    let vbs_backups = vbs.sim.backups(PROJECT);
    let cbr_backups = cbr.sim.cbr_backups(PROJECT);
    assert_eq!(vbs_backups.len(), 1, "one VBS backup of volume 1");
    assert_eq!(vbs_backups[0].volume_id, volume_id(1));
    assert_eq!(
        on_vbs.backup_id.as_deref(),
        Some(vbs_backups[0].id.as_str())
    );
    assert_eq!(cbr_backups.len(), 1, "one CBR backup of volume 2");
    assert_eq!(cbr_backups[0].volume_id, volume_id(2));
    assert_eq!(
        on_cbr.backup_id.as_deref(),
        Some(cbr_backups[0].id.as_str())
    );
    assert!(
        vbs.sim.cbr_backups(PROJECT).is_empty(),
        "nothing in CBR on the VBS cloud"
    );
    assert!(
        cbr.sim.backups(PROJECT).is_empty(),
        "nothing through VBS on the CBR cloud"
    );

    let out = run(&["report", "--config", &config, "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (a, b) = (
        entry(&report, "vbs-nightly", &volume_id(1)),
        entry(&report, "cbr-nightly", &volume_id(2)),
    );
    assert_eq!(a["last_success_service"], "vbs");
    assert_eq!(a["succeeded_by_service"], serde_json::json!({"vbs": 1}));
    assert_eq!(a["last_success_resource_id"], vbs_backups[0].id.as_str());
    assert_eq!(b["last_success_service"], "cbr");
    assert_eq!(b["succeeded_by_service"], serde_json::json!({"cbr": 1}));
    assert_eq!(b["last_success_resource_id"], cbr_backups[0].id.as_str());

    let out = run(&["report", "--config", &config]).await;
    let table = text(&out.stdout);
    let header: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("policy"))
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(&header[2..4], ["last success", "service"], "{table}");
    let row = |policy: &str| {
        table
            .lines()
            .find(|l| l.starts_with(policy))
            .unwrap_or_else(|| panic!("{policy}: {table}"))
            .to_string()
    };
    assert!(row("vbs-nightly").contains(" vbs "), "{table}");
    assert!(row("cbr-nightly").contains(" cbr "), "{table}");
    assert!(table.contains("0 of 2 target(s) out of RPO"), "{table}");

    // The cloud's own view names the service.
    let out = run(&["backups", "--config", &config, "--cloud", "cbr"]).await;
    let listed = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(listed.contains(&cbr_backups[0].id), "{listed}");
    assert!(listed.contains(&volume_id(2)), "{listed}");
    assert!(listed.ends_with("1 backup(s) in CBR\n"), "{listed}");
    let out = run(&["backups", "--config", &config, "--cloud", "vbs"]).await;
    let listed = text(&out.stdout);
    assert!(
        listed.contains(&vbs_backups[0].id) && listed.ends_with("1 backup(s)\n"),
        "VBS unchanged: {listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_moved_from_vbs_to_cbr_keeps_one_history_and_report_shows_both_services() {
    let world = World::start_cbr(
        vec![volume(1, None)],
        vec![disk_vault("sim-disks", &[1])],
        Duration::ZERO,
        Duration::ZERO,
    )
    .await;
    let vol = volume_id(1);
    let path = world.write_config(
        "",
        "",
        &policy_yaml("nightly", NEVER, std::slice::from_ref(&vol), ""),
    );
    let config = path.display().to_string();
    trigger(&config, "nightly").await;

    // The project moves to CBR: the same policy, now into a vault.
    world.write_config(
        "",
        CBR_CLOUD,
        &cbr_policy_yaml(
            "nightly",
            NEVER,
            std::slice::from_ref(&vol),
            "    vault: sim-disks\n",
        ),
    );
    trigger(&config, "nightly").await;

    let history = jobs(&load(&path).history_path());
    let services: Vec<&str> = history.iter().rev().map(|j| j.service()).collect();
    assert_eq!(services, ["vbs", "cbr"], "one history, oldest first");
    assert!(history
        .iter()
        .all(|j| j.policy == "nightly" && j.target == vol));
    assert_eq!(world.sim.backups(PROJECT).len(), 1);
    assert_eq!(world.sim.cbr_backups(PROJECT).len(), 1);

    let out = run(&["report", "--config", &config, "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["targets"].as_array().unwrap().len(), 1, "{report}");
    let t = entry(&report, "nightly", &vol);
    assert_eq!(t["succeeded"], 2, "both services' backups count: {t}");
    assert_eq!(t["last_success_service"], "cbr");
    assert_eq!(
        t["succeeded_by_service"],
        serde_json::json!({"cbr": 1, "vbs": 1})
    );

    let out = run(&["report", "--config", &config]).await;
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.contains(&vol)).unwrap();
    assert!(row.contains(" cbr (cbr 1, vbs 1) "), "{table}");
    assert!(row.contains("2/2 (100%)"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_show_on_a_cbr_cloud_names_the_service_and_every_field() {
    let (_vbs, cbr, path) = two_clouds().await;
    let config = path.display().to_string();
    trigger(&config, "cbr-nightly").await;
    let id = cbr.sim.cbr_backups(PROJECT)[0].id.clone();

    let out = run(&[
        "backup", "show", &id, "--config", &config, "--cloud", "cbr", "--format", "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["resource_id"], volume_id(2).as_str());

    let out = run(&["backup", "show", &id, "--config", &config, "--cloud", "cbr"]).await;
    let table = text(&out.stdout);
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[1].starts_with("service") && rows[1].ends_with("cbr"),
        "{table}"
    );
    for key in record.as_object().unwrap().keys() {
        assert!(
            rows.iter().any(|l| l.starts_with(&format!("{key} "))),
            "row for {key}: {table}"
        );
    }

    for (filter, expect) in [(["--vault", "sim-disks"], 1), (["--volume-id", "nope"], 0)] {
        let mut args = vec![
            "backups", "--config", &config, "--cloud", "cbr", "--format", "json",
        ];
        args.extend(filter);
        let out = run(&args).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{filter:?}: {}",
            text(&out.stderr)
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list.as_array().unwrap().len(), expect, "{filter:?}: {list}");
    }
    let out = run(&[
        "backups", "--config", &config, "--cloud", "cbr", "--vault", "nope",
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no CBR disk vault `nope`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "backups",
        "--config",
        &config,
        "--cloud",
        "vbs",
        "--vault",
        "sim-disks",
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "--vault on a VBS cloud is a usage error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_says_which_volumes_are_in_the_vault_and_what_happens_to_the_others() {
    let mut vault = disk_vault("sim-disks", &[1]);
    vault.policy_id = Some("5d6a0c8e-0f8e-4b8b-9d0e-6f6c1a2b3c4d".into());
    let world = World::start_cbr(
        vec![volume(1, None), volume(2, None), volume(3, None)],
        vec![vault],
        Duration::ZERO,
        Duration::ZERO,
    )
    .await;
    let policies = format!(
        "{}{}{}",
        cbr_policy_yaml(
            "strict",
            NEVER,
            &[volume_id(1), volume_id(2)],
            "    vault: sim-disks\n"
        ),
        cbr_policy_yaml(
            "adding",
            NEVER,
            &[volume_id(3)],
            "    vault: sim-disks\n    add_to_vault: true\n"
        ),
        cbr_policy_yaml("lost", NEVER, &[volume_id(1)], "    vault: no-such-vault\n"),
    );
    let path = world.write_config("", CBR_CLOUD, &policies);
    let config = path.display().to_string();

    let out = run(&["targets", "--config", &config, "--policy", "strict"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = |needle: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("  ") && l.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {stdout}"))
            .to_string()
    };
    assert!(
        stdout.contains("policy strict backs up through CBR into vault sim-disks"),
        "{stdout}"
    );
    assert!(line(&volume_id(1)).ends_with("in the vault"), "{stdout}");
    assert!(
        line(&volume_id(2)).contains("NOT in the vault: its job fails")
            && line(&volume_id(2)).contains("add_to_vault: true"),
        "{stdout}"
    );
    assert!(
        line("warning").contains("has its own backup policy 5d6a0c8e")
            && line("warning").contains("doubles the cost"),
        "{stdout}"
    );

    let out = run(&["targets", "--config", &config, "--policy", "adding"]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "  {}  NOT in the vault: the next run adds it",
            volume_id(3)
        )),
        "{stdout}"
    );

    let out = run(&["targets", "--config", &config, "--policy", "lost"]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("vault `no-such-vault` DOES NOT EXIST"),
        "{stdout}"
    );
    assert!(
        world.sim.cbr_backups(PROJECT).is_empty(),
        "targets changes nothing"
    );
}
