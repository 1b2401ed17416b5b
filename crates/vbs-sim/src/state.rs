//! The simulated cloud's state. Statuses are evaluated lazily from creation
//! time and durations (tokio's clock, so paused-clock tests work); deleted
//! resources are swept out on access and kept in the ledger.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::restores::Restore;
use super::shelf::Shelf;
use super::{
    BackupView, Faults, LedgerEntry, SimConfig, SnapshotView, VolumeDeletionFaults, VolumeFault,
};

/// A refusal, as Cinder words it: HTTP status, fault name, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub fault: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            fault: "badRequest",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            fault: "itemNotFound",
            message: message.into(),
        }
    }

    /// Cinder's 413 for an exceeded quota (answered with `Retry-After: 0`).
    pub fn over_limit(message: impl Into<String>) -> Self {
        Self {
            status: 413,
            fault: "overLimit",
            message: message.into(),
        }
    }

    /// Cinder's 500.
    pub fn server_error() -> Self {
        Self {
            status: 500,
            fault: "computeFault",
            message:
                "The server has either erred or is incapable of performing the requested operation."
                    .into(),
        }
    }
}

pub struct Volume {
    pub size_gb: u32,
    pub attached: bool,
    pub fault: Option<VolumeFault>,
    pub created_at: DateTime<Utc>,
    /// The server an attached volume is attached to.
    pub server_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_type: String,
    pub availability_zone: String,
    /// What the user gave; the API adds `src_backup_id` after a restore.
    pub metadata: BTreeMap<String, String>,
    /// EVS tags.
    pub tags: BTreeMap<String, String>,
    /// Until when a volume created through the API is `creating`.
    pub creating_until: Option<Instant>,
    pub deleting_since: Option<Instant>,
    /// Its deletion ends in `error_deleting` instead of removing it.
    pub delete_fails: bool,
}

pub struct Snapshot {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub volume_id: String,
    pub size_gb: u32,
    pub metadata: serde_json::Value,
    pub created: Instant,
    pub created_at: DateTime<Utc>,
    pub fails: bool,
    pub deleting_since: Option<Instant>,
}

pub struct Backup {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub volume_id: String,
    pub snapshot_id: Option<String>,
    pub size_gb: u32,
    pub created: Instant,
    pub created_at: DateTime<Utc>,
    pub incremental: bool,
    pub parent: Option<String>,
    pub fail_reason: Option<String>,
    pub never_finishes: bool,
    pub deleting_since: Option<Instant>,
}

#[derive(Default)]
pub struct Project {
    pub volumes: HashMap<String, Volume>,
    /// Most volumes it may hold, if limited.
    pub volume_quota: Option<usize>,
    pub snapshots: Shelf<Snapshot>,
    pub backups: Shelf<Backup>,
    /// Volumes whose deletion began, for the sweep to look at.
    pub deleting_volumes: Vec<String>,
}

pub struct State {
    pub config: SimConfig,
    pub base_url: String,
    pub projects: HashMap<String, Project>,
    /// Keystone-issued tokens and when they expire.
    pub issued: HashMap<String, (String, Instant)>,
    pub faults: Faults,
    pub rng: fastrand::Rng,
    pub requests: u64,
    /// The newest requests received ([`super::REQUEST_LOG_MAX`] at most).
    pub request_log: VecDeque<super::RequestRecord>,
    pub scripted: Vec<super::Scripted>,
    /// Added to the wall clock for the timestamps the cloud reports, so
    /// tests can play out days of backups in seconds.
    pub clock_offset: chrono::TimeDelta,
    /// Backup shares across projects.
    pub shares: Vec<super::sharing::Share>,
    /// Server backups (CSBS).
    pub csbs: super::csbs::Csbs,
    /// Vaults, checkpoints and backups (CBR).
    pub cbr: super::cbr::Cbr,
    ledger: Vec<LedgerEntry>,
    /// Where each id's entries are in the ledger.
    ledger_at: HashMap<String, Vec<usize>>,
    /// AK/SK pairs whose signed requests are accepted: access key → secret key.
    pub access_keys: HashMap<String, String>,
    /// Every restore, oldest first (finished ones stay: jobs and volume
    /// statuses are read from them).
    pub restores: Vec<Restore>,
    pub volume_deletion_faults: VolumeDeletionFaults,
}

/// Cinder's timestamp format: no zone, microseconds.
pub fn cinder_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

