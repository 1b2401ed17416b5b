//! Simulated CSBS: protect a server, its checkpoint item (listed only after
//! a short delay, as the real service does right after protect) with a
//! growing `progress` (an integer or a float), failures with `fail_reason`
//! and `fail_code` on demand, and asynchronous checkpoint deletion that
//! runs at most five deletions per project at once and queues the rest
//! (`waiting_delete`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::state::{cinder_time, State};

mod routes;
#[cfg(test)]
mod tests;

pub use routes::{delete_checkpoint, list_items, protect, show_item};

/// The one provider CSBS serves.
pub const PROVIDER: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";

/// Deletions CSBS runs at once per project; the rest wait.
const DELETION_SLOTS: usize = 5;

/// A server that can be backed up, and that the ECS and Nova lists show.
#[derive(Debug, Clone, Default)]
pub struct SimServer {
    pub project: String,
    pub id: String,
    pub name: String,
    /// (volume id, size in GB) of its disks; the first is the boot disk.
    pub volumes: Vec<(String, u32)>,
    pub fault: Option<ServerFault>,
    /// ECS tags (two-dimensional, key and value): what the ECS tag filter
    /// selects on.
    pub tags: BTreeMap<String, String>,
}

/// How the simulated CSBS misbehaves for one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFault {
    /// Backups end in `error` with this `fail_reason` and `fail_code`.
    BackupError { fail_reason: String, fail_code: i64 },
    /// Backups stay `protecting` forever.
    BackupNeverFinishes,
}

/// One server backup: the checkpoint and its single item.
pub struct Checkpoint {
    pub project: String,
    pub id: String,
    pub item_id: String,
    pub server_id: String,
    pub server_name: String,
    pub name: String,
    pub description: Option<String>,
    pub created: Instant,
    pub created_at: DateTime<Utc>,
    pub incremental: bool,
    pub fault: Option<ServerFault>,
    /// (volume backup id, volume id, size GB).
    pub volume_backups: Vec<(String, String, u32)>,
    pub delete_requested: Option<Instant>,
}

/// CSBS state of every project.
#[derive(Default)]
pub struct Csbs {
    pub servers: Vec<SimServer>,
    pub checkpoints: Vec<Checkpoint>,
    /// Answers served, to vary the representation of `progress`.
    pub looks: u64,
    /// Most deletions pending (queued or running) at once, per project.
    pub peak_deletions: HashMap<String, usize>,
    /// When each server came to be (Nova's `created`).
    pub server_created: HashMap<String, DateTime<Utc>>,
}

/// Where a deletion stands: when it starts and when it is done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deletion {
    start: Instant,
    pub end: Instant,
}

impl Csbs {
    pub fn new(servers: Vec<SimServer>) -> Self {
        let now = Utc::now();
        Self {
            server_created: servers.iter().map(|s| (s.id.clone(), now)).collect(),
            servers,
            ..Self::default()
        }
    }

    /// When each deletion of `project` runs: in request order, each in the
    /// first of the five slots to come free.
    fn deletions(&self, project: &str, duration: Duration) -> HashMap<String, Deletion> {
        let mut requested: Vec<(&str, Instant)> = self
            .checkpoints
            .iter()
            .filter(|c| c.project == project)
            .filter_map(|c| c.delete_requested.map(|t| (c.id.as_str(), t)))
            .collect();
        requested.sort_by_key(|(_, t)| *t);
        let mut free: Vec<Option<Instant>> = vec![None; DELETION_SLOTS];
        let mut out = HashMap::new();
        for (id, at) in requested {
            let (slot, free_at) = free
                .iter()
                .enumerate()
                .min_by_key(|(_, f)| **f)
                .map(|(i, f)| (i, *f))
                .unwrap_or((0, None));
            let start = free_at.map_or(at, |f| f.max(at));
            let end = start + duration;
            free[slot] = Some(end);
            out.insert(id.to_string(), Deletion { start, end });
        }
        out
    }
}

impl State {
    pub(crate) fn checkpoint_deletions(&self, project: &str) -> HashMap<String, Deletion> {
        self.csbs
            .deletions(project, self.config.checkpoint_delete_duration)
    }

