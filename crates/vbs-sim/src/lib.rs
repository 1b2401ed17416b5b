//! A stateful simulator of the cloud API (VBS/Cinder backups and restores,
//! EVS/Cinder volumes and snapshots, VBS jobs, CSBS, Keystone tokens) on
//! 127.0.0.1, for tests and `vbs-agent demo`. It serves the vendor's JSON
//! shapes, null and unused fields included, follows real Cinder where the
//! vendor pages are silent (busy volumes are a 400, incremental backups need
//! a parent, a parent with dependants cannot be deleted, a failed restore
//! leaves the volume in `error_restoring` and the backup `available`), and
//! injects faults on demand. Volumes given in the configuration live beside
//! volumes created through the API (scratch volumes, restore targets), which
//! go through `creating`, `restoring-backup` and `deleting` like real ones.
//! Knows nothing of the agent: a crate of its own so that a packaged agent
//! can leave it out.

mod aksk;
mod backups;
mod cbr;
mod changes;
mod csbs;
mod faults;
mod jobs;
mod keystone;
mod literal;
mod restores;
mod routes;
mod servers;
mod shapes;
mod sharing;
mod shelf;
mod snapshots;
mod state;
mod tags;
mod versions;
mod volume_tags;
mod volumes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cbr::SimVault;
pub use csbs::{ServerFault, SimServer};
use state::State;

/// What the simulated cloud holds and how fast it works.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// State is kept per project id.
    pub projects: Vec<SimProject>,
    /// Tokens always accepted in `X-Auth-Token`.
    pub tokens: Vec<String>,
    /// Keystone password users.
    pub users: Vec<SimUser>,
    /// Lifetime of Keystone-issued tokens.
    pub token_ttl: Duration,
    /// `creating` → `available` for snapshots.
    pub snapshot_duration: Duration,
    /// `creating` → `available` (or `error`) for backups.
    pub backup_duration: Duration,
    /// `deleting` → gone (or `error_deleting`), for snapshots, backups and
    /// volumes.
    pub delete_duration: Duration,
    /// `creating` → `available` for volumes created through the API.
    pub volume_create_duration: Duration,
    /// How long a restore runs: the volume `restoring-backup`, the backup
    /// `restoring`, a vendor job `INIT` (its first tenth) then `RUNNING`.
    pub restore_duration: Duration,
    /// Servers CSBS can back up.
    pub servers: Vec<SimServer>,
    /// `protecting` → `available` (or `error`) for server backups.
    pub server_backup_duration: Duration,
    /// How long a new checkpoint item stays out of the item list.
    pub checkpoint_item_delay: Duration,
    /// How long one checkpoint deletion runs once started.
    pub checkpoint_delete_duration: Duration,
    /// CBR vaults and the volumes bound to them.
    pub cbr_vaults: Vec<SimVault>,
    /// How long a CBR backup stays out of the backup list after its run.
    pub cbr_listing_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            projects: Vec::new(),
            tokens: Vec::new(),
            users: Vec::new(),
            token_ttl: Duration::from_secs(24 * 3600),
            snapshot_duration: Duration::from_secs(2),
            backup_duration: Duration::from_secs(5),
            delete_duration: Duration::from_secs(1),
            volume_create_duration: Duration::from_secs(1),
            restore_duration: Duration::from_secs(2),
            servers: Vec::new(),
            server_backup_duration: Duration::from_secs(10),
            checkpoint_item_delay: Duration::from_secs(1),
            checkpoint_delete_duration: Duration::from_secs(2),
            cbr_vaults: Vec::new(),
            cbr_listing_delay: Duration::from_secs(1),
        }
    }
}

/// A project and its volumes.
#[derive(Debug, Clone)]
pub struct SimProject {
    pub id: String,
    /// Keystone scopes a token to the project by this name in `domain`.
    pub name: String,
    /// The project's domain, by name; its ID in the simulator is the same.
    pub domain: String,
    pub volumes: Vec<SimVolume>,
    /// Most volumes the project may hold (configured ones included); a
    /// create beyond it is Cinder's 413 `overLimit`. `None`: no limit.
    pub volume_quota: Option<usize>,
}

