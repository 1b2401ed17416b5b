//! Two agents sharing a PostgreSQL history, for the HA tests: a scratch
//! database on the server of `VBS_PG_URL` (skipped, with one line, without
//! it), agents as child processes, each with a cloud token of its own when
//! a test needs to tell their calls apart, the database behind a partition
//! proxy, and the lease row read directly, once or watched all along.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vbs_agent::naming::attempt_name;
use vbs_agent::store::db::{PgConfig, PgDb};
use vbs_agent::store::scratch::ScratchDatabase;
use vbs_agent::store::{JobRecord, JobStatus, Store};

use super::proxy::Proxy;
use super::sim::{LedgerEntry, RequestRecord};
use super::{names_made_twice, policy_yaml, signal, snapshot_ids, token_env_auth, wait_for, World};

/// The environment variable the agents read their history URL from.
pub const URL_ENV: &str = "VBS_HA_HISTORY_URL";

/// The environment variable the agents of [`write_policy`] read their cloud
/// token from: one policy file for both (as the lease wants), a token for
/// each, as two hosts would each have a credential of their own.
pub const TOKEN_ENV: &str = "VBS_HA_CLOUD_TOKEN";

/// A scratch database, or `None` (said once) when there is no server.
pub fn scratch() -> Option<ScratchDatabase> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match ScratchDatabase::from_env() {
        Some(db) => Some(db.expect("a scratch database on VBS_PG_URL")),
        None => {
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED PostgreSQL tests: VBS_PG_URL is not set; start one with `bash tests/postgres/setup.sh start` and export the VBS_PG_URL it prints"
                );
            });
            None
        }
    }
}

/// The `history:` section for agents reading the URL from [`URL_ENV`].
pub fn history_section(lease_ttl: &str) -> String {
    format!("history:\n  postgres:\n    url_env: {URL_ENV}\n    lease_ttl: {lease_ttl}\n")
}

/// Writes the policy file of agents that read their cloud token from
/// [`TOKEN_ENV`] (see [`spawn_as`]).
pub fn write_policy(world: &World, top: &str, policies: &str) -> std::path::PathBuf {
    let clouds = world.clouds_yaml_auth(&token_env_auth(TOKEN_ENV), "");
    world.write_config_clouds(top, &clouds, policies)
}

/// Starts `vbs-agent run` on `policy` with the history at `db`, its log
/// appended to `log`.
/// An agent started by a test, killed when dropped: a test that fails
/// halfway leaves no agent running behind it.
pub struct Agent(pub Child);

impl std::ops::Deref for Agent {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Agent {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Already gone after a test's own stop; nothing to report then.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(policy: &Path, db: &PgConfig, log: &Path) -> Agent {
    spawn_as(policy, &db.url, None, log)
}

/// Starts `vbs-agent run` on `policy` with the history at `url` and, for a
/// policy file from [`write_policy`], the cloud token `token`; its log
/// appended to `log`.
pub fn spawn_as(policy: &Path, url: &str, token: Option<&str>, log: &Path) -> Agent {
    Agent(
        command_as(policy, url, token, log)
            .spawn()
            .expect("agent starts"),
    )
}

/// The command [`spawn_as`] runs, for a test to add to.
pub fn command_as(policy: &Path, url: &str, token: Option<&str>, log: &Path) -> Command {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vbs-agent"));
    command
        .args(["run", "--config"])
        .arg(policy)
        .env("RUST_LOG", "info")
        .env(URL_ENV, url)
        .envs(token.map(|t| (TOKEN_ENV, t)))
        .stdout(Stdio::null())
        .stderr(log);
    command
}

/// The lease row: holder, epoch, and whether it is live (`None` before
/// the first agent migrated the database or took the lease).
pub fn lease(db: &PgDb) -> Option<(String, i64, bool)> {
    lease_row(db).map(|r| (r.holder, r.epoch, r.live))
}

/// The lease row as the database holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    pub holder: String,
    pub epoch: i64,
    /// Whether it has not expired yet, on the database's clock.
    pub live: bool,
    /// Until when it lasts, as its holder last wrote it.
    pub expires_at: DateTime<Utc>,
}

/// The lease row (`None` before the first agent took the lease, or while
/// the database cannot be read).
pub fn lease_row(db: &PgDb) -> Option<LeaseRow> {
    let row = db
        .with(|c| {
            c.query_opt(
                "SELECT holder, epoch, expires_at > now(),
                        (EXTRACT(EPOCH FROM expires_at) * 1000000)::bigint
                   FROM leader_lease WHERE name = 'leader'",
                &[],
            )
        })
        .ok()
        .flatten()?;
    Some(LeaseRow {
        holder: row.get(0).unwrap(),
        epoch: row.get(1).unwrap(),
        live: row.get(2).unwrap(),
        expires_at: DateTime::from_timestamp_micros(row.get(3).unwrap()).unwrap(),
    })
}

