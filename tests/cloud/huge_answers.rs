//! Answers and messages of any size: a body beyond the 16 MiB the agent
//! reads is a `bad_answer` and is not read whole, and a `fail_reason` of
//! megabytes is stored, logged and shown cut to 4 KiB with its length, so
//! the history stays small and `history` reads it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::Router;

use crate::helper::sim::VolumeFault;
use crate::helper::{agent_async, text, volume, volume_id, wait_for, World};
use vbs_agent::api::{ClientSettings, CloudClient, ErrorClass};
use vbs_agent::bounded::MAX_MESSAGE_BYTES;
use vbs_agent::http::MAX_BODY_BYTES;

/// The body the flooding server sends: 100 MB.
const FLOOD_BYTES: u64 = 100_000_000;

/// What one answer's body stream handed to the server to send.
#[derive(Default)]
struct Sent {
    bytes: AtomicU64,
    /// The stream was dropped: the server stopped sending.
    over: AtomicBool,
}

/// [`FLOOD_BYTES`] of `x`, 64 KiB at a time, counted as they are taken.
struct Flood {
    sent: Arc<Sent>,
    left: u64,
}

impl futures_core::Stream for Flood {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let n = self.left.min(64 * 1024);
        if n == 0 {
            return Poll::Ready(None);
        }
        self.left -= n;
        self.sent.bytes.fetch_add(n, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Bytes::from(vec![b'x'; n as usize]))))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.sent.over.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone, Default)]
struct Answers {
    sent: Arc<Mutex<Vec<Arc<Sent>>>>,
    /// Declare the length in `Content-Length`.
    declared: bool,
}

async fn flood(State(answers): State<Answers>) -> Response {
    let sent = Arc::new(Sent::default());
    answers.sent.lock().unwrap().push(Arc::clone(&sent));
    let body = Body::from_stream(Flood {
        sent,
        left: FLOOD_BYTES,
    });
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    if answers.declared {
        headers.insert(header::CONTENT_LENGTH, FLOOD_BYTES.into());
    }
    response
}

/// Asks a server answering every request with 100 MB for a backup; returns
/// the error and what each answer's stream handed over before it stopped.
async fn ask_flooding_server(declared: bool) -> (vbs_agent::api::ApiError, Vec<u64>) {
    let world = World::start(vec![volume(1, None)]).await;
    let answers = Answers {
        declared,
        ..Answers::default()
    };
    let app = Router::new().fallback(flood).with_state(answers.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = world.config("0 0 3 * * *", &[volume_id(1)], "", false);
    let mut cloud = config.clouds["sim"].clone();
    cloud.endpoints.backup = Some(base.parse().unwrap());
    let settings = ClientSettings {
        retry_min_delay: std::time::Duration::from_millis(5),
        retry_max_delay: std::time::Duration::from_millis(20),
        ..ClientSettings::default()
    };
    let client = CloudClient::new(&cloud, settings).unwrap();
    let err = client.backup("b-1").await.expect_err("no backup in 100 MB");

    wait_for("the server stopped sending", || {
        let sent = answers.sent.lock().unwrap();
        sent.iter().all(|s| s.over.load(Ordering::SeqCst))
    })
    .await;
    let sent = answers.sent.lock().unwrap();
    (
        err,
        sent.iter()
            .map(|s| s.bytes.load(Ordering::SeqCst))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_body_without_a_length_is_a_bad_answer_and_not_read_whole() {
    let (err, sent) = ask_flooding_server(false).await;
    assert_eq!(err.class, ErrorClass::BadAnswer, "{err}");
    assert!(
        err.message
            .contains("longer than the 16 MiB the agent reads; reading stopped there"),
        "{err}"
    );
    // The agent stopped at 16 MiB and hung up: what the server managed to
    // send is that and what the sockets' buffers took, far from 100 MB.
    assert!(!sent.is_empty());
    for bytes in sent {
        assert!(bytes > MAX_BODY_BYTES as u64, "{bytes}");
        assert!(bytes < FLOOD_BYTES / 2, "{bytes} bytes sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_content_length_is_a_bad_answer_at_once() {
    let (err, sent) = ask_flooding_server(true).await;
    assert_eq!(err.class, ErrorClass::BadAnswer, "{err}");
    assert!(
        err.message.contains(
            "the answer's body is 100000000 bytes, more than the 16 MiB the agent reads; not read"
        ),
        "{err}"
    );
    for bytes in sent {
        assert!(bytes < FLOOD_BYTES / 2, "{bytes} bytes sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_12_mb_fail_reason_is_stored_cut_and_history_reads_it() {
    // Three-byte characters: cuts must fall between them.
    let reason = "€".repeat(4_000_000);
    let fault = VolumeFault::BackupError {
        fail_reason: reason.clone(),
    };
    let world = World::start(vec![volume(1, Some(fault))]).await;
    let config = world.config("0 0 3 1 1 *", &[volume_id(1)], "", false);
    let policy = world.path("policy.yaml").display().to_string();
    let args = ["trigger", "--config", &policy, "--policy", "e2e"];
    let out = agent_async(args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let marker = format!("… [truncated, {} bytes in all]", reason.len());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&marker),
        "{}",
        &stdout[..stdout.len().min(2000)]
    );
    assert!(
        out.stdout.len() + out.stderr.len() < 64 * 1024,
        "output of {} + {} bytes",
        out.stdout.len(),
        out.stderr.len()
    );

    let history = config.history_path();
    let db = rusqlite::Connection::open(&history).unwrap();
    let stored: String = db
        .query_row("SELECT fail_reason FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert!(stored.len() <= MAX_MESSAGE_BYTES, "{}", stored.len());
    assert!(
        stored.starts_with("€€€") && stored.ends_with(&marker),
        "{stored}"
    );
    let longest: i64 = db
        .query_row(
            "SELECT max(length(CAST(message AS BLOB))) FROM events",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(longest <= MAX_MESSAGE_BYTES as i64, "{longest}");
    drop(db);
    let on_disk: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut path = history.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).ok()
        })
        .map(|m| m.len())
        .sum();
    assert!(on_disk < 2 * 1024 * 1024, "history of {on_disk} bytes");

    let db_arg = history.display().to_string();
    let shown = agent_async(vec!["history".into(), "--db".into(), db_arg]).await;
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    assert!(text(&shown.stdout).contains(&marker));
}