impl State {
    pub fn new(config: SimConfig, base_url: String) -> Self {
        let csbs = super::csbs::Csbs::new(config.servers.clone());
        let cbr = super::cbr::Cbr::new(&config.cbr_vaults);
        let projects = config
            .projects
            .iter()
            .map(|p| {
                let volumes = p
                    .volumes
                    .iter()
                    .map(|v| (v.id.clone(), Volume::configured(v)))
                    .collect();
                (
                    p.id.clone(),
                    Project {
                        volumes,
                        volume_quota: p.volume_quota,
                        ..Project::default()
                    },
                )
            })
            .collect();
        Self {
            config,
            base_url,
            projects,
            issued: HashMap::new(),
            faults: Faults::default(),
            rng: fastrand::Rng::with_seed(0),
            requests: 0,
            request_log: VecDeque::new(),
            scripted: Vec::new(),
            clock_offset: chrono::TimeDelta::zero(),
            shares: Vec::new(),
            csbs,
            cbr,
            ledger: Vec::new(),
            ledger_at: HashMap::new(),
            access_keys: HashMap::new(),
            restores: Vec::new(),
            volume_deletion_faults: VolumeDeletionFaults::default(),
        }
    }

    /// The cloud's idea of now.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.rng = fastrand::Rng::with_seed(faults.seed);
        self.faults = faults;
    }

    pub fn set_volume_fault(&mut self, project: &str, volume: &str, fault: Option<VolumeFault>) {
        if let Some(v) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.volumes.get_mut(volume))
        {
            v.fault = fault;
        }
    }

    /// Notes a request as it arrives, forgetting the oldest beyond the cap.
    pub fn log_request(&mut self, record: super::RequestRecord) {
        if self.request_log.len() >= super::REQUEST_LOG_MAX {
            self.request_log.pop_front();
        }
        self.request_log.push_back(record);
    }

    /// Whether a token is accepted now.
    pub fn token_valid(&self, token: &str) -> bool {
        self.config.tokens.iter().any(|t| t == token)
            || self
                .issued
                .get(token)
                .is_some_and(|(_, exp)| Instant::now() < *exp)
    }

    /// Removes resources whose deletion has completed.
    pub fn sweep(&mut self) {
        let now = Instant::now();
        let delay = self.config.delete_duration;
        let gone = |since: Instant| now.duration_since(since) >= delay;
        let mut removed = Vec::new();
        for p in self.projects.values_mut() {
            p.snapshots.sweep(gone, &mut removed);
            p.backups.sweep(gone, &mut removed);
            let volumes = &mut p.volumes;
            p.deleting_volumes.retain(|id| {
                let Some(v) = volumes.get(id) else {
                    return false;
                };
                let over = v.deleting_since.is_some_and(gone);
                if over && !v.delete_fails {
                    volumes.remove(id);
                    removed.push(id.clone());
                }
                !over
            });
        }
        self.note_deleted(&removed);
    }

    /// Marks the ledger entries of `removed` deleted, now.
    pub fn note_deleted(&mut self, removed: &[String]) {
        if removed.is_empty() {
            return;
        }
        let stamp = cinder_time(self.now());
        for id in removed {
            for &i in self.ledger_at.get(id).into_iter().flatten() {
                let e = &mut self.ledger[i];
                e.deleted_at = Some(stamp.clone());
                e.status = "deleted".into();
            }
        }
    }

    /// A project's volume, or Cinder's 404 for it.
    pub fn volume(&self, project: &str, volume_id: &str) -> Result<(&Project, &Volume), Refusal> {
        self.projects
            .get(project)
            .and_then(|p| p.volumes.get(volume_id).map(|v| (p, v)))
            .ok_or_else(|| Refusal::not_found(format!("Volume {volume_id} could not be found.")))
    }

    /// A live snapshot or backup of a project, with the project.
    pub fn find<R: Resource>(&self, project: &str, id: &str) -> Option<(&Project, &R)> {
        let p = self.projects.get(project)?;
        R::of(p).get(id).map(|r| (p, r))
    }

    /// Adds a new snapshot or backup to its project and to the ledger;
    /// returns its id.
    pub fn add<R: Resource>(&mut self, project: &str, resource: R) -> String {
        let id = resource.id().to_string();
        self.record(
            R::KIND,
            project,
            &id,
            resource.name(),
            resource.volume_id(),
            resource.created_at(),
        );
        if let Some(p) = self.projects.get_mut(project) {
            R::of_mut(p).push(resource);
        }
        id
    }

    /// Starts the deletion of a snapshot or backup; [`State::sweep`]
    /// removes it once `delete_duration` has passed.
    pub fn start_deleting<R: Resource>(&mut self, project: &str, id: &str) {
        if let Some(p) = self.projects.get_mut(project) {
            R::of_mut(p).start_deleting(id, Instant::now());
        }
    }

    pub fn snapshot_status(&self, p: &Project, s: &Snapshot) -> &'static str {
        if s.deleting_since.is_some() {
            "deleting"
        } else if s.created.elapsed() < self.config.snapshot_duration {
            "creating"
        } else if s.fails {
            "error"
        } else if p
            .backups
            .of_volume(&s.volume_id)
            .any(|b| b.snapshot_id.as_deref() == Some(&s.id) && self.backup_status(b) == "creating")
        {
            "backing-up"
        } else {
            "available"
        }
    }

    pub fn backup_status(&self, b: &Backup) -> &'static str {
        if b.deleting_since.is_some() {
            "deleting"
        } else if b.never_finishes || b.created.elapsed() < self.config.backup_duration {
            "creating"
        } else if b.fail_reason.is_some() {
            "error"
        } else if self.restoring(&b.id) {
            "restoring"
        } else {
            "available"
        }
    }

    pub(super) fn record(
        &mut self,
        kind: &str,
        project: &str,
        id: &str,
        name: &str,
        volume_id: &str,
        at: DateTime<Utc>,
    ) {
        self.ledger_at
            .entry(id.to_string())
            .or_default()
            .push(self.ledger.len());
        self.ledger.push(LedgerEntry {
            kind: kind.into(),
            id: id.into(),
            project: project.into(),
            name: name.into(),
            volume_id: volume_id.into(),
            created_at: cinder_time(at),
            deleted_at: None,
            status: String::new(),
        });
    }

    pub fn ledger(&mut self) -> Vec<LedgerEntry> {
        self.sweep();
        self.cbr_sweep();
        let mut out = self.ledger.clone();
        for e in out.iter_mut().filter(|e| e.deleted_at.is_none()) {
            if let Some(p) = self.projects.get(&e.project) {
                e.status = match e.kind.as_str() {
                    "snapshot" => p.snapshots.get(&e.id).map(|s| self.snapshot_status(p, s)),
                    "checkpoint" => Some(self.checkpoint_ledger_status(&e.project, &e.id)),
                    "cbr_backup" => self
                        .cbr
                        .backups
                        .iter()
                        .find(|b| b.id == e.id)
                        .and_then(|b| self.cbr_backup_status(b)),
                    "volume" => p
                        .volumes
                        .get(&e.id)
                        .map(|v| self.volume_status(p, &e.id, v)),
                    _ => p.backups.get(&e.id).map(|b| self.backup_status(b)),
                }
                .unwrap_or("deleted")
                .to_string();
            }
        }
        out
    }

    pub fn snapshot_views(&mut self, project: &str) -> Vec<SnapshotView> {
        self.views(project, |st, p, s: &Snapshot| SnapshotView {
            id: s.id.clone(),
            name: s.name.clone(),
            volume_id: s.volume_id.clone(),
            status: st.snapshot_status(p, s).to_string(),
        })
    }

    pub fn backup_views(&mut self, project: &str) -> Vec<BackupView> {
        self.views(project, |st, _, b: &Backup| BackupView {
            id: b.id.clone(),
            name: b.name.clone(),
            volume_id: b.volume_id.clone(),
            snapshot_id: b.snapshot_id.clone(),
            status: st.backup_status(b).to_string(),
            is_incremental: b.incremental,
            fail_reason: (st.backup_status(b) == "error")
                .then(|| b.fail_reason.clone())
                .flatten(),
        })
    }

    /// Every live snapshot or backup of a project, as `view` shows it.
    fn views<R: Resource, V>(
        &mut self,
        project: &str,
        view: impl Fn(&Self, &Project, &R) -> V,
    ) -> Vec<V> {
        self.sweep();
        let Some(p) = self.projects.get(project) else {
            return Vec::new();
        };
        R::of(p).iter().map(|r| view(self, p, r)).collect()
    }
}

