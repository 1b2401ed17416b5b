//! Inventory bodies: Cinder volume and Nova server lists (labels from their
//! metadata), one Nova server, and pages of the EVS/ECS tag filter (labels
//! from their tags).

use serde_json::{Map, Value};

use super::{json, member, page_with, DecodeError, Page};
use crate::api::types::inventory::{label_pairs, labels};
use crate::api::types::{Found, Link};

/// A page of a tag filter (`POST …/resource_instances/action`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaggedPage {
    /// Matches in all, not on this page; `None` when the answer lacks it.
    pub total_count: Option<u64>,
    pub items: Vec<Tagged>,
}

/// One resource of a tag filter page.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    pub found: Found,
    /// The tags as listed, a key given twice included (the published EVS
    /// sample does that), for checking a match before keys collapse.
    pub tags: Vec<(String, String)>,
}

/// A page of `GET /v3/{project}/volumes/detail`: labels from `metadata`.
/// The next page starts after the last volume when the page links one.
pub fn found_volumes(body: &str) -> Result<Page<Found>, DecodeError> {
    page_with(body, "volumes", |v| listed(v, "volumes[]"), after_last)
}

/// A page of `GET /v2.1/{project}/servers/detail`: labels from `metadata`.
pub fn found_servers(body: &str) -> Result<Page<Found>, DecodeError> {
    page_with(body, "servers", |v| listed(v, "servers[]"), after_last)
}

/// `{"server": {…}}` from `GET /v2.1/{project}/servers/{id}`.
pub fn found_server(body: &str) -> Result<Found, DecodeError> {
    listed(member(body, "server")?, "server")
}

/// `{"total_count", "resources": [{"resource_id", "resource_name",
/// "resource_detail", "tags"}]}`. `tags` is a list, or a map in the
/// deprecated EVS API; `resource_detail` is a whole volume for EVS and null
/// for ECS, and gives the status (and the id or name where the resource
/// lacks them).
pub fn tagged(body: &str) -> Result<TaggedPage, DecodeError> {
    let mut v = json(body)?;
    let resources = match v.get_mut("resources").map(Value::take) {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => {
            return Err(DecodeError("answer has no `resources` list".into()))
        }
        Some(_) => return Err(DecodeError("`resources` is not a list".into())),
    };
    let total_count = match v.get("total_count") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            count(n).ok_or_else(|| DecodeError(format!("`total_count` is not a count: {n}")))?,
        ),
    };
    let items = resources
        .into_iter()
        .map(resource)
        .collect::<Result<_, _>>()?;
    Ok(TaggedPage { total_count, items })
}

/// A whole number, sent as a number or (like `limit` and `offset`) a string.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn resource(v: Value) -> Result<Tagged, DecodeError> {
    let Value::Object(mut r) = v else {
        return Err(DecodeError("a `resources[]` item is not an object".into()));
    };
    let detail = match r.remove("resource_detail") {
        Some(Value::Object(d)) => d,
        _ => Map::new(),
    };
    let id = text(r.get("resource_id"))
        .or_else(|| text(detail.get("id")))
        .ok_or_else(|| DecodeError("a `resources[]` item has no `resource_id`".into()))?;
    let tags = label_pairs(r.remove("tags").unwrap_or(Value::Null))
        .map_err(|e| DecodeError(format!("unexpected `tags` of resource `{id}`: {e}")))?;
    let found = Found {
        name: text(r.get("resource_name")).or_else(|| text(detail.get("name"))),
        status: text(detail.get("status")),
        labels: tags.iter().cloned().collect(),
        attached_to: servers_of(detail.get("attachments")),
        id,
    };
    Ok(Tagged { found, tags })
}

/// A volume or server of a Cinder or Nova answer.
fn listed(v: Value, what: &str) -> Result<Found, DecodeError> {
    let Value::Object(mut item) = v else {
        return Err(DecodeError(format!("a `{what}` is not an object")));
    };
    let id = text(item.get("id")).ok_or_else(|| DecodeError(format!("a `{what}` has no `id`")))?;
    let labels = labels(item.remove("metadata").unwrap_or(Value::Null))
        .map_err(|e| DecodeError(format!("unexpected `metadata` of `{id}`: {e}")))?;
    Ok(Found {
        name: text(item.get("name")),
        status: text(item.get("status")),
        labels,
        attached_to: servers_of(item.get("attachments")),
        id,
    })
}

/// The `server_id`s of a volume's `attachments`; anything else is ignored
/// (it only ever adds protection, never removes it).
fn servers_of(attachments: Option<&Value>) -> Vec<String> {
    attachments
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| text(a.get("server_id")))
        .collect()
}

/// A non-empty string field.
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Cinder and Nova link a next page after every full one; it starts after
/// the page's last item (whatever marker the link carries: vendor links
/// point at other paths). Without a link, or on an empty page, the list ends.
fn after_last(links: &[Link], items: &[Found]) -> Option<String> {
    links
        .iter()
        .any(|l| l.rel.as_deref() == Some("next"))
        .then(|| items.last().map(|f| f.id.clone()))
        .flatten()
}

#[cfg(test)]
mod tests;