impl SimProject {
    /// A project in domain `Default`, named `project-` and the first eight
    /// characters of its ID, without a volume quota.
    pub fn new(id: &str, volumes: Vec<SimVolume>) -> Self {
        Self {
            id: id.to_string(),
            name: format!("project-{}", id.chars().take(8).collect::<String>()),
            domain: "Default".to_string(),
            volumes,
            volume_quota: None,
        }
    }
}

/// A volume that exists from the start (no name or description; zone
/// `sim-1a`, type `SATA`), can be snapshotted, backed up, restored into and
/// deleted.
#[derive(Debug, Clone, Default)]
pub struct SimVolume {
    pub id: String,
    pub size_gb: u32,
    /// `in-use` (needs `force` to snapshot) rather than `available`.
    pub attached: bool,
    /// The server it is attached to (so `in-use`); a made-up one when only
    /// `attached` is set.
    pub server: Option<String>,
    pub fault: Option<VolumeFault>,
    /// Cinder metadata: shown in the volume's detail and matched by the
    /// `metadata` filter of `…/volumes/detail`, so that selection by
    /// metadata can be tested.
    pub metadata: BTreeMap<String, String>,
    /// EVS tags (the vendor's two-dimensional tags, not Cinder metadata):
    /// what the tag filter `…/resource_instances/action` selects on.
    pub tags: BTreeMap<String, String>,
}

/// How the cloud misbehaves for one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VolumeFault {
    /// Backups end in `error` with this `fail_reason`.
    BackupError { fail_reason: String },
    /// Backups stay `creating` forever.
    BackupNeverFinishes,
    /// Snapshots end in `error`.
    SnapshotError,
    /// The next `times` backups end in `error` with this `fail_reason`,
    /// later ones succeed (a transient backend problem).
    BackupErrorTimes { fail_reason: String, times: u32 },
    /// Restores of this volume's backups, and restores into this volume,
    /// end with the volume in `error_restoring` (the backup `available`
    /// again, as Cinder leaves it) and a vendor job `FAIL` with this
    /// `fail_reason`.
    RestoreError { fail_reason: String },
}

/// How volume deletions fail, counted down as deletions are asked for
/// (set with [`SimHandle::set_volume_deletion_faults`] or
/// `PUT /sim/volume-deletion-faults`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeDeletionFaults {
    /// The next `refused` `DELETE`s of a volume answer 500 (`computeFault`)
    /// and change nothing.
    pub refused: u32,
    /// The next `error_deleting` accepted deletions leave the volume in
    /// `error_deleting` after `delete_duration` instead of removing it.
    pub error_deleting: u32,
}

/// A canned answer for the next requests matching `method` and a path
/// containing `path_contains`: for tests of answers the cloud should never
/// give but sometimes does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scripted {
    pub method: String,
    pub path_contains: String,
    pub status: u16,
    pub content_type: String,
    /// `{id}` in it stands for the last segment of the request's path: the
    /// id a detail call asked for.
    pub body: String,
    /// Handle the request first (so a create does happen), then answer this.
    pub after_handling: bool,
    /// How many matching requests get it.
    pub times: u32,
    /// More headers of the answer (a redirect's `Location`).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// A Keystone user.
#[derive(Debug, Clone)]
pub struct SimUser {
    pub name: String,
    pub domain: String,
    pub password: String,
}

/// Random faults on cloud API requests (never on `/sim/*`). Rates are
/// probabilities per request; a seed makes a run reproducible.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    pub seed: u64,
    /// 500 or 503 (with `Retry-After: 1`), before the request is handled.
    pub server_error_rate: f64,
    /// 429 with `Retry-After: 1`, before the request is handled.
    pub throttle_rate: f64,
    /// The connection is closed without an answer, either before or
    /// after the request was handled (an unknown outcome for a create).
    pub drop_rate: f64,
    /// 200 with truncated JSON or an HTML error page, after handling.
    pub malformed_rate: f64,
    /// An answer delayed by `slow_delay_ms` after the request was handled.
    pub slow_rate: f64,
    pub slow_delay_ms: u64,
    /// When not empty, the random faults hit only requests whose path
    /// contains one of these, so a test can make one API flaky (the tag
    /// filter, say) and keep the rest reliable. Empty: every cloud path.
    pub paths: Vec<String>,
}

