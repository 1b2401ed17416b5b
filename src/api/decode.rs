//! Turns response bodies into typed values, with errors that say exactly
//! what was wrong with the answer (for the event log).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::fault::non_json_summary;
use super::types::{next_marker, Backup, BackupSummary, CheckpointItem, Link, Share, Snapshot};

mod cbr;
mod csbs;
mod inventory;
mod restore;
pub use cbr::{
    added_resources, cbr_backup, cbr_backup_record, cbr_backup_records, cbr_backups,
    cbr_checkpoint, member_status, members, operation_log, operation_logs, vault, vaults,
    CountedPage,
};
pub use csbs::{checkpoint, checkpoint_item, checkpoint_items};
pub use inventory::{found_server, found_servers, found_volumes, tagged, Tagged, TaggedPage};
pub use restore::{job, job_id, restored, volume, volumes};

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Parses JSON; duplicate keys keep the last value (serde_json's map),
/// unlike derived structs, which reject them.
pub fn json(body: &str) -> Result<Value, DecodeError> {
    if body.trim().is_empty() {
        return Err(DecodeError("empty body where JSON was expected".into()));
    }
    serde_json::from_str(body).map_err(|e| {
        let what = non_json_summary(body).unwrap_or_default();
        DecodeError(format!("malformed JSON ({e}); body starts: {what}"))
    })
}

/// The object under `key` (`{"backup": {…}}`).
fn member(body: &str, key: &str) -> Result<Value, DecodeError> {
    let mut v = json(body)?;
    v.get_mut(key)
        .map(Value::take)
        .filter(|m| !m.is_null())
        .ok_or_else(|| DecodeError(format!("answer has no `{key}` member")))
}

fn typed<T: DeserializeOwned>(v: Value, what: &str) -> Result<T, DecodeError> {
    serde_json::from_value(v).map_err(|e| DecodeError(format!("unexpected `{what}`: {e}")))
}

/// What a detail call (`GET …/{id}`) asks for by id.
pub trait Identified {
    fn id(&self) -> &str;
}

impl Identified for Snapshot {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for Backup {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for crate::api::types::Volume {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for crate::api::types::Job {
    fn id(&self) -> &str {
        &self.job_id
    }
}

impl Identified for CheckpointItem {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for crate::api::types::CbrBackup {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for crate::api::types::CbrBackupRecord {
    fn id(&self) -> &str {
        &self.backup.id
    }
}

impl Identified for crate::api::types::CbrCheckpoint {
    fn id(&self) -> &str {
        &self.id
    }
}

/// `decoded`, if it is the `what` asked for. A detail answer about another
/// one (from a caching proxy or a confused backend) would otherwise pass
/// for it, and a job could succeed on someone else's backup.
pub fn about<T: Identified>(
    what: &str,
    asked: &str,
    decoded: Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let found = decoded?;
    if found.id().eq_ignore_ascii_case(asked) {
        return Ok(found);
    }
    Err(DecodeError(format!(
        "the answer is about {what} `{}`, not `{asked}` as asked",
        found.id()
    )))
}

/// `{"snapshot": {…}}` from create and show.
pub fn snapshot(body: &str) -> Result<Snapshot, DecodeError> {
    typed(member(body, "snapshot")?, "snapshot")
}

/// `{"backup": {…}}` from show.
pub fn backup(body: &str) -> Result<Backup, DecodeError> {
    Backup::from_value(member(body, "backup")?)
        .map_err(|e| DecodeError(format!("unexpected `backup`: {e}")))
}

/// `{"backup": {"id", "links", "name"}}` from create.
pub fn backup_created(body: &str) -> Result<BackupSummary, DecodeError> {
    typed(member(body, "backup")?, "backup")
}

/// One page of a list: its items and the marker of the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// A page of `{"<key>": […], "<key>_links": […]}`, the next page after
/// the `marker` of its `next` link.
fn page<T>(
    body: &str,
    key: &str,
    item: impl Fn(Value) -> Result<T, DecodeError>,
) -> Result<Page<T>, DecodeError> {
    page_with(body, key, item, |links, _| next_marker(links))
}

/// [`page`], with the next page's marker chosen by `next` from the links
/// and the items.
fn page_with<T>(
    body: &str,
    key: &str,
    item: impl Fn(Value) -> Result<T, DecodeError>,
    next: impl Fn(&[Link], &[T]) -> Option<String>,
) -> Result<Page<T>, DecodeError> {
    let mut v = json(body)?;
    let items = match v.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(DecodeError(format!("`{key}` is not a list"))),
        None => return Err(DecodeError(format!("answer has no `{key}` list"))),
    };
    let links: Vec<Link> = match v.get_mut(format!("{key}_links").as_str()).map(Value::take) {
        Some(l @ Value::Array(_)) => typed(l, "links")?,
        _ => Vec::new(),
    };
    let items: Vec<T> = items.into_iter().map(item).collect::<Result<_, _>>()?;
    Ok(Page {
        next_marker: next(&links, &items),
        items,
    })
}

/// A page of the backup summary list (`GET …/backups`).
pub fn backup_summaries(body: &str) -> Result<Page<BackupSummary>, DecodeError> {
    page(body, "backups", |v| typed(v, "backups[]"))
}

/// A page of the detailed backup list (`GET …/backups/detail`).
pub fn backups(body: &str) -> Result<Page<Backup>, DecodeError> {
    page(body, "backups", |v| {
        Backup::from_value(v).map_err(|e| DecodeError(format!("unexpected `backups[]`: {e}")))
    })
}

/// `{"shared": […]}` from the share create and list calls.
pub fn shares(body: &str) -> Result<Vec<Share>, DecodeError> {
    Ok(page(body, "shared", |v| typed(v, "shared[]"))?.items)
}

/// A page of the detailed snapshot list (`GET …/snapshots/detail`).
pub fn snapshots(body: &str) -> Result<Page<Snapshot>, DecodeError> {
    page(body, "snapshots", |v| typed(v, "snapshots[]"))
}
