//! What EVS and ECS tags share: the rules a tag must follow (keys up to 36
//! characters, values up to 43, letters, digits, `-` and `_`; at most ten
//! on one resource), the batch `create` / `delete` action on one resource's
//! tags, and the request of the tag filter `…/resource_instances/action`
//! (keys AND, values OR, an empty value list for any value; `limit` and
//! `offset` as strings or integers, since the samples send strings where
//! the tables say Integer). Each service words its refusals its own way,
//! so this module only says why.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Most tags one disk or server may carry.
pub const MAX_TAGS: usize = 10;
/// Most keys in one filter list, and most values per key.
const MAX_FILTER_KEYS: usize = 10;
/// Largest page of a tag filter, and its default.
const MAX_LIMIT: usize = 1000;

/// Why a tag request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagError {
    /// The request is malformed: no or an unknown `action`, a filter
    /// without `tags` where they are mandatory, a bad `limit`.
    BadRequest(String),
    /// A key or value breaks the tag rules (EVS.1062).
    InvalidTag(String),
    /// The resource would carry more than [`MAX_TAGS`] (EVS.1061).
    TooMany,
}

fn allowed(s: &str, max: usize) -> bool {
    s.chars().count() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && allowed(key, 36)
}

fn valid_value(value: &str) -> bool {
    allowed(value, 43)
}

/// `[{"key": …, "value": …}]`, by key: how both services show tags.
pub fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    tags.iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

/// Applies `{"action": "create", "tags": [{key, value}]}` (existing keys
/// overwritten) or `{"action": "delete", "tags": [{key, value?}]}` (a
/// given value must match; an absent key is no error, so both are
/// idempotent). Nothing changes when it is refused.
fn apply_action(tags: &mut BTreeMap<String, String>, body: &Value) -> Result<(), TagError> {
    let list = body
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| TagError::BadRequest("tags is missing or not a list".into()))?;
    let mut changed = tags.clone();
    for tag in list {
        let key = tag
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| valid_key(k))
            .ok_or_else(|| TagError::InvalidTag(format!("invalid tag key in {tag}")))?;
        let value = match tag.get("value") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .filter(|v| valid_value(v))
                    .ok_or_else(|| TagError::InvalidTag(format!("invalid tag value in {tag}")))?,
            ),
        };
        match (body.get("action").and_then(Value::as_str), value) {
            (Some("create"), Some(value)) => {
                changed.insert(key.to_string(), value.to_string());
            }
            (Some("create"), None) => {
                return Err(TagError::InvalidTag(format!("tag {key} has no value")))
            }
            (Some("delete"), want) => {
                if want.is_none_or(|w| changed.get(key).is_some_and(|has| has == w)) {
                    changed.remove(key);
                }
            }
            _ => {
                return Err(TagError::BadRequest(
                    "action must be create or delete".into(),
                ))
            }
        }
    }
    if changed.len() > MAX_TAGS {
        return Err(TagError::TooMany);
    }
    *tags = changed;
    Ok(())
}

/// The answer to a batch tag action on one resource: 204 once applied,
/// the service's refusal, or its 404 when `tags` is `None` (no such
/// resource).
pub fn action_response(
    tags: Option<&mut BTreeMap<String, String>>,
    body: Option<Json<Value>>,
    refused: fn(TagError) -> Response,
    unknown: impl FnOnce() -> Response,
) -> Response {
    let Some(tags) = tags else {
        return unknown();
    };
    let body = body.map_or(Value::Null, |Json(b)| b);
    match apply_action(tags, &body) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

/// `filter` (one page of matches) or `count` (only how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Filter,
    Count,
}

