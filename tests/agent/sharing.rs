//! `share_to`: each available backup is shared with the listed projects,
//! confirmed by the share list and recorded; a share that keeps failing is
//! recorded as failed while the backup still counts as succeeded.

use crate::helper::sim::Scripted;
use crate::helper::{
    cbr_policy_yaml, disk_vault, fast, load, policy_yaml, volume, volume_id, Setup, World,
    CBR_CLOUD, PROJECT,
};
use vbs_agent::api::ClientSettings;
use vbs_agent::store::{JobStatus, Store};

const P1: &str = "11111111111111111111111111111111";
const P2: &str = "22222222222222222222222222222222";

fn shares(history: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(history).unwrap();
    let mut stmt = conn
        .prepare("SELECT to_project_id, status FROM backup_shares ORDER BY to_project_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn run(
    world: &World,
) -> (
    vbs_agent::store::JobRecord,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let policies = policy_yaml(
        "share",
        "0 0 3 1 1 *",
        &[volume_id(1)],
        &format!("    share_to: [{P1}, {P2}]\n"),
    );
    let path = world.write_config("", "", &policies);
    let settings = ClientSettings {
        max_retries: 1,
        ..fast()
    };
    let s = Setup::new(load(&path), settings);
    (s.run_once().await, s.config.history_path(), path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_are_shared_confirmed_and_listed() {
    let world = World::start(vec![volume(1, None)]).await;
    let (job, history, policy_file) = run(&world).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(
        shares(&history),
        [(P1.into(), "shared".into()), (P2.into(), "shared".into())]
    );

    let backup_id = job.backup_id.unwrap();
    let policy_file = policy_file.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
            .args([
                "shares",
                "--config",
                &policy_file,
                "--cloud",
                "sim",
                "--backup-id",
                &backup_id,
                "--format",
                "json",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut to: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["to_project_id"].as_str().unwrap())
        .collect();
    to.sort();
    assert_eq!(to, [P1, P2]);
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["from_project_id"] == PROJECT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_share_is_recorded_and_the_backup_still_succeeds() {
    let world = World::start(vec![volume(1, None)]).await;
    world.sim.script(Scripted {
        method: "POST".into(),
        path_contains: "os-vendor-backup-sharing".into(),
        status: 500,
        content_type: "application/json".into(),
        body: r#"{"computeFault": {"code": 500, "message": "sharing backend down"}}"#.into(),
        after_handling: false,
        times: 100,
        ..Default::default()
    });
    let (job, history, _) = run(&world).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(
        shares(&history),
        [(P1.into(), "failed".into()), (P2.into(), "failed".into())]
    );
    let events = Store::open_read_only(&history)
        .unwrap()
        .job_events(job.id)
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == "warning"
            && e.message
                .as_deref()
                .unwrap_or("")
                .contains("sharing backend down")),
        "{events:#?}"
    );
    assert!(world.sim.snapshots(PROJECT).is_empty(), "cleanup still ran");
}

/// On a CBR cloud a backup is shared through CBR's members: each project
/// is added once, confirmed by the member list and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cbr_backups_are_shared_through_members_and_recorded() {
    let world = World::start_cbr(
        vec![volume(1, None)],
        vec![disk_vault("sim-disks", &[1])],
        std::time::Duration::from_millis(200),
        std::time::Duration::ZERO,
    )
    .await;
    let policies = cbr_policy_yaml(
        "share",
        "0 0 3 1 1 *",
        &[volume_id(1)],
        &format!("    vault: sim-disks\n    share_to: [{P1}, {P2}]\n"),
    );
    let s = Setup::new(load(&world.write_config("", CBR_CLOUD, &policies)), fast());
    let job = s.run_once().await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
    assert_eq!(job.service(), "cbr");
    assert_eq!(
        shares(&s.config.history_path()),
        [(P1.into(), "shared".into()), (P2.into(), "shared".into())]
    );
    let backup = job.backup_id.unwrap();
    let members: Vec<String> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("backups/{backup}/members")))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        members.len(),
        1,
        "both projects added in one request: {members:?}"
    );
}
