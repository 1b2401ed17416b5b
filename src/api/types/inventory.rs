//! What selectors choose from: volumes and servers as list and tag-filter
//! calls show them, with the labels (metadata or tags) a selector matches.

use std::collections::BTreeMap;

use serde_json::Value;

/// A volume or server as a list or filter call shows it: enough to tell
/// whether a selector matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: String,
    /// `None` when the cloud gives none (or an empty one).
    pub name: Option<String>,
    /// The cloud's status word (`available`, `ACTIVE`, …); `None` where the
    /// call does not say (the ECS tag filter).
    pub status: Option<String>,
    /// Cinder or Nova metadata, or EVS/ECS tags, by the call. A tag without
    /// a value has `""`; a key listed twice keeps its last value.
    pub labels: BTreeMap<String, String>,
    /// A volume's servers (`attachments[].server_id`): a server backup
    /// protects its volumes too. Empty for servers.
    pub attached_to: Vec<String>,
}

/// One tag condition: the key, with `None` for any value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TagMatch {
    pub key: String,
    pub value: Option<String>,
}

impl TagMatch {
    /// A condition on `key` having exactly `value`.
    pub fn value(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// A condition on `key` being there, whatever its value.
    pub fn any(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}

/// A label map from what clouds send: a `{"k": "v"}` map (Cinder and Nova
/// metadata, the deprecated EVS tag API) or a `[{"key", "value"}]` list (the
/// EVS and ECS tag APIs); `null` is empty. A null value reads as `""`, a
/// number or boolean as its text; nested values and entries without a
/// string key are left out. `Err` when it is neither map nor list.
pub(crate) fn labels(v: Value) -> Result<BTreeMap<String, String>, String> {
    Ok(label_pairs(v)?.into_iter().collect())
}

/// [`labels`] in the order sent, duplicate keys kept.
pub(crate) fn label_pairs(v: Value) -> Result<Vec<(String, String)>, String> {
    let text = |v: Value| match v {
        Value::String(s) => Some(s),
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    };
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(map) => Ok(map
            .into_iter()
            .filter_map(|(k, v)| Some((k, text(v)?)))
            .collect()),
        Value::Array(items) => Ok(items
            .into_iter()
            .filter_map(|item| {
                let Value::Object(mut entry) = item else {
                    return None;
                };
                let Some(Value::String(key)) = entry.remove("key") else {
                    return None;
                };
                Some((key, text(entry.remove("value").unwrap_or(Value::Null))?))
            })
            .collect()),
        Value::String(_) => Err("expected a map or a list of key/value pairs, not a string".into()),
        Value::Bool(_) | Value::Number(_) => {
            Err("expected a map or a list of key/value pairs, not a scalar".into())
        }
    }
}