/// The lease row read every 50 ms by a thread of its own, on a connection
/// of its own, from [`LeaseWatch::start`] until dropped: every row that
/// differs from the one before, with when it was first seen. A row stays
/// until the next renewal or takeover (a second or more), so none that
/// lasts is missed: the last expiry each epoch wrote is among them.
pub struct LeaseWatch {
    seen: Arc<Mutex<Vec<(Instant, LeaseRow)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseWatch {
    pub fn start(db: &PgConfig) -> Self {
        let conn = PgDb::connect(db, Duration::from_secs(10)).unwrap();
        let seen = Arc::new(Mutex::new(Vec::<(Instant, LeaseRow)>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                if let Some(row) = lease_row(&conn) {
                    let mut log = log.lock().unwrap();
                    if log.last().is_none_or(|(_, last)| *last != row) {
                        log.push((Instant::now(), row));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The row seen last.
    pub fn now(&self) -> Option<LeaseRow> {
        self.seen.lock().unwrap().last().map(|(_, r)| r.clone())
    }

    /// The latest expiry written under `epoch`.
    pub fn expiry_of(&self, epoch: i64) -> Option<DateTime<Utc>> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(_, r)| r.epoch == epoch)
            .map(|(_, r)| r.expires_at)
            .max()
    }

    /// When a row of a later epoch than `epoch` was first seen: the takeover.
    pub fn after(&self, epoch: i64) -> Option<(Instant, LeaseRow)> {
        let seen = self.seen.lock().unwrap();
        seen.iter().find(|(_, r)| r.epoch > epoch).cloned()
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A partition proxy in front of the PostgreSQL server of `db`, and the
/// URL of `db` through it (for the agents on the far side of the cut).
pub fn proxied(db: &PgConfig) -> (Proxy, String) {
    let mut url = url::Url::parse(&db.url).unwrap();
    let host = url.host_str().unwrap().to_string();
    let target: SocketAddr = (host.as_str(), url.port().unwrap_or(5432))
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr().port())).unwrap();
    (proxy, url.to_string())
}

/// The pid in a holder name (`host:pid`).
pub fn pid_of(holder: &str) -> u32 {
    holder.rsplit(':').next().unwrap().parse().unwrap()
}

/// What the pair left, checked against the simulator's ledger once every
/// job has ended: the history must know every backup the cloud made, the
/// cloud must have made nothing twice nor anything the history had no
/// intent for, and no temporary snapshot may be left.
pub struct Tally {
    pub jobs: Vec<JobRecord>,
    pub succeeded: usize,
    /// Backups and snapshots the cloud made.
    pub backups: usize,
    pub snapshots: usize,
    /// `kind name`, with how often each was made.
    pub duplicates: Vec<(String, usize)>,
    /// Backups whose id no job (nor an earlier attempt of one) recorded.
    pub lost: Vec<LedgerEntry>,
    /// Backups and snapshots made under a name no job attempt has: a
    /// create without a recorded intent.
    pub unintended: Vec<LedgerEntry>,
    /// Snapshots still in the cloud.
    pub left: Vec<String>,
    /// Jobs that ended in neither success, a miss nor an overlap.
    pub ended_wrong: Vec<JobRecord>,
}

impl Tally {
    pub fn of(world: &World, store: &Store) -> Self {
        let jobs = store.recent_jobs(100_000).unwrap();
        let mut known = BTreeSet::new();
        let mut intended = BTreeSet::new();
        for job in &jobs {
            let earlier = store.earlier_attempts(job.id).unwrap();
            known.extend(job.backup_id.iter().cloned());
            known.extend(earlier.into_iter().filter_map(|a| a.backup_id));
            intended.extend((1..=job.attempt).map(|n| attempt_name(&job.resource_name, n)));
        }
        let ledger: Vec<LedgerEntry> = world
            .sim
            .ledger()
            .into_iter()
            .filter(|e| e.kind == "backup" || e.kind == "snapshot")
            .collect();
        let of_kind = |kind: &'static str| ledger.iter().filter(move |e| e.kind == kind);
        let mut duplicates = Vec::new();
        for kind in ["backup", "snapshot"] {
            let twice = names_made_twice(of_kind(kind).map(|e| e.name.as_str()));
            duplicates.extend(twice.into_iter().map(|(n, c)| (format!("{kind} {n}"), c)));
        }
        let succeeded = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Succeeded)
            .count();
        let ended_wrong = jobs
            .iter()
            .filter(|j| {
                !matches!(
                    j.status,
                    JobStatus::Succeeded | JobStatus::Missed | JobStatus::SkippedOverlap
                )
            })
            .cloned()
            .collect();
        Self {
            succeeded,
            backups: of_kind("backup").count(),
            snapshots: of_kind("snapshot").count(),
            duplicates,
            lost: of_kind("backup")
                .filter(|e| !known.contains(&e.id))
                .cloned()
                .collect(),
            unintended: ledger
                .iter()
                .filter(|e| !intended.contains(&e.name))
                .cloned()
                .collect(),
            left: snapshot_ids(world),
            ended_wrong,
            jobs,
        }
    }

    /// One line: jobs, what was made, and what went wrong.
    pub fn summary(&self) -> String {
        format!(
            "{} jobs ({} succeeded), {} backups and {} snapshots made, {} duplicates, {} lost, {} made without an intent, {} snapshots left",
            self.jobs.len(),
            self.succeeded,
            self.backups,
            self.snapshots,
            self.duplicates.len(),
            self.lost.len(),
            self.unintended.len(),
            self.left.len(),
        )
    }

    /// Fails the test on anything wrong; some backup must have succeeded.
    pub fn assert_clean(&self) {
        assert!(
            self.duplicates.is_empty(),
            "made twice: {:?}",
            self.duplicates
        );
        assert!(
            self.lost.is_empty(),
            "missing from the history: {:#?}",
            self.lost
        );
        assert!(
            self.unintended.is_empty(),
            "made without an intent in the history: {:#?}",
            self.unintended
        );
        assert!(
            self.left.is_empty(),
            "snapshots left behind: {:?}",
            self.left
        );
        assert!(self.succeeded > 0, "no job succeeded");
        assert!(self.ended_wrong.is_empty(), "{:#?}", self.ended_wrong);
    }
}

/// Ends a test's agents with SIGKILL, then runs one agent on `policy`
/// (rewritten by the caller so that nothing fires any more) until it leads
/// and every job has ended, and stops it cleanly: a last, clean spell
/// after which the history and the cloud are compared.
pub async fn last_spell(
    world: &World,
    agents: &mut [Agent],
    policy: &Path,
    (url, token): (&str, Option<&str>),
    log: &Path,
    store: &Store,
) -> Tally {
    for agent in agents.iter_mut() {
        signal(agent, "-KILL");
        agent.wait().unwrap();
    }
    let mut last = spawn_as(policy, url, token, log);
    let watcher = PgDb::connect(
        &PgConfig {
            url: url.into(),
            ca_file: None,
        },
        Duration::from_secs(10),
    )
    .unwrap();
    wait_for("the last agent to lead", || {
        lease(&watcher).is_some_and(|(h, _, live)| live && pid_of(&h) == last.id())
    })
    .await;
    wait_for("every job to finish", || {
        store.unfinished_jobs().is_ok_and(|u| u.is_empty())
    })
    .await;
    signal(&last, "-TERM");
    assert!(last.wait().unwrap().success());
    Tally::of(world, store)
}

/// The calls that change something (`POST`, `PUT`, `DELETE`) the cloud
/// received with `token`: one agent's, given a token of its own.
pub fn mutating_calls(world: &World, token: &str) -> Vec<RequestRecord> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.mutating() && r.caller.as_deref() == Some(token))
        .collect()
}

/// The log file at `path` so far (empty before the agent wrote to it).
pub fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the agent with `token` has made `calls` mutating calls, a
/// pause of up to 2 s drawn from `seed` (so that the moment falls at
/// another point of a run), then until some job is unfinished: the moment
/// to strike while jobs are in flight.
pub async fn amid_jobs(world: &World, store: &Store, token: &str, calls: usize, seed: u64) {
    wait_for("the leader to work through a few runs", || {
        mutating_calls(world, token).len() >= calls
    })
    .await;
    let pause = fastrand::Rng::with_seed(seed).u64(0..2000);
    tokio::time::sleep(Duration::from_millis(pause)).await;
    wait_for("a job in flight", || {
        store.unfinished_jobs().is_ok_and(|u| !u.is_empty())
    })
    .await;
}

/// The pair of the partition tests: the agent with cloud token `behind`,
/// whose history URL `through` runs through a partition proxy, started
/// first and leading; then the agent with `direct` on a direct line to
/// `db`, following. The agents and the lease row as the first one took it.
pub async fn pair_led_from_behind(
    policy: &Path,
    db: &PgConfig,
    through: &str,
    watch: &LeaseWatch,
    behind: (&str, &Path),
    direct: (&str, &Path),
) -> (Agent, Agent, LeaseRow) {
    let leader = spawn_as(policy, through, Some(behind.0), behind.1);
    wait_for("the agent behind the proxy to lead", || {
        watch
            .now()
            .is_some_and(|r| r.live && pid_of(&r.holder) == leader.id())
    })
    .await;
    let led = watch.now().unwrap();
    let follower = spawn_as(policy, &db.url, Some(direct.0), direct.1);
    wait_for("the other agent to follow", || {
        log_text(direct.1).contains("following")
    })
    .await;
    (leader, follower, led)
}

/// For agents on a policy file of [`write_policy`]: the file rewritten with
/// one policy `ha` over `volumes` (with `extra` lines) that no longer
/// fires, then [`last_spell`] with the agent on `url` and `token`.
#[allow(clippy::too_many_arguments)]
pub async fn quiet_last_spell(
    world: &World,
    top: &str,
    (volumes, extra): (&[String], &str),
    agents: &mut [Agent],
    (url, token): (&str, Option<&str>),
    log: &Path,
    store: &Store,
) -> Tally {
    let policy = write_policy(
        world,
        top,
        &policy_yaml("ha", "0 0 3 1 1 *", volumes, extra),
    );
    last_spell(world, agents, &policy, (url, token), log, store).await
}
