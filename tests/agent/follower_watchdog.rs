//! A follower under systemd (needs `VBS_PG_URL`): the unit has
//! `WatchdogSec=`, so an agent that only follows must ping the watchdog
//! too, or systemd kills it and restarts it over and over, and the pair
//! has no agent standing by meanwhile.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::helper::ha::{self, history_section, pid_of, LeaseWatch};
use crate::helper::{policy_yaml, signal, volume, volume_id, wait_for, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_pings_the_systemd_watchdog() {
    let Some(db) = ha::scratch() else { return };
    let world = World::start(vec![volume(1, None)]).await;
    let policy = world.write_config(
        &history_section("6s"),
        "",
        &policy_yaml("ha", "0 0 3 1 1 *", &[volume_id(1)], ""),
    );
    let watch = LeaseWatch::start(&db.config);
    let mut leader = ha::spawn(&policy, &db.config, &world.path("leader.log"));
    wait_for("the first agent to lead", || {
        watch
            .now()
            .is_some_and(|r| r.live && pid_of(&r.holder) == leader.id())
    })
    .await;

    let socket_path = world.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut follower = ha::Agent(
        ha::command_as(&policy, &db.config.url, None, &world.path("follower.log"))
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "400000")
            .spawn()
            .unwrap(),
    );
    let received = tokio::task::spawn_blocking(move || {
        let mut received = String::new();
        let mut buf = [0u8; 4096];
        // Pings every 200 ms: a dozen within a few seconds of following.
        while !(received.contains("STATUS=following")
            && received.matches("WATCHDOG=1").count() >= 12)
        {
            let n = socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!("no notification within 30 s ({e}); so far:\n{received}")
            });
            received.push_str(&String::from_utf8_lossy(&buf[..n]));
            received.push('\n');
        }
        received
    })
    .await
    .unwrap();
    assert!(
        watch
            .now()
            .is_some_and(|r| pid_of(&r.holder) == leader.id()),
        "the follower took the lease: {received}"
    );
    for agent in [&mut follower, &mut leader] {
        signal(agent, "-TERM");
        assert!(agent.wait().unwrap().success());
    }
}
