//! Backup sharing (`…/os-vendor-backup-sharing`): an available backup
//! shared with other projects, and the share list from either side.

use std::collections::HashMap;

use axum::extract::{Path, Query, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::backups::not_found;
use super::routes::{body_object, matches, required, MAX_PAGE};
use super::state::{cinder_time, Backup, Refusal, State};
use super::{lock, shapes, swept, Shared};

/// One backup shared from one project to another.
pub struct Share {
    pub id: String,
    pub backup_id: String,
    pub from_project: String,
    pub to_project: String,
    pub created_at: DateTime<Utc>,
}

impl State {
    /// `POST …/os-vendor-backup-sharing`: shares an available backup;
    /// a project it is already shared with keeps its existing share.
    pub fn share(
        &mut self,
        project: &str,
        backup_id: &str,
        to: &[String],
    ) -> Result<Vec<String>, Refusal> {
        self.sweep();
        let (_, b) = self
            .find::<Backup>(project, backup_id)
            .ok_or_else(|| not_found(backup_id))?;
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
}

pub async fn create(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    body: Option<Json<Value>>,
) -> Result<Response, Refusal> {
    let req = body_object(&body, "shared")?;
    let backup_id = required(req, "backup_id")?;
    let to: Vec<String> = req
        .get("to_project_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut st = lock(&state);
    let ids = st.share(&project, &backup_id, &to)?;
    let shared: Vec<Value> = st
        .shares
        .iter()
        .filter(|s| ids.contains(&s.id))
        .map(|s| {
            json!({"backup_id": s.backup_id, "deleted": null, "created_at": null, "updated_at": null,
                   "to_project_id": s.to_project, "from_project_id": s.from_project,
                   "deleted_at": null, "id": s.id})
        })
        .collect();
    Ok(Json(json!({ "shared": shared })).into_response())
}

/// The share list with the page's filters; `share_to_me=true` lists what
/// other projects shared with this one.
pub async fn list(
    AxState(state): AxState<Shared>,
    Path(project): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let to_me = q.get("share_to_me").is_some_and(|v| v == "true");
    let st = swept(&state);
    let mut rows: Vec<(&Share, Value)> = Vec::new();
    for s in &st.shares {
        let mine = if to_me {
            s.to_project == project
        } else {
            s.from_project == project
        };
        if !mine
            || !matches(&q, "backup_id", &s.backup_id)
            || !matches(&q, "to_project_id", &s.to_project)
            || !matches(&q, "from_project_id", &s.from_project)
        {
            continue;
        }
        let Some((p, b)) = st.find::<Backup>(&s.from_project, &s.backup_id) else {
            continue;
        };
        let backup = shapes::backup_detail(&st, &s.from_project, p, b);
        let name_ok = q.get("name").is_none_or(|n| b.name.contains(n.as_str()));
        if !name_ok
            || !matches(&q, "status", st.backup_status(b))
            || !matches(&q, "volume_id", &b.volume_id)
        {
            continue;
        }
        let share = json!({"backup": backup, "backup_id": s.backup_id, "created_at": cinder_time(s.created_at),
                           "from_project_id": s.from_project, "id": s.id, "to_project_id": s.to_project, "updated_at": null});
        rows.push((s, share));
    }
    let desc = q.get("sort_dir").is_none_or(|d| d != "asc");
    rows.sort_by(|(a, _), (b, _)| {
        let order = match q.get("sort_key").map(String::as_str) {
            Some("id") => a.id.cmp(&b.id),
            _ => a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)),
        };
        if desc {
            order.reverse()
        } else {
            order
        }
    });
    let offset = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(MAX_PAGE)
        .min(MAX_PAGE);
    let page: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, v)| v)
        .collect();
    Json(json!({ "shared": page })).into_response()
}
