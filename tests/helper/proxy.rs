//! A TCP proxy on 127.0.0.1 that a test can cut off from its target and
//! heal again: a network partition between the agent and a server (the
//! PostgreSQL history, the cloud) without touching either.
//!
//! While healed it forwards every connection to the target. [`Proxy::cut`]
//! closes every live connection and forwards nothing read after it; a
//! connection made while cut is accepted and held, never answered, so the
//! client sees what a partition gives it: no refusal, only time-outs. Once
//! [`Proxy::heal`]ed, new connections are forwarded again, and so are held
//! ones whose clients are still there (as TCP retransmits after a partition).
//!
//! The proxy runs on a thread and a runtime of its own, so it serves a test
//! on any runtime, on a paused clock or blocked in a synchronous call alike.
//! Dropping the [`Proxy`] closes its port and every connection.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The state every connection watches.
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    cut: bool,
    /// Counts the cuts: a connection forwarding since epoch `n` ends when
    /// it changes.
    epoch: u64,
    /// The proxy is dropped: everything ends.
    closed: bool,
}

/// A proxy from [`Proxy::addr`] to one target; see the module's doc.
pub struct Proxy {
    addr: SocketAddr,
    link: watch::Sender<Link>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on an ephemeral port of 127.0.0.1 and forwards to `target`.
    pub fn start(target: SocketAddr) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (link, watching) = watch::channel(Link::default());
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{addr}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, target, watching).await,
                        Err(e) => eprintln!("proxy {addr}: {e}"),
                    }
                });
                // Dropping the runtime ends every connection's task.
            })?;
        Ok(Self {
            addr,
            link,
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Partitions: closes every live connection, forwards no byte read
    /// from now on, and holds new connections unanswered until
    /// [`Proxy::heal`].
    pub fn cut(&self) {
        self.link.send_modify(|l| {
            l.cut = true;
            l.epoch += 1;
        });
    }

    /// Forwards again: new connections, and those held since the cut.
    pub fn heal(&self) {
        self.link.send_modify(|l| l.cut = false);
    }

    /// Whether the proxy is cut now.
    pub fn is_cut(&self) -> bool {
        self.link.borrow().cut
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.link.send_modify(|l| l.closed = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, link: watch::Receiver<Link>) {
    let mut closing = link.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(connection(client, target, link.clone()));
                }
                Err(e) => eprintln!("proxy: accept: {e}"),
            },
            _ = closing.wait_for(|l| l.closed) => return,
        }
    }
}

/// One client: held while cut, then forwarded until the next cut.
async fn connection(client: TcpStream, target: SocketAddr, mut link: watch::Receiver<Link>) {
    let epoch = match link.wait_for(|l| l.closed || !l.cut).await {
        Ok(l) if !l.closed => l.epoch,
        _ => return,
    };
    let Ok(upstream) = TcpStream::connect(target).await else {
        return; // the client sees its connection closed, as from a target that is down
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let forward = async {
        tokio::try_join!(
            pump(client_read, upstream_write, &link, epoch),
            pump(upstream_read, client_write, &link, epoch),
        )
    };
    let mut ended = link.clone();
    tokio::select! {
        _ = forward => {}
        _ = ended.wait_for(|l| l.closed || l.epoch != epoch) => {}
    }
    // Both sockets are dropped here: each peer sees its connection closed.
}

/// Copies `from` to `to` while the link stays in `epoch`; a chunk read after
/// a cut is dropped with the connection, never written.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    link: &watch::Receiver<Link>,
    epoch: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        let now = *link.borrow();
        if now.closed || now.epoch != epoch {
            return Err(io::Error::other("cut"));
        }
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}
