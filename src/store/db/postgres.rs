//! The PostgreSQL backend: one connection, as the SQLite backend has, on a
//! small runtime of its own so that the store's synchronous calls work from
//! any thread, inside tokio or not. A lost connection is opened again at
//! the next call; every call has a deadline, so a partition becomes an
//! error instead of a hang.
//!
//! TLS is on for every host but loopback, with the certificate verified
//! against the web's roots and the `ca_file` a managed database needs.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Statement};

use super::placeholders::to_dollars;
use super::{Dialect, Row, Sql, Value};
use crate::store::StoreError;

/// How long one statement may take before the call fails, by default.
pub const STATEMENT_DEADLINE: Duration = Duration::from_secs(10);
/// How long opening a connection may take.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// The SQLSTATE of a write the lease's fence refused.
pub const FENCED_SQLSTATE: &str = "VB001";

/// Where and how to reach the database. The URL holds the password, so it
/// is never logged: [`PgConfig::describe`] names the database without it.
#[derive(Clone)]
pub struct PgConfig {
    pub url: String,
    /// PEM roots for a server whose certificate no public root signs.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PgConfig {
    /// `user@host:port/dbname`, for messages.
    pub fn describe(&self) -> String {
        match self.url.parse::<Config>() {
            Ok(c) => {
                let host = c
                    .get_hosts()
                    .first()
                    .map(|h| match h {
                        Host::Tcp(h) => h.clone(),
                        Host::Unix(p) => p.display().to_string(),
                    })
                    .unwrap_or_default();
                let port = c.get_ports().first().copied().unwrap_or(5432);
                format!(
                    "postgres://{}@{host}:{port}/{}",
                    c.get_user().unwrap_or(""),
                    c.get_dbname().unwrap_or("")
                )
            }
            Err(_) => "a PostgreSQL URL that does not parse".into(),
        }
    }

    /// Whether the URL carries a password (which a command line would show
    /// to every user of the host).
    pub fn has_password(&self) -> bool {
        self.url
            .parse::<Config>()
            .is_ok_and(|c| c.get_password().is_some())
    }

    /// The parsed URL, with TLS required for any host but loopback.
    fn parse(&self) -> Result<Config, StoreError> {
        let mut config: Config = self
            .url
            .parse()
            .map_err(|e| StoreError::PgConfig(format!("the URL does not parse: {e}")))?;
        let local = config.get_hosts().iter().all(|h| match h {
            Host::Unix(_) => true,
            Host::Tcp(name) => {
                name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
        });
        match config.get_ssl_mode() {
            SslMode::Disable if !local => {
                return Err(StoreError::PgConfig(
                    "sslmode=disable is only for a database on this host; a remote one \
                     is reached over TLS with its certificate verified"
                        .into(),
                ))
            }
            SslMode::Disable => {}
            // `prefer` would fall back to plain text: never for a remote host.
            _ if !local => {
                config.ssl_mode(SslMode::Require);
            }
            _ => {}
        }
        config.connect_timeout(CONNECT_DEADLINE);
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("vbs-agent");
        Ok(config)
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &self.ca_file {
            let bad = |e: String| StoreError::PgConfig(format!("ca_file {}: {e}", path.display()));
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::PgConfig(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
    }
}

/// An open PostgreSQL history.
pub struct PgDb {
    rt: Runtime,
    config: Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    described: String,
    session: Mutex<Session>,
    /// How long one statement may take.
    deadline: Duration,
    /// The lease epoch this agent writes under; 0 for none (a writer
    /// outside the election).
    epoch: AtomicI64,
}

/// The live connection and what it has prepared.
#[derive(Default)]
struct Session {
    client: Option<Arc<Client>>,
    statements: HashMap<String, Statement>,
    /// The epoch the connection's `vbs.epoch` setting holds.
    epoch: Option<i64>,
}

impl PgDb {
    /// Connects (failing early when the database cannot be reached); each
    /// statement may take `deadline`.
    pub fn connect(pg: &PgConfig, deadline: Duration) -> Result<Self, StoreError> {
        let db = Self {
            rt: Runtime::start()?,
            deadline,
            config: pg.parse()?,
            tls: pg.tls()?,
            described: pg.describe(),
            session: Mutex::new(Session::default()),
            epoch: AtomicI64::new(0),
        };
        db.with(|_| Ok(()))?;
        Ok(db)
    }

    /// `user@host:port/dbname`, for messages.
    pub fn describe(&self) -> &str {
        &self.described
    }

    /// Sets the lease epoch every later write carries (0: none).
    pub fn set_epoch(&self, epoch: i64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    fn session(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut session = self.session();
        let mut on = self.ready(&mut session)?;
        let out = f(&mut on);
        on.fail_closed(out)
    }

    pub fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Sql) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut session = self.session();
        let mut on = self.ready(&mut session)?;
        let began = on.batch("BEGIN");
        on.fail_closed(began)?;
        match f(&mut on) {
            Ok(out) => {
                let committed = on.batch("COMMIT");
                on.fail_closed(committed)?;
                Ok(out)
            }
            Err(e) => {
                // A rollback that fails leaves nothing: the server drops an
                // unfinished transaction with its connection.
                if on.batch("ROLLBACK").is_err() {
                    on.session.client = None;
                }
                on.fail_closed(Err(e))
            }
        }
    }

    /// The session, connected and carrying the current epoch.
    fn ready<'s>(&'s self, session: &'s mut Session) -> Result<On<'s>, StoreError> {
        if session.client.as_ref().is_some_and(|c| c.is_closed()) {
            *session = Session::default();
        }
        if session.client.is_none() {
            let (config, tls) = (self.config.clone(), self.tls.clone());
            let client = block(&self.rt, self.deadline, async move {
                let (client, connection) = config.connect(tls).await?;
                tokio::spawn(connection);
                // A partitioned agent's open transaction would hold its
                // locks (the lease row's among them) until the server
                // notices the dead connection: end it soon instead.
                client
                    .batch_execute("SET idle_in_transaction_session_timeout = 5000")
                    .await?;
                Ok(client)
            })?;
            *session = Session {
                client: Some(Arc::new(client)),
                ..Session::default()
            };
        }
        let mut on = On {
            rt: &self.rt,
            deadline: self.deadline,
            session,
        };
        let epoch = self.epoch.load(Ordering::SeqCst);
        if on.session.epoch != Some(epoch) {
            let set = on.query(
                "SELECT set_config('vbs.epoch', ?1, false)",
                &[Value::Text(if epoch == 0 {
                    String::new()
                } else {
                    epoch.to_string()
                })],
            );
            on.fail_closed(set)?;
            on.session.epoch = Some(epoch);
        }
        Ok(on)
    }
}

/// The backend's own runtime, on a thread of its own: the connection's
/// driver runs there, and a store dropped inside another runtime stops it
/// without blocking that runtime.
struct Runtime {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Runtime {
    fn start() -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::PgConfig(format!("cannot start its runtime: {e}")))?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("vbs-postgres".into())
            .spawn(move || {
                // Ends when the sender is dropped with the store.
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| StoreError::PgConfig(format!("cannot start its thread: {e}")))?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }
}

/// Runs `fut` on the backend's runtime and waits for it on this thread.
fn block<T: Send + 'static>(
    rt: &Runtime,
    deadline: Duration,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
) -> Result<T, StoreError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.handle.spawn(async move {
        let out = tokio::time::timeout(deadline, fut).await;
        let _ = tx.send(out);
    });
    match rx.recv() {
        Ok(Ok(out)) => out.map_err(StoreError::from),
        Ok(Err(_)) => Err(StoreError::PgTimeout(deadline)),
        Err(_) => Err(StoreError::PgConfig("its runtime stopped".into())),
    }
}

