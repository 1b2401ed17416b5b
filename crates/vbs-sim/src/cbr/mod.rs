//! Simulated CBR (Cloud Backup and Recovery): vaults with their bound
//! disks, a backup run (`POST …/checkpoints`) that answers 200 with the
//! checkpoint and the resources it skipped but no backup ids, one backup per
//! disk that shows up in lists only after a delay and goes `protecting` →
//! `available` (or `error`), deletion that answers 204 and leaves the backup
//! `deleting` until it is gone, and an operation log per backup and
//! deletion. Times look like the samples (`…T07:59:12.733+00:00`); errors
//! have CBR's flat shape. Served under `/cbr`, because CBR's
//! `/v3/{project}/backups` would clash with Cinder's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::state::State;
use super::{ServerFault, VolumeFault};

mod routes;

pub use routes::{disk_from_backup, router};

/// The provider id of disk backups.
pub const DISK_PROVIDER: &str = "d1603440-187d-4516-af25-121250c7cc97";

/// The fixed provider of server vaults and their backups.
pub const SERVER_PROVIDER: &str = "0daac4c5-6707-4851-97ba-169e36266b66";

/// The resource types of a disk and a server.
pub const DISK: &str = "OS::Cinder::Volume";
pub const SERVER: &str = "OS::Nova::Server";

/// A vault the simulated CBR starts with.
#[derive(Debug, Clone, Default)]
pub struct SimVault {
    pub project: String,
    pub id: String,
    pub name: String,
    /// `disk` or `server`: what the vault holds.
    pub object_type: String,
    /// The disks (or servers) bound to it.
    pub resources: Vec<String>,
    /// A policy of the vault's own that backs its resources up too.
    pub policy_id: Option<String>,
}

impl SimVault {
    /// Whether it holds servers rather than disks.
    pub fn for_servers(&self) -> bool {
        self.object_type == "server"
    }
}

pub struct Vault {
    pub project: String,
    pub id: String,
    pub name: String,
    pub object_type: String,
    pub resources: Vec<String>,
    pub policy_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One backup run.
pub struct Checkpoint {
    pub project: String,
    pub id: String,
    pub vault_id: String,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// (volume, code, reason) of the volumes the run did not take.
    pub skipped: Vec<(String, String, String)>,
}

/// One backup of one disk.
pub struct Backup {
    pub project: String,
    pub id: String,
    pub checkpoint_id: String,
    pub vault_id: String,
    pub volume_id: String,
    pub name: String,
    pub description: String,
    pub size_gb: u32,
    /// `OS::Cinder::Volume` or `OS::Nova::Server`.
    pub resource_type: &'static str,
    /// A server backup's disk backups: (id, disk, size in GB).
    pub children: Vec<(String, String, u32)>,
    pub created: Instant,
    pub created_at: DateTime<Utc>,
    pub incremental: bool,
    /// Why it ends in `error`, if it does.
    pub fails: Option<String>,
    pub never_finishes: bool,
    pub delete_requested: Option<(Instant, DateTime<Utc>)>,
}

/// A project a backup is shared with.
pub struct Member {
    pub id: String,
    pub backup_id: String,
    pub project: String,
    pub created_at: DateTime<Utc>,
}

/// CBR state of every project.
#[derive(Default)]
pub struct Cbr {
    pub vaults: Vec<Vault>,
    pub checkpoints: Vec<Checkpoint>,
    pub backups: Vec<Backup>,
    pub members: Vec<Member>,
}

impl Cbr {
    pub fn new(vaults: &[SimVault]) -> Self {
        let now = Utc::now();
        Self {
            vaults: vaults
                .iter()
                .map(|v| Vault {
                    project: v.project.clone(),
                    id: v.id.clone(),
                    name: v.name.clone(),
                    object_type: v.object_type.clone(),
                    resources: v.resources.clone(),
                    policy_id: v.policy_id.clone(),
                    created_at: now,
                })
                .collect(),
            ..Self::default()
        }
    }
}

impl Cbr {
    /// A live backup of a project.
    pub fn backup(&self, project: &str, id: &str) -> Option<&Backup> {
        self.backups
            .iter()
            .find(|b| b.project == project && b.id == id)
    }
}

/// What a run backs up of one resource.
struct Resource {
    kind: &'static str,
    size_gb: u32,
    children: Vec<(String, String, u32)>,
    fails: Option<String>,
    never_finishes: bool,
}

/// CBR's timestamps: milliseconds and an explicit `+00:00`.
pub fn cbr_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

impl State {
    /// A backup's status now; `None` once its deletion is over.
    pub(crate) fn cbr_backup_status(&self, b: &Backup) -> Option<&'static str> {
        if let Some((since, _)) = b.delete_requested {
            return (since.elapsed() < self.config.delete_duration).then_some("deleting");
        }
        Some(
            if b.never_finishes || b.created.elapsed() < self.config.backup_duration {
                "protecting"
            } else if b.fails.is_some() {
                "error"
            } else if self.restoring(&b.id) {
                "restoring"
            } else {
                "available"
            },
        )
    }

    /// Whether lists show the backup yet: CBR lists a run's backups only a
    /// while after the run.
    pub(crate) fn cbr_listed(&self, b: &Backup) -> bool {
        b.created.elapsed() >= self.config.cbr_listing_delay
    }

