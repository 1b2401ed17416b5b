//! The simulated cloud's state. Statuses are evaluated lazily from creation
//! time and durations (tokio's clock, so paused-clock tests work); deleted
//! resources are swept out on access and kept in the ledger.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{BackupView, Faults, LedgerEntry, SimConfig, SnapshotView, VolumeFault};

/// A refusal, as Cinder words it: HTTP status, fault name, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub fault: &'static str,
    pub message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            fault: "badRequest",
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            fault: "itemNotFound",
            message: message.into(),
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
    pub snapshots: Vec<Snapshot>,
    pub backups: Vec<Backup>,
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
    pub scripted: Vec<super::Scripted>,
    /// Added to the wall clock for the timestamps the cloud reports, so
    /// tests can play out days of backups in seconds.
    pub clock_offset: chrono::TimeDelta,
    /// Backup shares across projects.
    pub shares: Vec<Share>,
    /// Server backups (CSBS).
    pub csbs: super::csbs::Csbs,
    ledger: Vec<LedgerEntry>,
    /// AK/SK pairs whose signed requests are accepted: access key → secret key.
    pub access_keys: HashMap<String, String>,
}

/// One backup shared from one project to another.
pub struct Share {
    pub id: String,
    pub backup_id: String,
    pub from_project: String,
    pub to_project: String,
    pub created_at: DateTime<Utc>,
}

/// Cinder's timestamp format: no zone, microseconds.
pub fn cinder_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