    /// The item's status now; `None` once its deletion has finished.
    fn item_status(
        &self,
        c: &Checkpoint,
        deletions: &HashMap<String, Deletion>,
    ) -> Option<&'static str> {
        let now = Instant::now();
        if let Some(d) = deletions.get(&c.id) {
            return if now >= d.end {
                None
            } else if now >= d.start {
                Some("deleting")
            } else {
                Some("waiting_delete")
            };
        }
        let done = c.created.elapsed() >= self.config.server_backup_duration;
        Some(match &c.fault {
            Some(ServerFault::BackupNeverFinishes) => "protecting",
            _ if !done => "protecting",
            Some(ServerFault::BackupError { .. }) => "error",
            None => "available",
        })
    }

    /// Live checkpoint items of a project: (status, checkpoint).
    pub fn checkpoint_views(&self, project: &str) -> Vec<(&'static str, &Checkpoint)> {
        let deletions = self.checkpoint_deletions(project);
        self.csbs
            .checkpoints
            .iter()
            .filter(|c| c.project == project)
            .filter_map(|c| self.item_status(c, &deletions).map(|s| (s, c)))
            .collect()
    }

    /// The status a ledger entry for checkpoint `id` shows.
    pub fn checkpoint_ledger_status(&self, project: &str, id: &str) -> &'static str {
        self.checkpoint_views(project)
            .into_iter()
            .find(|(_, c)| c.id == id)
            .map_or("deleted", |(s, _)| s)
    }

    /// `progress` now: 0–100 with one decimal.
    fn progress(&self, status: &str, c: &Checkpoint) -> f64 {
        if status != "protecting" {
            return 100.0;
        }
        let total = self.config.server_backup_duration.as_secs_f64().max(0.001);
        let done = (c.created.elapsed().as_secs_f64() / total * 100.0).min(99.9);
        (done * 10.0).floor() / 10.0
    }

    pub(crate) fn item_json(&mut self, status: &'static str, idx: usize) -> Value {
        self.csbs.looks += 1;
        let as_float = self.csbs.looks % 2 == 1;
        let c = &self.csbs.checkpoints[idx];
        let progress = self.progress(status, c);
        // Documented as an integer; real answers also carry floats.
        let progress = if as_float {
            json!(progress)
        } else {
            json!(progress.floor() as i64)
        };
        let failed = status == "error";
        let (fail_reason, fail_code) = match (&c.fault, failed) {
            (
                Some(ServerFault::BackupError {
                    fail_reason,
                    fail_code,
                }),
                true,
            ) => (
                json!(fail_reason),
                json!({"Code": fail_code, "Description": fail_reason}),
            ),
            _ => (json!(""), json!({})),
        };
        let finished = matches!(status, "available" | "error");
        let volume_backups: Vec<Value> = c
            .volume_backups
            .iter()
            .enumerate()
            .map(|(i, (id, volume, size))| {
                json!({
                    "status": if finished { status } else { "creating" },
                    "space_saving_ratio": 0,
                    "name": format!("manualbk_{}_{}", &c.item_id[..4], c.server_name),
                    "bootable": i == 0,
                    "average_speed": 0,
                    "source_volume_size": size,
                    "source_volume_id": volume,
                    "incremental": c.incremental,
                    "image_type": "backup",
                    "source_volume_name": format!("{}-disk{i}", c.server_name),
                    "id": id,
                    "size": if finished { json!(size * 1024) } else { json!(0) },
                    "snapshot_id": Value::Null,
                })
            })
            .collect();
        let size_mb: u32 = c.volume_backups.iter().map(|(_, _, s)| s * 1024).sum();
        json!({
            "id": c.item_id,
            "name": c.name,
            "checkpoint_id": c.id,
            "resource_id": c.server_id,
            "resource_type": "OS::Nova::Server",
            "status": status,
            "description": c.description,
            "created_at": cinder_time(c.created_at),
            "updated_at": cinder_time(c.created_at),
            "tags": [],
            "backup_data": {"eip": "", "cloudservicetype": "QEMU", "ram": 4096, "vcpus": 2,
                            "__openstack_region_name": "", "private_ip": "", "disk": 0, "imagetype": "gold"},
            "extend_info": {
                "auto_trigger": false, "space_saving_ratio": 0, "copy_status": "na",
                "fail_reason": fail_reason, "resource_az": "sim-az1", "image_type": "backup",
                "finished_at": if finished { json!(cinder_time(c.created_at)) } else { Value::Null },
                "average_speed": 0, "copy_from": Value::Null, "supported_restore_mode": "backup",
                "support_lld": false, "volume_backups": volume_backups, "fail_code": fail_code,
                "incremental": c.incremental, "taskid": c.id, "hypervisor_type": "QEMU",
                "progress": progress, "fail_op": if failed { "backup" } else { "" },
                "resource_name": c.server_name, "resource_type": "OS::Nova::Server",
                "size": if finished { json!(size_mb) } else { json!(0) },
            },
        })
    }
}
