//! The agent as systemd runs it: SIGHUP reloads the policy file (an
//! invalid one, an alias bomb among them, is rejected and the running
//! policies stay), SIGTERM stops it with exit code 0.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helper::{policy_yaml, volume, volume_id, wait_for, World};
use chrono::Utc;
use vbs_agent::store::Store;

fn kill(pid: u32, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_valid_file_and_rejects_an_invalid_one() {
    let world = World::start(vec![volume(1, None), volume(3, None)]).await;
    let first = policy_yaml("alpha", "*/2 * * * * *", &[volume_id(1)], "");
    let path = world.write_config("", "", &first);
    let history = world.path("state/history.db");
    let log = world.path("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let policies_seen = |since: chrono::DateTime<Utc>| -> Vec<String> {
        Store::open_read_only(&history)
            .and_then(|s| s.recent_jobs(1000))
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j.started_at > since && j.finished_at.is_some())
            .map(|j| j.policy)
            .collect()
    };
    let t0 = Utc::now();
    wait_for("alpha to run", || {
        policies_seen(t0).contains(&"alpha".to_string())
    })
    .await;

    // A valid change: a second policy appears.
    let both = format!(
        "{first}{}",
        policy_yaml("beta", "*/2 * * * * *", &[volume_id(3)], "")
    );
    world.write_config("", "", &both);
    kill(agent.id(), "-HUP");
    let t1 = Utc::now();
    wait_for("beta to run after the reload", || {
        policies_seen(t1).contains(&"beta".to_string())
    })
    .await;

    // An invalid file, then a "billion laughs" (refused before it is
    // expanded): each rejected, both policies keep running.
    let bomb = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/config-errors/alias-bomb.yaml"
    );
    for bad in [
        "policies: [this is: not valid\n".to_string(),
        std::fs::read_to_string(bomb).unwrap(),
    ] {
        std::fs::write(&path, bad).unwrap();
        kill(agent.id(), "-HUP");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let since = Utc::now();
        wait_for("both policies to keep running", || {
            let seen = policies_seen(since);
            seen.contains(&"alpha".to_string()) && seen.contains(&"beta".to_string())
        })
        .await;
    }

    kill(agent.id(), "-TERM");
    let status = agent.wait().unwrap();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("policy file reloaded"), "{log}");
    assert!(
        log.contains("policy file rejected; the running policies stay"),
        "{log}"
    );
    assert!(
        log.contains("policy.yaml:2:1: invalid YAML"),
        "the rejection names file and line: {log}"
    );
    assert!(
        log.contains("policy.yaml:9:45: this alias makes the document more than 100000 YAML nodes"),
        "the bomb is refused at its alias: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;

    let world = World::start(vec![volume(1, None)]).await;
    let path = world.write_config(
        "",
        "",
        &policy_yaml("alpha", "0 0 3 1 1 *", &[volume_id(1)], ""),
    );
    let socket_path = world.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(["run", "--config"])
        .arg(&path)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut received = String::new();
    let mut buf = [0u8; 4096];
    let recv = |received: &mut String, buf: &mut [u8]| {
        let n = socket.recv(buf).expect("a notification within 30 s");
        received.push_str(&String::from_utf8_lossy(&buf[..n]));
        received.push('\n');
    };
    while !(received.contains("READY=1") && received.matches("WATCHDOG=1").count() >= 2) {
        recv(&mut received, &mut buf);
    }
    kill(agent.id(), "-TERM");
    while !received.contains("STOPPING=1") {
        recv(&mut received, &mut buf);
    }
    assert!(agent.wait().unwrap().success());
    assert!(
        received.contains("STATUS=1 policies scheduled"),
        "{received}"
    );
}
