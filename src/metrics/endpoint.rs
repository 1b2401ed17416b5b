//! Turns a request path into a low-cardinality `endpoint` label: the query
//! is dropped and every id (project ids, resource UUIDs) becomes `{id}`, so
//! one series stands for one API operation.

/// `/v2/0123…/backups/5e1c…?limit=10` → `/v2/{id}/backups/{id}`.
pub fn endpoint_label(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .map(|s| if looks_like_id(s) { "{id}" } else { s })
        .collect();
    let label = segments.join("/");
    if label.is_empty() {
        "/".to_string()
    } else {
        label
    }
}

/// A UUID, a long hex string (project ids) or any long token with a digit;
/// API words (`backups`, `detail`, `v3`, `cloudbackups`) are short or digit-free.
fn looks_like_id(segment: &str) -> bool {
    let long = segment.len() >= 16;
    let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
    let id_chars = segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    long && has_digit && id_chars
}

#[cfg(test)]
mod tests {
    use super::endpoint_label;

    #[test]
    fn ids_and_queries_are_folded_away() {
        assert_eq!(
            endpoint_label("/v2/0123456789abcdef0123456789abcdef/backups/detail?limit=10&marker=x"),
            "/v2/{id}/backups/detail"
        );
        assert_eq!(
            endpoint_label(
                "/v3/0123456789abcdef0123456789abcdef/backups/5e1c9a2b-0c3d-4e5f-8a9b-0c1d2e3f4a5b"
            ),
            "/v3/{id}/backups/{id}"
        );
        assert_eq!(endpoint_label("/v3/auth/tokens"), "/v3/auth/tokens");
        assert_eq!(
            endpoint_label("/v2/0123456789abcdef0123456789abcdef/cloudbackups"),
            "/v2/{id}/cloudbackups"
        );
        assert_eq!(endpoint_label(""), "/");
    }
}