/// Whether another live backup was made incrementally on top of `id`.
pub fn has_dependents(p: &Project, id: &str) -> bool {
    p.backups.get(id).is_some_and(|parent| {
        p.backups
            .of_volume(&parent.volume_id)
            .any(|b| b.parent.as_deref() == Some(id))
    })
}

/// What the lifecycle of snapshots and backups shares: a place in their
/// project's list, a ledger entry, and a deletion that takes a while.
pub trait Resource: Sized {
    /// The ledger's `kind`.
    const KIND: &'static str;
    /// The key of a list of them.
    const LIST: &'static str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn volume_id(&self) -> &str;
    fn created_at(&self) -> DateTime<Utc>;
    fn deleting_since(&mut self) -> &mut Option<Instant>;
    /// The project's shelf of this kind.
    fn of(p: &Project) -> &Shelf<Self>;
    fn of_mut(p: &mut Project) -> &mut Shelf<Self>;
}

/// `Resource` for a kind whose fields are named alike, kept in `list` of
/// its project.
macro_rules! resource {
    ($kind:ident, $name:literal, $list:ident) => {
        impl Resource for $kind {
            const KIND: &'static str = $name;
            const LIST: &'static str = stringify!($list);

            fn id(&self) -> &str {
                &self.id
            }

            fn name(&self) -> &str {
                &self.name
            }

            fn volume_id(&self) -> &str {
                &self.volume_id
            }

            fn created_at(&self) -> DateTime<Utc> {
                self.created_at
            }

            fn deleting_since(&mut self) -> &mut Option<Instant> {
                &mut self.deleting_since
            }

            fn of(p: &Project) -> &Shelf<Self> {
                &p.$list
            }

            fn of_mut(p: &mut Project) -> &mut Shelf<Self> {
                &mut p.$list
            }
        }
    };
}

resource!(Snapshot, "snapshot", snapshots);
resource!(Backup, "backup", backups);
