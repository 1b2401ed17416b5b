//! The Keystone service catalog of a token answer: which base URL serves
//! each service, chosen by service type, region and interface, with the
//! version and project segments that catalogs append stripped off (the
//! client adds its own `/v2/{project_id}`).

use serde_json::Value;

/// Catalog types of the block-storage (EVS/Cinder) service, most preferred first.
pub const VOLUME_TYPES: &[&str] = &["volumev3", "block-storage", "volumev2", "volume"];
/// Catalog types of the backup (VBS) service: its own type, else the
/// block-storage service (Cinder serves backups itself).
pub const BACKUP_TYPES: &[&str] = &["vbs", "volumev3", "block-storage", "volumev2", "volume"];
/// Catalog types of the server backup (CSBS) service.
pub const SERVER_BACKUP_TYPES: &[&str] = &["csbs", "data-protect"];
/// Catalog types of the backup service that succeeds VBS and CSBS (CBR).
pub const CBR_TYPES: &[&str] = &["cbr"];
/// Catalog types of the compute service: Nova's own, else OTC's ECS.
pub const COMPUTE_TYPES: &[&str] = &["compute", "ecs"];

/// One endpoint of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    service_type: String,
    interface: String,
    region: Option<String>,
    url: String,
}

/// The endpoints of a token's catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// The catalog of a Keystone v3 token answer (`token.catalog`); empty
    /// when there is none. Endpoints without a URL are skipped.
    pub fn from_token_body(body: &Value) -> Self {
        Self::from_services(body.pointer("/token/catalog"))
    }

    /// The catalog of a `GET /v3/auth/catalog` answer (`catalog`).
    pub fn from_catalog_body(body: &Value) -> Self {
        Self::from_services(body.get("catalog"))
    }

    fn from_services(services: Option<&Value>) -> Self {
        let mut entries = Vec::new();
        let services = services
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for service in services {
            let Some(service_type) = service.get("type").and_then(Value::as_str) else {
                continue;
            };
            let endpoints = service
                .get("endpoints")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for ep in endpoints {
                let text = |k: &str| ep.get(k).and_then(Value::as_str).map(str::to_string);
                let Some(url) = text("url") else { continue };
                entries.push(Entry {
                    service_type: service_type.to_string(),
                    interface: text("interface").unwrap_or_else(|| "public".into()),
                    region: text("region_id").or_else(|| text("region")),
                    url,
                });
            }
        }
        Self { entries }
    }

    /// Whether the catalog lists a service of type `service_type`.
    pub fn offers(&self, service_type: &str) -> bool {
        self.entries.iter().any(|e| e.service_type == service_type)
    }

    /// The base URL of the first of `types` that has an endpoint on
    /// `interface` in `region` (any region when `None`).
    pub fn base_url(
        &self,
        types: &[&str],
        region: Option<&str>,
        interface: &str,
        project_id: &str,
    ) -> Option<String> {
        types.iter().find_map(|t| {
            self.entries
                .iter()
                .find(|e| {
                    e.service_type == *t
                        && e.interface == interface
                        && region.is_none_or(|r| e.region.as_deref() == Some(r))
                })
                .map(|e| strip_suffixes(&e.url, project_id))
        })
    }
}

/// `https://evs.example.com/v2/{project}` → `https://evs.example.com`;
/// a path prefix before the version (`http://host/volume/v3/…`) is kept.
pub fn strip_suffixes(url: &str, project_id: &str) -> String {
    let (head, path) = match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url.split_at(i + 3 + j),
            None => (url, ""),
        },
        None => (url, ""),
    };
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    while let Some(last) = segments.last() {
        let placeholder = last.starts_with("$(") || last.starts_with("%(");
        if last.eq_ignore_ascii_case(project_id) || is_version(last) || placeholder {
            segments.pop();
        } else {
            break;
        }
    }
    let mut base = head.trim_end_matches('/').to_string();
    for s in segments {
        base.push('/');
        base.push_str(s);
    }
    base
}

