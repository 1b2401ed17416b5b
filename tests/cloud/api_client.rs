//! The API client against the simulator: pagination, re-authentication,
//! retries where they are safe and not where they are not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helper::sim::Faults;
use crate::helper::{fast, volume, volume_id, World, TOKEN};
use vbs_agent::api::{
    CallObserver, CallRecord, ClientSettings, CloudClient, ErrorClass, NewBackup,
};

/// Remembers every attempt: its method, path, status and class.
#[derive(Default)]
pub(crate) struct Calls(Mutex<Vec<(String, String)>>);

impl CallObserver for Calls {
    fn on_call(&self, c: &CallRecord<'_>) {
        let status = c.status.map_or("-".to_string(), |s| s.to_string());
        self.0.lock().unwrap().push((
            format!("{} {status} {}", c.method, c.class),
            format!("{} {} {status} {}", c.method, c.path, c.class),
        ));
    }
}

impl Calls {
    /// The attempts so far as "METHOD STATUS CLASS", forgotten.
    pub(crate) fn take(&self) -> Vec<String> {
        self.drain().into_iter().map(|(short, _)| short).collect()
    }

    /// The attempts so far as "METHOD PATH STATUS CLASS", forgotten.
    pub(crate) fn take_with_paths(&self) -> Vec<String> {
        self.drain().into_iter().map(|(_, long)| long).collect()
    }

    fn drain(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

fn fast_retries() -> ClientSettings {
    ClientSettings {
        max_retries: 20,
        ..fast()
    }
}

fn client(world: &World, calls: &Arc<Calls>) -> CloudClient {
    client_with(world, calls, fast_retries())
}

fn client_with(world: &World, calls: &Arc<Calls>, settings: ClientSettings) -> CloudClient {
    let config = world.config("0 0 3 * * *", &[volume_id(1)], "", false);
    CloudClient::new(&config.clouds["sim"], settings)
        .unwrap()
        .with_observer(calls.clone())
}

async fn make_backup(client: &CloudClient, name: &str) -> String {
    crate::helper::make_backup(client, &volume_id(1), name).await
}

/// Asks for a backup of volume 1 that the cloud's faults refuse.
async fn refused_backup(client: &CloudClient) -> vbs_agent::api::ApiError {
    client
        .create_backup(&NewBackup {
            volume_id: &volume_id(1),
            snapshot_id: "x",
            name: "n",
            description: "t",
            force: false,
            incremental: false,
        })
        .await
        .unwrap_err()
}

#[tokio::test]
async fn name_lookup_follows_every_page() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let calls = Arc::new(Calls::default());
    let client = client(&world, &calls);
    let mut made = Vec::new();
    for _ in 0..230 {
        made.push(make_backup(&client, "same-name").await);
    }
    make_backup(&client, "same-name-but-longer").await;
    calls.take();

    let found = client
        .find_backups("same-name", &volume_id(1))
        .await
        .unwrap();
    let mut ids: Vec<String> = found.into_iter().map(|b| b.id).collect();
    ids.sort();
    made.sort();
    assert_eq!(ids, made, "every page, exact names only");
    assert_eq!(calls.take().len(), 3, "230 results in pages of 100");
}

#[tokio::test]
async fn a_refused_token_is_re_read_once() {
    let world = World::start(vec![volume(1, None)]).await;
    let calls = Arc::new(Calls::default());
    std::fs::write(world.path("token"), "expired-token\n").unwrap();
    let client = client(&world, &calls);

    let err = client
        .backup("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::Auth);
    assert_eq!(
        calls.take(),
        ["GET 401 auth", "GET 401 auth"],
        "one re-authentication, then give up"
    );

    // The token file is rotated: the next 401 picks the new token up.
    std::fs::write(world.path("token"), format!("{TOKEN}\n")).unwrap();
    let err = client
        .backup("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(calls.take(), ["GET 401 auth", "GET 404 permanent"]);
}

#[tokio::test]
async fn reads_are_retried_through_faults_but_creates_are_not_repeated() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let calls = Arc::new(Calls::default());
    let client = client(&world, &calls);
    let id = make_backup(&client, "faulty").await;
    calls.take();

    world.sim.set_faults(Faults {
        seed: 3,
        server_error_rate: 0.3,
        malformed_rate: 0.2,
        drop_rate: 0.1,
        ..Faults::default()
    });
    for _ in 0..20 {
        let b = client.backup(&id).await.expect("retried until it succeeds");
        assert_eq!(b.id, id);
    }
    let attempts = calls.take();
    assert!(
        attempts.iter().any(|a| a.ends_with("retryable")),
        "{attempts:?}"
    );
    assert!(
        attempts.iter().any(|a| a.ends_with("bad_answer")),
        "{attempts:?}"
    );

    world.sim.set_faults(Faults {
        seed: 3,
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let err = refused_backup(&client).await;
    assert_eq!(err.class, ErrorClass::Retryable);
    assert_eq!(
        calls.take().len(),
        1,
        "a POST with an unknown outcome is left to the engine's lookup by name"
    );

    world.sim.set_faults(Faults {
        seed: 3,
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let client = client_with(
        &world,
        &calls,
        ClientSettings {
            max_retries: 2,
            ..fast_retries()
        },
    );
    let err = refused_backup(&client).await;
    assert!(
        err.not_processed && err.retry_after == Some(Duration::from_secs(1)),
        "{err:?}"
    );
    assert_eq!(
        calls.take().len(),
        3,
        "a throttled POST was never processed and is sent again"
    );
}
