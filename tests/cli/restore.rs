//! `vbs-agent restore` as an operator runs it: into a new volume against
//! the simulator, and refusing to overwrite a volume nobody confirmed.

use crate::helper::{
    agent_env, load, make_backup, policy_yaml, text, volume, volume_id, World, PROJECT,
};
use vbs_agent::store::Store;

/// A world with one backed-up volume and a policy file over it; the
/// backup's id and the file's path.
async fn backed_up() -> (World, String, String) {
    let world = World::start_instant(vec![volume(1, None), volume(3, None)]).await;
    let policies = policy_yaml("db", "0 30 1 * * *", &[volume_id(1)], "");
    let path = world.write_config("", "", &policies);
    let config = load(&path);
    let client =
        vbs_agent::api::CloudClient::new(&config.clouds["sim"], crate::helper::fast()).unwrap();
    let backup = make_backup(&client, &volume_id(1), "by-hand").await;
    (world, backup, path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_into_a_new_volume_prints_the_volume_and_records_who_asked() {
    let (world, backup, config) = backed_up().await;
    let args = [
        "restore",
        &backup,
        "--config",
        &config,
        "--cloud",
        "sim",
        "--new-volume",
        "--name",
        "db-restored",
    ];
    let out = agent_env(&args, &[("USER", "ops-alice"), ("SUDO_USER", "")]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("outcome   succeeded"), "{stdout}");
    let restored = world
        .sim
        .volumes(PROJECT)
        .into_iter()
        .find(|v| v.name.as_deref() == Some("db-restored"))
        .expect("the new volume");
    assert!(
        stdout.contains(&format!("volume    {}", restored.id)),
        "{stdout}"
    );
    assert_eq!(restored.metadata.get("src_backup_id"), Some(&backup));

    let store = Store::open_read_only(&world.path("state").join("history.db")).unwrap();
    let job = store.recent_jobs(10).unwrap().remove(0);
    assert_eq!(
        (job.policy.as_str(), job.kind.as_str()),
        ("restore.manual", "restore")
    );
    assert_eq!(
        store.restore_columns(job.id).unwrap().requested_by,
        "ops-alice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_over_an_existing_volume_needs_a_confirmation() {
    let (world, backup, config) = backed_up().await;
    let target = volume_id(3);
    let args = [
        "restore",
        &backup,
        "--config",
        &config,
        "--cloud",
        "sim",
        "--to-volume",
        &target,
    ];
    // Not a terminal, no --yes: nothing happens.
    let out = agent_env(&args, &[]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("was not confirmed"),
        "{}",
        text(&out.stderr)
    );
    let untouched = world.sim.volumes(PROJECT);
    assert!(untouched
        .iter()
        .all(|v| !v.metadata.contains_key("src_backup_id")));

    let mut confirmed = args.to_vec();
    confirmed.push("--yes");
    let out = agent_env(&confirmed, &[]).await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    let restored = world
        .sim
        .volumes(PROJECT)
        .into_iter()
        .find(|v| v.id == target)
        .unwrap();
    assert_eq!(restored.metadata.get("src_backup_id"), Some(&backup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_of_a_backup_that_does_not_exist_says_so() {
    let (_world, _backup, config) = backed_up().await;
    let args = [
        "restore",
        "5a5a5a5a-0000-4000-8000-000000000000",
        "--config",
        &config,
        "--cloud",
        "sim",
        "--new-volume",
    ];
    let out = agent_env(&args, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("restoring backup 5a5a5a5a") && stderr.contains("404"),
        "{stderr}"
    );
}
