//! JSON in the vendor's shapes, null fields and fields the agent does not
//! use included, as the API pages and upstream samples show them.

use serde_json::{json, Value};

use super::state::{cinder_time, has_dependents, Backup, Project, Refusal, Snapshot, State};

/// `{"<fault>": {"code": N, "message": "…"}}`, and `retryAfter` for a 413.
pub fn fault(r: &Refusal) -> Value {
    let mut body = json!({ r.fault: { "code": r.status, "message": r.message } });
    if r.status == 413 {
        body[r.fault]["retryAfter"] = json!("0");
    }
    body
}

pub fn snapshot(state: &State, project: &str, p: &Project, s: &Snapshot) -> Value {
    let status = state.snapshot_status(p, s);
    json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": status,
        "size": s.size_gb,
        "created_at": cinder_time(s.created_at),
        "updated_at": Value::Null,
        "metadata": s.metadata,
        "os-extended-snapshot-attributes:project_id": project,
        "os-extended-snapshot-attributes:progress": if status == "creating" { "0%" } else { "100%" },
    })
}

fn links(state: &State, project: &str, id: &str) -> Value {
    json!([
        {"href": format!("{}/v3/{project}/backups/{id}", state.base_url), "rel": "self"},
        {"href": format!("{}/{project}/backups/{id}", state.base_url), "rel": "bookmark"},
    ])
}

/// The summary shape: id, links, name.
pub fn backup_summary(state: &State, project: &str, b: &Backup) -> Value {
    json!({"id": b.id, "links": links(state, project, &b.id), "name": b.name})
}

/// The detail shape of `vbs-v3-get-backup-detail.txt`.
pub fn backup_detail(state: &State, project: &str, p: &Project, b: &Backup) -> Value {
    let status = state.backup_status(b);
    let done = status == "available";
    json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "status": status,
        "volume_id": b.volume_id,
        "snapshot_id": b.snapshot_id,
        "size": b.size_gb,
        "object_count": if done { json!(b.size_gb.max(1)) } else { Value::Null },
        "container": if done { json!("volumebackups") } else { Value::Null },
        "availability_zone": Value::Null,
        "fail_reason": if status == "error" { json!(b.fail_reason) } else { Value::Null },
        "created_at": cinder_time(b.created_at),
        "updated_at": cinder_time(b.created_at),
        "data_timestamp": cinder_time(b.created_at),
        "has_dependent_backups": has_dependents(p, &b.id),
        "is_incremental": b.incremental,
        "links": links(state, project, &b.id),
        "metadata": {},
        "os-backup-project-attr:project_id": project,
        "user_id": "sim-user",
        "service_metadata": Value::Null,
    })
}
