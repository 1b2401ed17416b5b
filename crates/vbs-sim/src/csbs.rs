//! Simulated CSBS: protect a server, its checkpoint item (listed only after
//! a short delay, as the real service does right after protect) with a
//! growing `progress` (an integer or a float), failures with `fail_reason`
//! and `fail_code` on demand, and asynchronous checkpoint deletion that
//! runs at most five deletions per project at once and queues the rest
//! (`waiting_delete`).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::routes::page_response;
use super::state::{cinder_time, State};
use super::{lock, Shared};

/// The one provider CSBS serves.
pub const PROVIDER: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";

/// Deletions CSBS runs at once per project; the rest wait.
const DELETION_SLOTS: usize = 5;

/// A server that can be backed up.
#[derive(Debug, Clone)]
pub struct SimServer {
    pub project: String,
    pub id: String,
    pub name: String,
    /// (volume id, size in GB) of its disks; the first is the boot disk.
    pub volumes: Vec<(String, u32)>,
    pub fault: Option<ServerFault>,
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
}

/// Where a deletion stands: when it starts and when it is done.
#[derive(Debug, Clone, Copy)]
struct Deletion {
    start: Instant,
    end: Instant,
}

impl Csbs {
    pub fn new(servers: Vec<SimServer>) -> Self {
        Self {
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
    fn checkpoint_deletions(&self, project: &str) -> HashMap<String, Deletion> {
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

    fn item_json(&mut self, status: &'static str, idx: usize) -> Value {
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

/// CSBS answers errors as `{"error": {"code": "CSBS.xxxx", "message": …}}`.
fn csbs_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn valid_backup_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `POST /v1/{project}/providers/{provider}/resources/{server}/action`.
pub async fn protect(
    AxState(state): AxState<Shared>,
    Path((project, provider, server)): Path<(String, String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let Some(p) = body
        .as_ref()
        .and_then(|Json(b)| b.get("protect"))
        .filter(|p| p.is_object())
    else {
        return csbs_error(
            StatusCode::BAD_REQUEST,
            "CSBS.1000",
            "the body has no `protect` object",
        );
    };
    if provider != PROVIDER {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1100",
            "the provider does not exist",
        );
    }
    let name = p
        .get("backup_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_backup_name(&name) {
        return csbs_error(
            StatusCode::BAD_REQUEST,
            "CSBS.1000",
            "backup_name must be 1-255 letters, digits, _ or -",
        );
    }
    let mut st = lock(&state);
    let Some(srv) = st
        .csbs
        .servers
        .iter()
        .find(|s| s.project == project && s.id == server)
        .cloned()
    else {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1104",
            &format!("server {server} does not exist"),
        );
    };
    let views = st.checkpoint_views(&project);
    if views
        .iter()
        .any(|(s, c)| c.server_id == server && *s == "protecting")
    {
        return csbs_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "CSBS.1001",
            "a backup of this server is already being executed",
        );
    }
    let incremental = views
        .iter()
        .any(|(s, c)| c.server_id == server && *s == "available");
    let now = st.now();
    let checkpoint = Checkpoint {
        project: project.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        item_id: uuid::Uuid::new_v4().to_string(),
        server_id: server.clone(),
        server_name: srv.name.clone(),
        name,
        description: p
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        created: Instant::now(),
        created_at: now,
        incremental,
        fault: srv.fault.clone(),
        volume_backups: srv
            .volumes
            .iter()
            .map(|(v, size)| (uuid::Uuid::new_v4().to_string(), v.clone(), *size))
            .collect(),
        delete_requested: None,
    };
    st.record(
        "checkpoint",
        &project,
        &checkpoint.id,
        &checkpoint.name,
        &server,
        now,
    );
    st.csbs.looks += 1;
    // The SDK fixture has the resource's extra_info as the string "{}".
    let extra_info = if st.csbs.looks.is_multiple_of(2) {
        json!("{}")
    } else {
        json!({})
    };
    let answer = json!({"checkpoint": {
        "status": "protecting",
        "created_at": cinder_time(now),
        "id": checkpoint.id,
        "resource_graph": Value::Null,
        "project_id": project,
        "extra_info": Value::Null,
        "protection_plan": {
            "id": format!("fake_{}", uuid::Uuid::new_v4()),
            "resources": [{"type": "OS::Nova::Server", "id": server, "name": srv.name, "extra_info": extra_info}],
            "name": format!("server protect plan for {server}"),
        },
    }});
    st.csbs.checkpoints.push(checkpoint);
    Json(answer).into_response()
}

/// `GET /v1/{project}/checkpoint_items` with `checkpoint_id`, `resource_id`,
/// `name`, `status`, `limit`, `marker`. An item is listed only once it is
/// `checkpoint_item_delay` old.
pub async fn list_items(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = lock(&state);
    let delay = st.config.checkpoint_item_delay;
    let matches = |key: &str, value: &str| q.get(key).is_none_or(|want| want == value);
    let mut rows: Vec<(usize, &'static str)> = st
        .checkpoint_views(&project)
        .into_iter()
        .filter(|(s, c)| {
            c.created.elapsed() >= delay
                && matches("checkpoint_id", &c.id)
                && matches("resource_id", &c.server_id)
                && matches("name", &c.name)
                && matches("status", s)
        })
        .filter_map(|(s, c)| {
            let idx = st.csbs.checkpoints.iter().position(|x| x.id == c.id)?;
            Some((idx, s))
        })
        .collect();
    rows.sort_by(|a, b| {
        let (x, y) = (&st.csbs.checkpoints[a.0], &st.csbs.checkpoints[b.0]);
        y.created_at
            .cmp(&x.created_at)
            .then(y.item_id.cmp(&x.item_id))
    });
    let mut items: Vec<(String, Value)> = Vec::new();
    for (idx, status) in rows {
        let id = st.csbs.checkpoints[idx].item_id.clone();
        items.push((id, st.item_json(status, idx)));
    }
    let items: Vec<(&str, Value)> = items
        .iter()
        .map(|(id, v)| (id.as_str(), v.clone()))
        .collect();
    page_response("checkpoint_items", items, &q, &st.base_url, &project)
}

/// `GET /v1/{project}/checkpoint_items/{id}`.
pub async fn show_item(
    AxState(state): AxState<Shared>,
    Path((project, id)): Path<(String, String)>,
) -> Response {
    let mut st = lock(&state);
    let found = st
        .checkpoint_views(&project)
        .into_iter()
        .find(|(_, c)| c.item_id == id)
        .and_then(|(s, c)| {
            let idx = st.csbs.checkpoints.iter().position(|x| x.id == c.id)?;
            Some((idx, s))
        });
    match found {
        Some((idx, status)) => {
            Json(json!({"checkpoint_item": st.item_json(status, idx)})).into_response()
        }
        None => csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1105",
            &format!("backup {id} does not exist"),
        ),
    }
}

/// `DELETE /v1/{project}/providers/{provider}/checkpoints/{id}`: accepted
/// and queued; a second delete of the same checkpoint is refused (400).
pub async fn delete_checkpoint(
    AxState(state): AxState<Shared>,
    Path((project, provider, id)): Path<(String, String, String)>,
) -> Response {
    if provider != PROVIDER {
        return csbs_error(
            StatusCode::NOT_FOUND,
            "CSBS.1100",
            "the provider does not exist",
        );
    }
    let mut st = lock(&state);
    let status = st
        .checkpoint_views(&project)
        .into_iter()
        .find(|(_, c)| c.id == id)
        .map(|(s, _)| s);
    match status {
        None => {
            return csbs_error(
                StatusCode::NOT_FOUND,
                "CSBS.1105",
                &format!("checkpoint {id} does not exist"),
            )
        }
        Some("waiting_delete" | "deleting") => {
            return csbs_error(
                StatusCode::BAD_REQUEST,
                "CSBS.2003",
                "the backup is already being deleted",
            )
        }
        Some("protecting") => {
            return csbs_error(
                StatusCode::BAD_REQUEST,
                "CSBS.2003",
                "the backup is still being made",
            )
        }
        Some(_) => {}
    }
    let now = Instant::now();
    if let Some(c) = st
        .csbs
        .checkpoints
        .iter_mut()
        .find(|c| c.id == id && c.project == project)
    {
        c.delete_requested = Some(now);
    }
    let pending = st
        .checkpoint_deletions(&project)
        .values()
        .filter(|d| d.end > now)
        .count();
    let peak = st.csbs.peak_deletions.entry(project).or_default();
    *peak = (*peak).max(pending);
    Json(json!({})).into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::SimConfig;

    const P: &str = "0123456789abcdef0123456789abcdef";
    const SRV: &str = "f8ddc472-cf00-4384-851e-5f2a68c33762";

    fn shared() -> Shared {
        let config = SimConfig {
            servers: vec![SimServer {
                project: P.into(),
                id: SRV.into(),
                name: "web".into(),
                volumes: vec![("v1".into(), 20)],
                fault: None,
            }],
            server_backup_duration: Duration::from_secs(10),
            checkpoint_item_delay: Duration::from_secs(2),
            checkpoint_delete_duration: Duration::from_secs(5),
            ..SimConfig::default()
        };
        Arc::new(Mutex::new(State::new(config, "http://sim".into())))
    }

    async fn body(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn protect_named(state: &Shared, name: &str) -> String {
        let req = json!({"protect": {"backup_name": name}});
        let (status, v) = body(
            protect(
                AxState(Arc::clone(state)),
                Path((P.into(), PROVIDER.into(), SRV.into())),
                Some(Json(req)),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["checkpoint"]["id"].as_str().unwrap().to_string()
    }

    async fn list(state: &Shared, q: &[(&str, &str)]) -> Vec<Value> {
        let q = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (_, v) =
            body(list_items(AxState(Arc::clone(state)), Path(P.into()), Query(q)).await).await;
        v["checkpoint_items"].as_array().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn the_vendor_request_is_accepted_and_its_item_appears_late_and_grows() {
        let state = shared();
        // The vendor's sample, as the agent's own tests read it.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/api/csbs_protect_request_otc.json"
        );
        let sample = std::fs::read_to_string(path).unwrap();
        let (status, v) = body(
            protect(
                AxState(Arc::clone(&state)),
                Path((P.into(), PROVIDER.into(), SRV.into())),
                Some(Json(serde_json::from_str(&sample).unwrap())),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let checkpoint = v["checkpoint"]["id"].as_str().unwrap().to_string();
        assert!(list(&state, &[("checkpoint_id", &checkpoint)])
            .await
            .is_empty());
        tokio::time::advance(Duration::from_secs(3)).await;
        let items = list(&state, &[("checkpoint_id", &checkpoint)]).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["status"], "protecting");
        let early = items[0]["extend_info"]["progress"].as_f64().unwrap();
        // A second backup of the same server while one runs: CSBS.1001.
        let req = json!({"protect": {"backup_name": "again"}});
        let (status, v) = body(
            protect(
                AxState(Arc::clone(&state)),
                Path((P.into(), PROVIDER.into(), SRV.into())),
                Some(Json(req)),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, v["error"]["code"].clone()),
            (StatusCode::INTERNAL_SERVER_ERROR, json!("CSBS.1001"))
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        let item = &list(&state, &[("name", "backup")]).await[0];
        let later = item["extend_info"]["progress"].as_f64().unwrap();
        assert!(later > early, "{early} → {later}");
        tokio::time::advance(Duration::from_secs(4)).await;
        let item = &list(&state, &[("status", "available")]).await[0];
        assert_eq!(
            item["extend_info"]["volume_backups"][0]["source_volume_id"],
            "v1"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn deletions_beyond_five_wait_their_turn() {
        let state = shared();
        let mut ids = Vec::new();
        for n in 0..6 {
            ids.push(protect_named(&state, &format!("b{n}")).await);
            tokio::time::advance(Duration::from_secs(11)).await;
        }
        for id in &ids {
            let r = delete_checkpoint(
                AxState(Arc::clone(&state)),
                Path((P.into(), PROVIDER.into(), id.clone())),
            )
            .await;
            assert_eq!(r.status(), StatusCode::OK);
        }
        let statuses = |state: &Shared| -> Vec<&'static str> {
            let st = lock(state);
            ids.iter()
                .map(|id| st.checkpoint_ledger_status(P, id))
                .collect()
        };
        assert_eq!(
            statuses(&state),
            [
                "deleting",
                "deleting",
                "deleting",
                "deleting",
                "deleting",
                "waiting_delete"
            ]
        );
        // Asking again while it runs is refused.
        let again = delete_checkpoint(
            AxState(Arc::clone(&state)),
            Path((P.into(), PROVIDER.into(), ids[0].clone())),
        )
        .await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            statuses(&state),
            ["deleted", "deleted", "deleted", "deleted", "deleted", "deleting"]
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(statuses(&state).iter().all(|s| *s == "deleted"));
        assert_eq!(lock(&state).csbs.peak_deletions.get(P), Some(&6));
    }
}
