//! Answers of any size: a body beyond the 16 MiB the agent reads is a
//! `bad_answer` and is not read whole.

mod common;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::Router;

use common::{volume, volume_id, wait_for, World};
use vbs_agent::api::{ClientSettings, CloudClient, ErrorClass};
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