/// A checked request of `…/resource_instances/action`.
#[derive(Debug, Clone)]
pub struct TagFilter {
    pub action: Action,
    /// (key, values): every key must be present, with one of its values
    /// (any value when the list is empty).
    tags: Vec<(String, Vec<String>)>,
    /// Resources carrying any of these (same form) are left out.
    not_tags: Vec<(String, Vec<String>)>,
    /// `matches` `resource_name`: a substring of the name.
    name: Option<String>,
    /// `matches` `service_type` (EVS only), compared without case.
    service_type: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// `limit` or `offset`, a number or a string of digits.
fn count_field(body: &Value, key: &str) -> Result<Option<usize>, TagError> {
    let bad = || TagError::BadRequest(format!("{key} must be a non-negative integer"));
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A list of `{"key": …, "values": […]}`.
fn tag_objects(list: &Value, field: &str) -> Result<Vec<(String, Vec<String>)>, TagError> {
    let bad = |why: &str| TagError::BadRequest(format!("{field}: {why}"));
    let items = list.as_array().ok_or_else(|| bad("not a list"))?;
    if items.len() > MAX_FILTER_KEYS {
        return Err(bad("more than 10 keys"));
    }
    items
        .iter()
        .map(|t| {
            let key = t
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a tag without a key"))?;
            let values = match t.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(vs)) if vs.len() <= MAX_FILTER_KEYS => vs
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("values must be strings"))?,
                Some(_) => return Err(bad("values must be a list of at most 10 strings")),
            };
            Ok((key.to_string(), values))
        })
        .collect()
}

fn carries(tags: &BTreeMap<String, String>, key: &str, values: &[String]) -> bool {
    tags.get(key)
        .is_some_and(|has| values.is_empty() || values.iter().any(|v| v == has))
}

impl TagFilter {
    /// Reads and checks a request body. `tags_required`: a `filter`
    /// without `tags` is refused (EVS). `not_tags`: whether the service
    /// takes them (ECS; EVS has none on OTC, and ignores the field).
    /// A body can only hold one `tags` list: when a request repeats the
    /// key, the JSON parser keeps the last, which is what the cloud uses.
    pub fn parse(
        body: Option<Json<Value>>,
        tags_required: bool,
        not_tags: bool,
    ) -> Result<Self, TagError> {
        let body = &body.map_or(Value::Null, |Json(b)| b);
        let action = match body.get("action").and_then(Value::as_str) {
            Some("filter") => Action::Filter,
            Some("count") => Action::Count,
            _ => {
                return Err(TagError::BadRequest(
                    "action must be filter or count".into(),
                ))
            }
        };
        let tags = match body.get("tags") {
            None | Some(Value::Null) if tags_required && action == Action::Filter => {
                return Err(TagError::BadRequest("tags is mandatory".into()))
            }
            None | Some(Value::Null) => Vec::new(),
            Some(list) => tag_objects(list, "tags")?,
        };
        let not_tags = match body.get("not_tags") {
            Some(list) if not_tags && !list.is_null() => tag_objects(list, "not_tags")?,
            _ => Vec::new(),
        };
        let mut name = None;
        let mut service_type = None;
        for m in body
            .get("matches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let value = m.get("value").and_then(Value::as_str).map(str::to_string);
            match m.get("key").and_then(Value::as_str) {
                Some("resource_name") => name = value,
                Some("service_type") => service_type = value,
                _ => return Err(TagError::BadRequest(format!("unknown match {m}"))),
            }
        }
        let limit = count_field(body, "limit")?.unwrap_or(MAX_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(TagError::BadRequest("limit must be 1 to 1000".into()));
        }
        Ok(Self {
            action,
            tags,
            not_tags,
            name,
            service_type,
            limit,
            offset: count_field(body, "offset")?.unwrap_or(0),
        })
    }

    /// Whether a resource of this service, name and tags is selected.
    pub fn selects(&self, service: &str, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.tags.iter().all(|(k, vs)| carries(tags, k, vs))
            && !self.not_tags.iter().any(|(k, vs)| carries(tags, k, vs))
            && self.name.as_deref().is_none_or(|n| name.contains(n))
            && self
                .service_type
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(service))
    }

    /// The answer for `matched` (already in a stable order): the total
    /// and, for `filter`, the page from `offset`, each shown by `show`.
    pub fn answer<T>(&self, matched: Vec<T>, show: impl Fn(T) -> Value) -> Value {
        let total = matched.len();
        match self.action {
            Action::Count => json!({ "total_count": total }),
            Action::Filter => {
                let resources: Vec<Value> = matched
                    .into_iter()
                    .skip(self.offset)
                    .take(self.limit)
                    .map(show)
                    .collect();
                json!({ "total_count": total, "resources": resources })
            }
        }
    }
}
