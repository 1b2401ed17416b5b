//! The partition proxy of the harness (`helper::proxy`) against an echo
//! server: bytes pass, a cut stops live connections and holds new ones
//! unanswered, a heal lets connections through again.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::helper::proxy::Proxy;

/// An upper bound only: a slow machine makes the test slower, never wrong.
const BOUND: Duration = Duration::from_secs(60);

/// A server on 127.0.0.1 that writes back what it reads.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Writes `msg` and reads as many bytes back.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    timeout(BOUND, stream.read_exact(&mut back))
        .await
        .expect("no echo through the proxy")
        .unwrap();
    back
}

async fn connect(proxy: &Proxy) -> TcpStream {
    timeout(BOUND, TcpStream::connect(proxy.addr()))
        .await
        .expect("connect to the proxy")
        .unwrap()
}

#[tokio::test]
async fn bytes_pass_until_cut_and_again_after_heal() {
    let proxy = Proxy::start(echo_server().await).unwrap();

    let mut live = connect(&proxy).await;
    assert_eq!(round_trip(&mut live, b"ping").await, b"ping");
    assert_eq!(round_trip(&mut live, b"second").await, b"second");

    proxy.cut();
    assert!(proxy.is_cut());
    // The live connection is closed; what it writes now never reaches the
    // echo server, so nothing comes back: only the end of the stream (or a
    // reset, or a failed write, as the closing races with the write).
    let _ = live.write_all(b"after the cut").await;
    let mut buf = [0u8; 64];
    match timeout(BOUND, live.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{n} bytes came through a cut proxy"),
        Err(_) => panic!("the live connection was not closed by the cut"),
    }

    // A connection made while cut is accepted but never answered. No byte
    // arrives in the short wait; a slow machine could only make this pass.
    let mut held = connect(&proxy).await;
    held.write_all(b"held").await.unwrap();
    let mut one = [0u8; 4];
    assert!(
        timeout(Duration::from_millis(300), held.read(&mut one))
            .await
            .is_err(),
        "a connection made during the cut was answered"
    );

    proxy.heal();
    assert!(!proxy.is_cut());
    let mut fresh = connect(&proxy).await;
    assert_eq!(round_trip(&mut fresh, b"pong").await, b"pong");

    // The held connection goes through once healed, its early bytes first.
    let mut back = [0u8; 4];
    timeout(BOUND, held.read_exact(&mut back))
        .await
        .expect("the held connection was not forwarded after the heal")
        .unwrap();
    assert_eq!(&back, b"held");
    assert_eq!(round_trip(&mut held, b"more").await, b"more");
}

#[tokio::test]
async fn a_second_cut_closes_connections_made_after_the_first_heal() {
    let proxy = Proxy::start(echo_server().await).unwrap();
    proxy.cut();
    proxy.heal();
    let mut live = connect(&proxy).await;
    assert_eq!(round_trip(&mut live, b"one").await, b"one");

    proxy.cut();
    let mut buf = [0u8; 8];
    match timeout(BOUND, live.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{n} bytes came through a cut proxy"),
        Err(_) => panic!("the live connection was not closed by the second cut"),
    }
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let proxy = Proxy::start(echo_server().await).unwrap();
    let mut live = connect(&proxy).await;
    assert_eq!(round_trip(&mut live, b"x").await, b"x");
    drop(proxy);
    let mut buf = [0u8; 8];
    match timeout(BOUND, live.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("{n} bytes after the proxy was dropped"),
        Err(_) => panic!("the connection outlived the proxy"),
    }
}
