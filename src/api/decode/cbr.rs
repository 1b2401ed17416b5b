//! CBR bodies: vaults, the checkpoint of a backup run, backups, share
//! members and operation logs. CBR lists page by `offset`, with `count` the
//! total across all pages (the docs show no next links).

use serde_json::Value;

use super::{json, member, typed, DecodeError};
use crate::api::types::{CbrBackup, CbrBackupRecord, CbrCheckpoint, Member, OperationLog, Vault};

/// One page of a CBR list and the total the cloud reports for all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct CountedPage<T> {
    pub items: Vec<T>,
    /// All items across pages; `None` if the answer did not say.
    pub count: Option<u64>,
}

impl<T> CountedPage<T> {
    /// Whether another page may follow one that started at `offset`: the
    /// total is not reached and this page was not empty.
    pub fn more_after(&self, offset: u64) -> bool {
        let seen = offset + self.items.len() as u64;
        !self.items.is_empty() && self.count.is_some_and(|c| seen < c)
    }
}

/// `{"<key>": […], "count": N}`.
fn counted<T: serde::de::DeserializeOwned>(
    body: &str,
    key: &str,
) -> Result<CountedPage<T>, DecodeError> {
    let mut v = json(body)?;
    let items = match v.get_mut(key).map(Value::take) {
        Some(items @ Value::Array(_)) => typed(items, &format!("{key}[]"))?,
        Some(Value::Null) | None => return Err(DecodeError(format!("answer has no `{key}` list"))),
        Some(_) => return Err(DecodeError(format!("`{key}` is not a list"))),
    };
    let count = match v.get("count") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(CountedPage { items, count })
}

/// `{"vault": {…}}` from show and create.
pub fn vault(body: &str) -> Result<Vault, DecodeError> {
    typed(member(body, "vault")?, "vault")
}

/// A page of `GET …/vaults`.
pub fn vaults(body: &str) -> Result<CountedPage<Vault>, DecodeError> {
    counted(body, "vaults")
}

/// `{"add_resource_ids": […]}` from `…/addresources`.
pub fn added_resources(body: &str) -> Result<Vec<String>, DecodeError> {
    typed(member(body, "add_resource_ids")?, "add_resource_ids")
}

/// `{"checkpoint": {…}}` from a backup run and from the checkpoint's GET.
pub fn cbr_checkpoint(body: &str) -> Result<CbrCheckpoint, DecodeError> {
    typed(member(body, "checkpoint")?, "checkpoint")
}

/// `{"backup": {…}}` from `GET …/backups/{id}`.
pub fn cbr_backup(body: &str) -> Result<CbrBackup, DecodeError> {
    typed(member(body, "backup")?, "backup")
}

/// `{"backup": {…}}` with every field the cloud sent.
pub fn cbr_backup_record(body: &str) -> Result<CbrBackupRecord, DecodeError> {
    typed(member(body, "backup")?, "backup")
}

/// A page of `GET …/backups`, each backup with every field the cloud sent.
pub fn cbr_backup_records(body: &str) -> Result<CountedPage<CbrBackupRecord>, DecodeError> {
    counted(body, "backups")
}

/// A page of `GET …/backups` (by checkpoint, resource or vault).
pub fn cbr_backups(body: &str) -> Result<CountedPage<CbrBackup>, DecodeError> {
    counted(body, "backups")
}

/// `{"members": […]}` from adding members and from their list.
pub fn members(body: &str) -> Result<CountedPage<Member>, DecodeError> {
    counted(body, "members")
}

/// `{"member": {…}}` from a member's update.
pub fn member_status(body: &str) -> Result<Member, DecodeError> {
    typed(member(body, "member")?, "member")
}

/// A page of `GET …/operation-logs`.
pub fn operation_logs(body: &str) -> Result<CountedPage<OperationLog>, DecodeError> {
    counted(body, "operation_logs")
}

/// `{"operation_log": {…}}` from one log's GET.
pub fn operation_log(body: &str) -> Result<OperationLog, DecodeError> {
    typed(member(body, "operation_log")?, "operation_log")
}

#[cfg(test)]
mod tests;