/// A snapshot as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotView {
    pub id: String,
    pub name: String,
    pub volume_id: String,
    pub status: String,
}

/// A backup as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupView {
    pub id: String,
    pub name: String,
    pub volume_id: String,
    pub snapshot_id: Option<String>,
    pub status: String,
    pub is_incremental: bool,
    pub fail_reason: Option<String>,
}

/// A volume as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeView {
    pub id: String,
    /// `None` for configured volumes and unnamed created ones.
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: String,
    pub size_gb: u32,
    pub availability_zone: String,
    pub volume_type: String,
    /// As the API shows it: `src_backup_id` included after a restore.
    pub metadata: BTreeMap<String, String>,
    pub attached: bool,
}

/// A CBR disk backup as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbrBackupView {
    pub id: String,
    pub checkpoint_id: String,
    pub volume_id: String,
    pub name: String,
    pub status: String,
}

/// A CBR backup run: its name and the volumes it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbrCheckpointView {
    pub id: String,
    pub name: String,
    pub volumes: Vec<String>,
}

/// A server backup (checkpoint and its item) as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointView {
    pub checkpoint_id: String,
    pub item_id: String,
    pub server_id: String,
    pub name: String,
    pub status: String,
}

/// Every snapshot, backup, checkpoint and API-created volume ever created,
/// deleted ones included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// `snapshot`, `backup`, `checkpoint` (its `volume_id` is the server)
    /// or `volume` (its `volume_id` is its own id; configured volumes have
    /// no entry).
    pub kind: String,
    pub id: String,
    pub project: String,
    pub name: String,
    pub volume_id: String,
    pub created_at: String,
    pub deleted_at: Option<String>,
    /// Current status, or `deleted`.
    pub status: String,
}

/// One cloud API request as it arrived (every path but `/sim/*`, before
/// any fault, scripted answer or authentication is applied): what a test
/// checks to tell who called what, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When it arrived, on the wall clock (not the offset of
    /// [`SimHandle::set_now`]): comparable with other clocks of the host.
    pub at: chrono::DateTime<chrono::Utc>,
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The credential it carried: its `X-Auth-Token`, or the access key of
    /// an `SDK-HMAC-SHA256` signature; `None` without either (a Keystone
    /// login, a version document). Whether it was accepted is not said.
    pub caller: Option<String>,
}