/// Statements on the session's connection.
struct On<'s> {
    rt: &'s Runtime,
    deadline: Duration,
    session: &'s mut Session,
}

impl On<'_> {
    fn client(&self) -> Result<Arc<Client>, StoreError> {
        self.session
            .client
            .clone()
            .ok_or_else(|| StoreError::PgConfig("no connection".into()))
    }

    /// Forgets a connection that failed in a way that may have broken it
    /// (a deadline passed mid-statement, or the server went away), so the
    /// next call opens a new one.
    fn fail_closed<T>(&mut self, out: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::PgTimeout(_)) = &out {
            *self.session = Session::default();
        } else if self.session.client.as_ref().is_some_and(|c| c.is_closed()) {
            *self.session = Session::default();
        }
        out
    }

    fn prepared(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(stmt) = self.session.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let client = self.client()?;
        let text = to_dollars(sql);
        let stmt = block(self.rt, self.deadline, async move {
            client.prepare(&text).await
        })?;
        self.session
            .statements
            .insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

impl On<'_> {
    /// Runs `op` with the prepared statement, the connection and the
    /// arguments on the backend's runtime.
    fn run<T, Fut>(
        &mut self,
        sql: &str,
        args: &[Value],
        op: impl FnOnce(Arc<Client>, Statement, Vec<Value>) -> Fut,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send + 'static,
    {
        let stmt = self.prepared(sql);
        let stmt = self.fail_closed(stmt)?;
        let client = self.client()?;
        let out = block(self.rt, self.deadline, op(client, stmt, args.to_vec()));
        self.fail_closed(out)
    }
}

/// The arguments as the driver takes them.
fn refs(args: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl Sql for On<'_> {
    fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        self.run(sql, args, |client, stmt, args| async move {
            client.execute(&stmt, &refs(&args)).await
        })
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        self.run(sql, args, |client, stmt, args| async move {
            let rows = client.query(&stmt, &refs(&args)).await?;
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Row)
                })
                .collect::<Result<Vec<_>, _>>()
        })
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.client()?;
        let sql = sql.to_string();
        let out = block(self.rt, self.deadline, async move {
            client.batch_execute(&sql).await
        });
        self.fail_closed(out)
    }

    fn columns(&mut self, sql: &str) -> Result<Vec<String>, StoreError> {
        let stmt = self.prepared(sql);
        let stmt = self.fail_closed(stmt)?;
        Ok(stmt
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect())
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}