/// `v2`, `v3`, `v2.1`, `v1.0`.
fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const P: &str = "a99e9b4e620e4db09a2dfb6e42a01e66";

    fn sample() -> Value {
        let body = crate::test_fixtures::api_sample("keystone_token_response_project_scope.json");
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn published_sample_has_compute_and_identity_but_no_volume_service() {
        let catalog = Catalog::from_token_body(&sample());
        assert_eq!(
            catalog.base_url(&["compute"], Some("RegionOne"), "public", P),
            Some("http://127.0.0.1:8774".into())
        );
        assert_eq!(
            catalog.base_url(&["identity"], None, "admin", P),
            Some("http://127.0.0.1:35357".into())
        );
        assert_eq!(catalog.base_url(VOLUME_TYPES, None, "public", P), None);
        assert_eq!(
            catalog.base_url(&["compute"], Some("eu-de"), "public", P),
            None
        );
    }

    #[test]
    fn picks_by_type_preference_region_and_interface() {
        let ep = |iface: &str, region: &str, url: &str| json!({"interface": iface, "region": region, "region_id": region, "url": url});
        let body = json!({"token": {"catalog": [
            {"type": "volumev2", "endpoints": [ep("public", "eu-de", "https://evs.eu-de.example.com/v2/$(tenant_id)s")]},
            {"type": "volumev3", "endpoints": [
                ep("public", "eu-nl", "https://evs.eu-nl.example.com/v3/0123"),
                ep("internal", "eu-de", "https://evs.internal.example.com/volume/v3/0123"),
                ep("public", "eu-de", "https://evs.eu-de.example.com/v3/0123/")]},
            {"type": "vbs", "endpoints": [ep("public", "eu-de", "https://vbs.eu-de.example.com/v2/0123")]},
            {"type": "csbs", "endpoints": [ep("public", "eu-de", "https://csbs.eu-de.example.com/v1/0123")]},
            {"type": "ecs", "endpoints": [ep("public", "eu-de", "https://ecs.eu-de.example.com/v1/0123")]},
            {"type": "compute", "endpoints": [ep("public", "eu-nl", "https://nova.eu-nl.example.com/v2.1/0123")]},
        ]}});
        let c = Catalog::from_token_body(&body);
        let get = |types, region, iface| c.base_url(types, region, iface, "0123");
        assert_eq!(
            get(VOLUME_TYPES, Some("eu-de"), "public").as_deref(),
            Some("https://evs.eu-de.example.com")
        );
        assert_eq!(
            get(VOLUME_TYPES, Some("eu-de"), "internal").as_deref(),
            Some("https://evs.internal.example.com/volume")
        );
        assert_eq!(
            get(BACKUP_TYPES, Some("eu-de"), "public").as_deref(),
            Some("https://vbs.eu-de.example.com")
        );
        // Without vbs, backups go to the volume service.
        assert_eq!(
            get(BACKUP_TYPES, Some("eu-nl"), "public").as_deref(),
            Some("https://evs.eu-nl.example.com")
        );
        assert_eq!(
            get(SERVER_BACKUP_TYPES, Some("eu-de"), "public").as_deref(),
            Some("https://csbs.eu-de.example.com")
        );
        assert_eq!(get(SERVER_BACKUP_TYPES, Some("eu-nl"), "public"), None);
        // Nova's `compute` wins; where it is missing, OTC's `ecs`.
        assert_eq!(
            get(COMPUTE_TYPES, Some("eu-nl"), "public").as_deref(),
            Some("https://nova.eu-nl.example.com")
        );
        assert_eq!(
            get(COMPUTE_TYPES, Some("eu-de"), "public").as_deref(),
            Some("https://ecs.eu-de.example.com")
        );
        assert_eq!(Catalog::from_token_body(&json!({})), Catalog::default());
        let listed = json!({"catalog": body["token"]["catalog"].clone()});
        assert_eq!(Catalog::from_catalog_body(&listed), c);
    }

    #[test]
    fn suffixes_are_stripped() {
        assert_eq!(
            strip_suffixes("http://127.0.0.1:8776/v3/ABC", "abc"),
            "http://127.0.0.1:8776"
        );
        assert_eq!(strip_suffixes("https://h/v2.1/", "x"), "https://h");
        assert_eq!(strip_suffixes("https://h", "x"), "https://h");
        assert_eq!(
            strip_suffixes("https://h/api/v1/%(project_id)s", "x"),
            "https://h/api"
        );
        assert_eq!(strip_suffixes("https://h/vbs", "x"), "https://h/vbs");
    }
}