    /// A checkpoint's status: `protecting` while a backup of it is, then
    /// `error` if one failed, else `available`.
    pub(crate) fn cbr_checkpoint_status(&self, id: &str) -> &'static str {
        let statuses: Vec<&str> = self
            .cbr
            .backups
            .iter()
            .filter(|b| b.checkpoint_id == id)
            .filter_map(|b| self.cbr_backup_status(b))
            .collect();
        if statuses.contains(&"protecting") {
            "protecting"
        } else if statuses.contains(&"error") {
            "error"
        } else {
            "available"
        }
    }

    /// Starts a run of `vault_id` over `volumes` (all the vault's when
    /// empty): one backup per bound, idle volume; the rest are skipped with
    /// a code and a reason. Returns the checkpoint's index, or `None` when
    /// nothing could be backed up.
    pub(crate) fn cbr_run(
        &mut self,
        project: &str,
        vault_id: &str,
        volumes: &[String],
        name: &str,
        description: &str,
        incremental: bool,
    ) -> Result<usize, (u16, &'static str, String)> {
        let Some(vault) = self
            .cbr
            .vaults
            .iter()
            .find(|v| v.project == project && v.id == vault_id)
        else {
            return Err((
                404,
                "BackupService.6105",
                format!("Vault {vault_id} does not exist."),
            ));
        };
        let wanted: Vec<String> = if volumes.is_empty() {
            vault.resources.clone()
        } else {
            volumes.to_vec()
        };
        let for_servers = vault.object_type == "server";
        let checkpoint_id = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        let mut skipped = Vec::new();
        let mut made = Vec::new();
        for volume in wanted {
            if !vault.resources.contains(&volume) {
                skipped.push((
                    volume,
                    "BackupService.6302".to_string(),
                    "The resource is not in the vault.".to_string(),
                ));
                continue;
            }
            let busy =
                self.cbr.backups.iter().any(|b| {
                    b.volume_id == volume && self.cbr_backup_status(b) == Some("protecting")
                });
            if busy {
                skipped.push((
                    volume,
                    "BackupService.6125".to_string(),
                    "The resource is being backed up.".to_string(),
                ));
                continue;
            }
            let found = if for_servers {
                self.server_resource(project, &volume)
            } else {
                self.disk_resource(project, &volume)
            };
            let Some(resource) = found else {
                let (code, what) = if for_servers {
                    ("BackupService.7100", "server")
                } else {
                    ("BackupService.7000", "disk")
                };
                skipped.push((
                    volume,
                    code.to_string(),
                    format!("The {what} does not exist."),
                ));
                continue;
            };
            made.push(Backup {
                project: project.to_string(),
                id: uuid::Uuid::new_v4().to_string(),
                checkpoint_id: checkpoint_id.clone(),
                vault_id: vault_id.to_string(),
                volume_id: volume,
                name: name.to_string(),
                description: description.to_string(),
                size_gb: resource.size_gb,
                resource_type: resource.kind,
                children: resource.children,
                created: Instant::now(),
                created_at: now,
                incremental,
                fails: resource.fails,
                never_finishes: resource.never_finishes,
                delete_requested: None,
            });
        }
        if made.is_empty() {
            return Err((
                400,
                "BackupService.0001",
                "No resource in the vault can be backed up.".to_string(),
            ));
        }
        for b in made {
            self.record(
                "cbr_backup",
                project,
                &b.id,
                &b.name,
                &b.volume_id,
                b.created_at,
            );
            self.cbr.backups.push(b);
        }
        self.cbr.checkpoints.push(Checkpoint {
            project: project.to_string(),
            id: checkpoint_id,
            vault_id: vault_id.to_string(),
            name: name.to_string(),
            description: description.to_string(),
            created_at: now,
            skipped,
        });
        Ok(self.cbr.checkpoints.len() - 1)
    }

    /// A disk to back up: its size and how its backups end.
    fn disk_resource(&self, project: &str, id: &str) -> Option<Resource> {
        let v = self.projects.get(project)?.volumes.get(id)?;
        let (fails, never_finishes) = match &v.fault {
            Some(VolumeFault::BackupError { fail_reason }) => (Some(fail_reason.clone()), false),
            Some(VolumeFault::BackupNeverFinishes) => (None, true),
            _ => (None, false),
        };
        Some(Resource {
            kind: DISK,
            size_gb: v.size_gb,
            children: Vec::new(),
            fails,
            never_finishes,
        })
    }

    /// A server to back up: all its disks, each a child backup.
    fn server_resource(&self, project: &str, id: &str) -> Option<Resource> {
        let s = self
            .csbs
            .servers
            .iter()
            .find(|s| s.project == project && s.id == id)?;
        let (fails, never_finishes) = match &s.fault {
            Some(ServerFault::BackupError { fail_reason, .. }) => {
                (Some(fail_reason.clone()), false)
            }
            Some(ServerFault::BackupNeverFinishes) => (None, true),
            None => (None, false),
        };
        Some(Resource {
            kind: SERVER,
            size_gb: s.volumes.iter().map(|(_, gb)| gb).sum(),
            children: s
                .volumes
                .iter()
                .map(|(disk, gb)| (uuid::Uuid::new_v4().to_string(), disk.clone(), *gb))
                .collect(),
            fails,
            never_finishes,
        })
    }

    /// Removes backups whose deletion is over, noting them in the ledger.
    pub(crate) fn cbr_sweep(&mut self) {
        let delay: Duration = self.config.delete_duration;
        let mut gone = Vec::new();
        self.cbr.backups.retain(|b| {
            let over = b
                .delete_requested
                .is_some_and(|(since, _)| since.elapsed() >= delay);
            if over {
                gone.push(b.id.clone());
            }
            !over
        });
        // A backup's shares go with it.
        self.cbr.members.retain(|m| !gone.contains(&m.backup_id));
        self.note_deleted(&gone);
    }
}
