//! `vbs-agent backups` and `vbs-agent backup show`: the cloud's own view of
//! its backups, through the binary, against the simulator.

use crate::helper::{agent_async, text};
use crate::helper::{make_backup, volume, volume_id, World, PROJECT};
use serde_json::Value;
use vbs_agent::api::{ClientSettings, CloudClient};

/// A world with `n` backups of volume 1 named `nightly-K` and the policy file's path.
async fn world_with_backups(n: usize) -> (World, String, Vec<String>) {
    let world = World::start_instant(vec![volume(1, None), volume(2, None)]).await;
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);
    let client = CloudClient::new(&config.clouds["sim"], ClientSettings::default()).unwrap();
    let mut ids = Vec::new();
    for k in 0..n {
        ids.push(make_backup(&client, &volume_id(1), &format!("nightly-{k}")).await);
    }
    let path = world.path("policy.yaml").display().to_string();
    (world, path, ids)
}

fn ids_of(json: &str) -> Vec<String> {
    let list: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect()
}

/// `vbs-agent backups` on the simulated cloud with `extra` arguments.
async fn backups(path: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["backups", "--config", path, "--cloud", "sim"];
    args.extend(extra);
    agent_async(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_lists_every_page_and_limit_caps_the_total() {
    let (world, path, mut made) = world_with_backups(130).await;
    made.sort();

    let before = world.sim.request_count();
    let out = backups(&path, &["--format", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        world.sim.request_count() - before,
        2,
        "130 backups in pages of 100, the second asked for by marker"
    );
    let mut listed = ids_of(&text(&out.stdout));
    listed.sort();
    assert_eq!(listed, made);
    let first: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(
        first[0]["links"][0]["href"].as_str().is_some(),
        "links kept"
    );

    let out = backups(&path, &["--format", "json", "--limit", "110"]).await;
    let limited = ids_of(&text(&out.stdout));
    assert_eq!(limited.len(), 110, "--limit is the total, over two pages");
    let mut distinct = limited.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 110);

    let table = text(&backups(&path, &["--name", "nightly-7"]).await.stdout);
    assert!(table.starts_with("backup id"), "{table}");
    assert!(
        table.contains("nightly-7") && table.ends_with("1 backup(s)\n"),
        "{table}"
    );
    let other = volume_id(2);
    for filter in [["--volume-id", other.as_str()], ["--status", "error"]] {
        let out = backups(&path, &filter).await;
        assert!(text(&out.stdout).ends_with("0 backup(s)\n"), "{filter:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_show_prints_every_field_the_cloud_sent() {
    let (_world, path, made) = world_with_backups(1).await;
    let id = &made[0];

    let out = agent_async(&[
        "backup", "show", id, "--config", &path, "--cloud", "sim", "--format", "json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["os-backup-project-attr:project_id"], PROJECT);
    assert_eq!(record["service_metadata"], Value::Null);
    assert!(
        record.as_object().unwrap().contains_key("service_metadata"),
        "null fields are part of the record"
    );
    assert_eq!(record["status"], "available");

    let out = agent_async(&["backup", "show", id, "--config", &path, "--cloud", "sim"]).await;
    let table = text(&out.stdout);
    for key in record.as_object().unwrap().keys() {
        assert!(
            table.lines().any(|l| l.starts_with(&format!("{key} "))),
            "row for {key}: {table}"
        );
    }
    assert!(table
        .lines()
        .any(|l| l.starts_with("service_metadata") && l.ends_with("null")));
    assert!(table
        .lines()
        .any(|l| l.starts_with("os-backup-project-attr:project_id") && l.ends_with(PROJECT)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_backup_or_cloud_is_named() {
    let (_world, path, _) = world_with_backups(0).await;
    let gone = "7d7c6fbe-d7ee-4b4d-8bae-bdd08b5604bb";
    let out = agent_async(&["backup", "show", gone, "--config", &path, "--cloud", "sim"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(gone) && stderr.contains("404"), "{stderr}");

    let out = agent_async(&["backups", "--config", &path, "--cloud", "prod"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no cloud `prod`"),
        "{}",
        text(&out.stderr)
    );
}
