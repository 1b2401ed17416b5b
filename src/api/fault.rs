//! Error bodies in every shape the cloud uses:
//! Cinder `{"badRequest": {"code": 400, "message": "…"}}` (code as number or
//! string), Huawei flat `{"error_code": "…", "error_msg": "…"}` and nested
//! `{"error": {"code": "…", "message": "…"}}`.

use serde_json::Value;

/// Code and message extracted from an error body; both optional because
/// gateways also answer with HTML or nothing at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

impl FaultBody {
    /// Extracts code and message from a response body.
    pub fn parse(body: &str) -> Self {
        match serde_json::from_str::<Value>(body) {
            Ok(v) => Self::from_value(&v).unwrap_or_default(),
            Err(_) => Self {
                code: None,
                message: non_json_summary(body),
            },
        }
    }

    /// Looks for the flat pair first, then `code`/`message`, then one level down.
    fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        if obj.contains_key("error_code") || obj.contains_key("error_msg") {
            return Some(Self {
                code: obj.get("error_code").and_then(scalar_text),
                message: obj.get("error_msg").and_then(scalar_text),
            });
        }
        if obj.contains_key("code") || obj.contains_key("message") {
            return Some(Self {
                code: obj.get("code").and_then(scalar_text),
                message: obj.get("message").and_then(scalar_text),
            });
        }
        obj.values().filter(|v| v.is_object()).find_map(|inner| {
            Self::from_value(inner).filter(|f| f.code.is_some() || f.message.is_some())
        })
    }

    /// `code: message`, or whichever part exists.
    pub fn describe(&self) -> Option<String> {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => Some(format!("{c}: {m}")),
            (None, Some(m)) => Some(m.clone()),
            (Some(c), None) => Some(c.clone()),
            (None, None) => None,
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A short, single-line description of a body that is not JSON (an HTML
/// error page from a gateway, say), for the event log.
pub fn non_json_summary(body: &str) -> Option<String> {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return None;
    }
    if let Some(title) = html_title(trimmed) {
        return Some(format!("HTML page: {title}"));
    }
    let one_line: String = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(one_line.chars().take(120).collect())
}

fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = lower[start..].find("</title>")? + start;
    Some(body[start..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_fixtures::api_sample as sample;

    #[test]
    fn cinder_shape_with_string_code() {
        let f = FaultBody::parse(&sample("vbs_error_badRequest_placeholder_otc.json"));
        assert_eq!(f.code.as_deref(), Some("XXXX"));
        assert_eq!(f.message.as_deref(), Some("XXX"));
    }

    #[test]
    fn cinder_shape_with_numeric_code() {
        let f = FaultBody::parse(&sample("vbs_error_itemNotFound_otc.json"));
        assert_eq!(f.code.as_deref(), Some("404"));
        assert!(f.message.unwrap().contains("could not be found"));
    }

    #[test]
    fn huawei_flat_and_nested_shapes() {
        let flat = FaultBody::parse(&sample("huawei_error_flat_sdk.json"));
        assert_eq!(
            flat.describe().as_deref(),
            Some("XXX.0001: Some errors occurred.")
        );
        let nested = FaultBody::parse(&sample("huawei_error_nested_sdk.json"));
        assert_eq!(
            nested.describe().as_deref(),
            Some("XXX.0001: Some errors occurred.")
        );
    }

    #[test]
    fn unrecognised_shape_gives_nothing_rather_than_garbage() {
        let f = FaultBody::parse(&sample("huawei_error_unrecognised_sdk.json"));
        assert_eq!(f, FaultBody::default());
    }

    #[test]
    fn html_pages_are_summarised_by_title() {
        let f = FaultBody::parse(
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        );
        assert_eq!(f.message.as_deref(), Some("HTML page: 502 Bad Gateway"));
        assert_eq!(FaultBody::parse("   ").describe(), None);
    }
}
