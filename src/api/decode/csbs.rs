//! CSBS bodies: the protect answer, checkpoint item pages and one item.

use serde_json::Value;

use super::{member, page, typed, DecodeError, Page};
use crate::api::types::{Checkpoint, CheckpointItem};

/// `{"checkpoint": {…}}` from the protect call.
pub fn checkpoint(body: &str) -> Result<Checkpoint, DecodeError> {
    typed(member(body, "checkpoint")?, "checkpoint")
}

fn item(v: Value, what: &str) -> Result<CheckpointItem, DecodeError> {
    CheckpointItem::from_value(v).map_err(|e| DecodeError(format!("unexpected `{what}`: {e}")))
}

/// `{"checkpoint_item": {…}}` from the get call.
pub fn checkpoint_item(body: &str) -> Result<CheckpointItem, DecodeError> {
    item(member(body, "checkpoint_item")?, "checkpoint_item")
}

/// A page of `{"checkpoint_items": […], "checkpoint_items_links": […]}`
/// (the links are not documented; SDKs read them when present).
pub fn checkpoint_items(body: &str) -> Result<Page<CheckpointItem>, DecodeError> {
    page(body, "checkpoint_items", |v| item(v, "checkpoint_items[]"))
}