impl State {
    pub fn new(config: SimConfig, base_url: String) -> Self {
        let csbs = super::csbs::Csbs::new(config.servers.clone());
        let projects = config
            .projects
            .iter()
            .map(|p| {
                let volumes = p
                    .volumes
                    .iter()
                    .map(|v| {
                        (
                            v.id.clone(),
                            Volume {
                                size_gb: v.size_gb,
                                attached: v.attached,
                                fault: v.fault.clone(),
                                created_at: Utc::now(),
                                server_id: uuid::Uuid::new_v4().to_string(),
                            },
                        )
                    })
                    .collect();
                (
                    p.id.clone(),
                    Project {
                        volumes,
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
            scripted: Vec::new(),
            clock_offset: chrono::TimeDelta::zero(),
            shares: Vec::new(),
            csbs,
            ledger: Vec::new(),
            access_keys: HashMap::new(),
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
        let gone = |since: Option<Instant>| since.is_some_and(|d| now.duration_since(d) >= delay);
        let mut removed = Vec::new();
        for p in self.projects.values_mut() {
            p.snapshots.retain(|s| {
                let keep = !gone(s.deleting_since);
                if !keep {
                    removed.push(s.id.clone());
                }
                keep
            });
            p.backups.retain(|b| {
                let keep = !gone(b.deleting_since);
                if !keep {
                    removed.push(b.id.clone());
                }
                keep
            });
        }
        let stamp = cinder_time(self.now());
        for e in self.ledger.iter_mut().filter(|e| removed.contains(&e.id)) {
            e.deleted_at = Some(stamp.clone());
            e.status = "deleted".into();
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
            .iter()
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
        } else {
            "available"
        }
    }

    pub fn volume_status(&self, p: &Project, volume_id: &str, v: &Volume) -> &'static str {
        if p.backups
            .iter()
            .any(|b| b.volume_id == volume_id && self.backup_status(b) == "creating")
        {
            "backing-up"
        } else if v.attached {
            "in-use"
        } else {
            "available"
        }
    }

    /// `POST …/snapshots`, with Cinder's checks.
    pub fn create_snapshot(
        &mut self,
        project: &str,
        volume_id: &str,
        name: String,
        description: Option<String>,
        force: bool,
        metadata: serde_json::Value,
    ) -> Result<String, Refusal> {
        self.sweep();
        let p = self
            .projects
            .get(project)
            .ok_or_else(|| Refusal::not_found(format!("Volume {volume_id} could not be found.")))?;
        let v = p
            .volumes
            .get(volume_id)
            .ok_or_else(|| Refusal::not_found(format!("Volume {volume_id} could not be found.")))?;
        match self.volume_status(p, volume_id, v) {
            "in-use" if !force => {
                return Err(Refusal::bad_request(format!(
                    "Invalid volume: Volume {volume_id} status must be available, but current status is: in-use."
                )))
            }
            "backing-up" => {
                return Err(Refusal::bad_request(format!(
                    "Invalid volume: Volume {volume_id} status must be available, but current status is: backing-up."
                )))
            }
            _ => {}
        }
        let snapshot = Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            description,
            volume_id: volume_id.to_string(),
            size_gb: v.size_gb,
            metadata,
            created: Instant::now(),
            created_at: self.now(),
            fails: v.fault == Some(VolumeFault::SnapshotError),
            deleting_since: None,
        };
        let id = snapshot.id.clone();
        self.record(
            "snapshot",
            project,
            &snapshot.id,
            &snapshot.name,
            volume_id,
            snapshot.created_at,
        );
        if let Some(p) = self.projects.get_mut(project) {
            p.snapshots.push(snapshot);
        }
        Ok(id)
    }

    /// `DELETE …/snapshots/{id}`.
    pub fn delete_snapshot(&mut self, project: &str, id: &str) -> Result<(), Refusal> {
        self.sweep();
        let not_found = || Refusal::not_found(format!("Snapshot {id} could not be found."));
        let p = self.projects.get(project).ok_or_else(not_found)?;
        let s = p
            .snapshots
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(not_found)?;
        let status = self.snapshot_status(p, s);
        if status != "available" && status != "error" {
            return Err(Refusal::bad_request(
                "Invalid snapshot: Snapshot status must be available or error and must not be part of a group.",
            ));
        }
        if let Some(s) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.snapshots.iter_mut().find(|s| s.id == id))
        {
            s.deleting_since = Some(Instant::now());
        }
        Ok(())
    }

    /// `POST …/backups`, with Cinder's checks.
    pub fn create_backup(
        &mut self,
        project: &str,
        volume_id: &str,
        snapshot_id: Option<&str>,
        name: String,
        description: Option<String>,
        incremental: bool,
    ) -> Result<String, Refusal> {
        self.sweep();
        let p = self
            .projects
            .get(project)
            .ok_or_else(|| Refusal::not_found(format!("Volume {volume_id} could not be found.")))?;
        let v = p
            .volumes
            .get(volume_id)
            .ok_or_else(|| Refusal::not_found(format!("Volume {volume_id} could not be found.")))?;
        let status = self.volume_status(p, volume_id, v);
        if status != "available" && status != "in-use" {
            return Err(Refusal::bad_request(format!(
                "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"{status}\"."
            )));
        }
        if let Some(sid) = snapshot_id {
            let s =
                p.snapshots.iter().find(|s| s.id == sid).ok_or_else(|| {
                    Refusal::not_found(format!("Snapshot {sid} could not be found."))
                })?;
            if s.volume_id != volume_id {
                return Err(Refusal::bad_request(
                    "Invalid snapshot: Snapshot is not a snapshot of the volume to be backed up.",
                ));
            }
            let st = self.snapshot_status(p, s);
            if st != "available" {
                return Err(Refusal::bad_request(format!(
                    "Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"{st}\"."
                )));
            }
        }
        let parent = if incremental {
            let latest = p
                .backups
                .iter()
                .filter(|b| b.volume_id == volume_id && self.backup_status(b) == "available")
                .max_by_key(|b| b.created);
            match latest {
                Some(b) => Some(b.id.clone()),
                None => {
                    return Err(Refusal::bad_request(
                        "Invalid backup: No backups available to do an incremental backup.",
                    ))
                }
            }
        } else {
            None
        };
        let (fail_reason, never_finishes) = match &v.fault {
            Some(VolumeFault::BackupError { fail_reason }) => (Some(fail_reason.clone()), false),
            Some(VolumeFault::BackupErrorTimes { fail_reason, times }) if *times > 0 => {
                (Some(fail_reason.clone()), false)
            }
            Some(VolumeFault::BackupNeverFinishes) => (None, true),
            _ => (None, false),
        };
        let backup = Backup {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            description,
            volume_id: volume_id.to_string(),
            snapshot_id: snapshot_id.map(str::to_string),
            size_gb: v.size_gb,
            created: Instant::now(),
            created_at: self.now(),
            incremental,
            parent,
            fail_reason,
            never_finishes,
            deleting_since: None,
        };
        if let Some(VolumeFault::BackupErrorTimes { times, .. }) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.volumes.get_mut(volume_id))
            .and_then(|v| v.fault.as_mut())
        {
            *times = times.saturating_sub(1);
        }
        let id = backup.id.clone();
        self.record(
            "backup",
            project,
            &backup.id,
            &backup.name,
            volume_id,
            backup.created_at,
        );
        if let Some(p) = self.projects.get_mut(project) {
            p.backups.push(backup);
        }
        Ok(id)
    }