impl RequestRecord {
    /// Whether it asks for a change (any method but `GET` and `HEAD`).
    pub fn mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

/// How many requests [`SimHandle::requests`] keeps, the newest: a
/// simulator serving a long demo does not grow without end.
pub const REQUEST_LOG_MAX: usize = 100_000;

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // The state is only mutated under the lock in small, complete steps.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The state locked, with finished deletions swept out: what a read sees.
pub(crate) fn swept(state: &Shared) -> MutexGuard<'_, State> {
    let mut st = lock(state);
    st.sweep();
    st
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Starts the simulator on `listen` (port 0 picks a free port).
pub async fn start(config: SimConfig, listen: SocketAddr) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state: Shared = Arc::new(Mutex::new(State::new(config, format!("http://{addr}"))));
    let app = routes::router(Arc::clone(&state));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        task,
    })
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the endpoint for every service.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Live snapshots of a project, status evaluated now.
    pub fn snapshots(&self, project: &str) -> Vec<SnapshotView> {
        lock(&self.state).snapshot_views(project)
    }

    /// Live backups of a project, status evaluated now.
    pub fn backups(&self, project: &str) -> Vec<BackupView> {
        lock(&self.state).backup_views(project)
    }

    /// Live volumes of a project (deleting ones and those in
    /// `error_deleting` included), oldest first, status evaluated now.
    pub fn volumes(&self, project: &str) -> Vec<VolumeView> {
        lock(&self.state).volume_views(project)
    }

    /// Replaces the most volumes `project` may hold (`None`: no limit).
    pub fn set_volume_quota(&self, project: &str, quota: Option<usize>) {
        if let Some(p) = lock(&self.state).projects.get_mut(project) {
            p.volume_quota = quota;
        }
    }

    /// Makes the next volume deletions fail, replacing the counts left.
    pub fn set_volume_deletion_faults(&self, faults: VolumeDeletionFaults) {
        lock(&self.state).volume_deletion_faults = faults;
    }

    /// Everything ever created.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        lock(&self.state).ledger()
    }

    pub fn set_faults(&self, faults: Faults) {
        lock(&self.state).set_faults(faults);
    }

    pub fn set_volume_fault(&self, project: &str, volume_id: &str, fault: Option<VolumeFault>) {
        lock(&self.state).set_volume_fault(project, volume_id, fault);
    }

    /// Moves the cloud's clock to `now` (only the timestamps it reports;
    /// durations still run on tokio's clock).
    pub fn set_now(&self, now: chrono::DateTime<chrono::Utc>) {
        lock(&self.state).clock_offset = now - chrono::Utc::now();
    }

    /// Live CBR backups of a project, status evaluated now (listed or not).
    pub fn cbr_backups(&self, project: &str) -> Vec<CbrBackupView> {
        let mut st = lock(&self.state);
        st.cbr_sweep();
        st.cbr
            .backups
            .iter()
            .filter(|b| b.project == project)
            .filter_map(|b| {
                Some(CbrBackupView {
                    id: b.id.clone(),
                    checkpoint_id: b.checkpoint_id.clone(),
                    volume_id: b.volume_id.clone(),
                    name: b.name.clone(),
                    status: st.cbr_backup_status(b)?.to_string(),
                })
            })
            .collect()
    }

    /// Every CBR backup run of a project, with the volumes it took.
    pub fn cbr_checkpoints(&self, project: &str) -> Vec<CbrCheckpointView> {
        let st = lock(&self.state);
        st.cbr
            .checkpoints
            .iter()
            .filter(|c| c.project == project)
            .map(|c| CbrCheckpointView {
                id: c.id.clone(),
                name: c.name.clone(),
                volumes: st
                    .cbr
                    .backups
                    .iter()
                    .filter(|b| b.checkpoint_id == c.id)
                    .map(|b| b.volume_id.clone())
                    .collect(),
            })
            .collect()
    }

    /// Live server backups of a project: (checkpoint id, item id, server, name, status).
    pub fn checkpoints(&self, project: &str) -> Vec<CheckpointView> {
        lock(&self.state)
            .checkpoint_views(project)
            .into_iter()
            .map(|(status, c)| CheckpointView {
                checkpoint_id: c.id.clone(),
                item_id: c.item_id.clone(),
                server_id: c.server_id.clone(),
                name: c.name.clone(),
                status: status.to_string(),
            })
            .collect()
    }

    pub fn set_server_fault(&self, server_id: &str, fault: Option<ServerFault>) {
        let mut st = lock(&self.state);
        for s in st.csbs.servers.iter_mut().filter(|s| s.id == server_id) {
            s.fault = fault.clone();
        }
    }

    /// Most checkpoint deletions a project had pending at once.
    pub fn peak_checkpoint_deletions(&self, project: &str) -> usize {
        lock(&self.state)
            .csbs
            .peak_deletions
            .get(project)
            .copied()
            .unwrap_or(0)
    }

    /// Queues a canned answer.
    pub fn script(&self, answer: Scripted) {
        lock(&self.state).scripted.push(answer);
    }

    /// Accepts requests signed with this AK/SK pair (`SDK-HMAC-SHA256`).
    pub fn add_access_key(&self, access_key: &str, secret_key: &str) {
        lock(&self.state)
            .access_keys
            .insert(access_key.to_string(), secret_key.to_string());
    }

    /// Cloud API requests served so far.
    pub fn request_count(&self) -> u64 {
        lock(&self.state).requests
    }

    /// The cloud API requests received, oldest first: the last
    /// [`REQUEST_LOG_MAX`] of them.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).request_log.iter().cloned().collect()
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if self.stop.is_some() {
            self.task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