    /// `DELETE …/backups/{id}`.
    pub fn delete_backup(&mut self, project: &str, id: &str) -> Result<(), Refusal> {
        self.sweep();
        let not_found = || Refusal::not_found(format!("Backup {id} could not be found."));
        let p = self.projects.get(project).ok_or_else(not_found)?;
        let b = p
            .backups
            .iter()
            .find(|b| b.id == id)
            .ok_or_else(not_found)?;
        let status = self.backup_status(b);
        if status != "available" && status != "error" {
            return Err(Refusal::bad_request(
                "Invalid backup: Backup status must be available or error",
            ));
        }
        if has_dependents(p, id) {
            return Err(Refusal::bad_request(
                "Invalid backup: Incremental backups exist for this backup.",
            ));
        }
        if let Some(b) = self
            .projects
            .get_mut(project)
            .and_then(|p| p.backups.iter_mut().find(|b| b.id == id))
        {
            b.deleting_since = Some(Instant::now());
        }
        Ok(())
    }

    /// `POST …/os-vendor-backup-sharing`: shares an available backup;
    /// a project it is already shared with keeps its existing share.
    pub fn share(
        &mut self,
        project: &str,
        backup_id: &str,
        to: &[String],
    ) -> Result<Vec<String>, Refusal> {
        self.sweep();
        let missing = || Refusal::not_found(format!("Backup {backup_id} could not be found."));
        let p = self.projects.get(project).ok_or_else(missing)?;
        let b = p
            .backups
            .iter()
            .find(|b| b.id == backup_id)
            .ok_or_else(missing)?;
        if self.backup_status(b) != "available" {
            return Err(Refusal::bad_request(format!(
                "Invalid backup: Backup {backup_id} status must be available to be shared."
            )));
        }
        if to.is_empty() || to.iter().any(|t| t == project) {
            return Err(Refusal::bad_request(
                "Invalid input: to_project_ids must name other projects.",
            ));
        }
        let mut ids = Vec::new();
        for target in to {
            let existing = self
                .shares
                .iter()
                .find(|s| s.backup_id == backup_id && &s.to_project == target);
            let id = match existing {
                Some(s) => s.id.clone(),
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    self.shares.push(Share {
                        id: id.clone(),
                        backup_id: backup_id.to_string(),
                        from_project: project.to_string(),
                        to_project: target.clone(),
                        created_at: self.now(),
                    });
                    id
                }
            };
            ids.push(id);
        }
        Ok(ids)
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
        let mut out = self.ledger.clone();
        for e in out.iter_mut().filter(|e| e.deleted_at.is_none()) {
            if let Some(p) = self.projects.get(&e.project) {
                e.status = match e.kind.as_str() {
                    "snapshot" => p
                        .snapshots
                        .iter()
                        .find(|s| s.id == e.id)
                        .map(|s| self.snapshot_status(p, s)),
                    "checkpoint" => Some(self.checkpoint_ledger_status(&e.project, &e.id)),
                    _ => p
                        .backups
                        .iter()
                        .find(|b| b.id == e.id)
                        .map(|b| self.backup_status(b)),
                }
                .unwrap_or("deleted")
                .to_string();
            }
        }
        out
    }

    pub fn snapshot_views(&mut self, project: &str) -> Vec<SnapshotView> {
        self.sweep();
        let Some(p) = self.projects.get(project) else {
            return Vec::new();
        };
        p.snapshots
            .iter()
            .map(|s| SnapshotView {
                id: s.id.clone(),
                name: s.name.clone(),
                volume_id: s.volume_id.clone(),
                status: self.snapshot_status(p, s).to_string(),
            })
            .collect()
    }

    pub fn backup_views(&mut self, project: &str) -> Vec<BackupView> {
        self.sweep();
        let Some(p) = self.projects.get(project) else {
            return Vec::new();
        };
        p.backups
            .iter()
            .map(|b| BackupView {
                id: b.id.clone(),
                name: b.name.clone(),
                volume_id: b.volume_id.clone(),
                snapshot_id: b.snapshot_id.clone(),
                status: self.backup_status(b).to_string(),
                is_incremental: b.incremental,
                fail_reason: (self.backup_status(b) == "error")
                    .then(|| b.fail_reason.clone())
                    .flatten(),
            })
            .collect()
    }
}

/// Whether another live backup was made incrementally on top of `id`.
pub fn has_dependents(p: &Project, id: &str) -> bool {
    p.backups.iter().any(|b| b.parent.as_deref() == Some(id))
}
