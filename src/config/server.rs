//! Checks for `kind: server` (CSBS) policies: their `servers` list, the
//! provider id, the fields that only apply to volume policies, and the
//! `server_backup` endpoint of the cloud they use.

use std::collections::BTreeMap;

use super::model::{Cloud, PolicyKind, DEFAULT_CSBS_PROVIDER};
use super::path::FieldPath;
use super::raw::RawPolicy;
use super::report::Report;
use super::validate::{id_list, IdList};

/// A server (or provider) id: a hyphenated UUID, returned in lower case.
fn uuid(text: &str, what: &str, example: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    match uuid::Uuid::try_parse(&lower) {
        Ok(id) if id.hyphenated().to_string() == lower => Ok(lower),
        _ => Err(format!(
            "\"{text}\" is not a {what} (expected a UUID such as {example})"
        )),
    }
}

/// `servers`: required for kind `server`, non-empty, each a UUID, none twice.
pub(super) fn servers(
    raw: Option<&[String]>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    id_list(
        raw,
        path,
        IdList {
            field: "servers",
            noun: "server",
            missing: "missing required field `servers` (a list of server IDs) for kind server",
            check: |text| uuid(text, "server ID", "f8ddc472-cf00-4384-851e-5f2a68c33762"),
        },
        report,
    )
}

/// `provider_id`, or the one CSBS provider.
pub(super) fn provider_id(
    raw: Option<&str>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<String> {
    match raw {
        None => Some(DEFAULT_CSBS_PROVIDER.to_string()),
        Some(text) => uuid(text, "CSBS provider ID", DEFAULT_CSBS_PROVIDER)
            .map_err(|message| report.value(&path.key("provider_id"), message))
            .ok(),
    }
}

/// Reports fields given for the wrong kind of policy.
pub(super) fn inapplicable(
    raw: &RawPolicy,
    kind: Option<PolicyKind>,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    let Some(kind) = kind else { return };
    if kind == PolicyKind::Server {
        let volume_only: [(&str, bool, &str); 5] = [
            (
                "volumes",
                raw.volumes.is_some(),
                "a server policy backs up whole servers; list them under `servers`",
            ),
            (
                "force",
                raw.force.is_some(),
                "CSBS backs up running servers without it",
            ),
            (
                "keep_snapshot",
                raw.keep_snapshot.is_some(),
                "a server backup makes no snapshot the agent could keep",
            ),
            (
                "full_backup_every",
                raw.full_backup_every.is_some(),
                "CSBS decides by itself between full and incremental",
            ),
            (
                "share_to",
                raw.share_to.is_some(),
                "server backups cannot be shared",
            ),
        ];
        for (field, given, why) in volume_only {
            if given {
                report.key(
                    &path.key(field),
                    format!("`{field}` does not apply to kind server: {why}"),
                );
            }
        }
    } else {
        for (field, given) in [
            ("servers", raw.servers.is_some()),
            ("provider_id", raw.provider_id.is_some()),
        ] {
            if given {
                report.key(
                    &path.key(field),
                    format!(
                        "`{field}` applies to kind server only (this policy is kind {}; it lists `volumes`)",
                        kind.as_str()
                    ),
                );
            }
        }
    }
}

/// Every server policy's cloud must have an `endpoints.server_backup`,
/// unless its auth yields a service catalog to find CSBS in.
pub(super) fn check_endpoints(
    policies: &[Option<RawPolicy>],
    clouds: &BTreeMap<String, Cloud>,
    report: &mut Report<'_>,
) {
    let policies_path = FieldPath::root().key("policies");
    for (i, raw) in policies.iter().enumerate() {
        let Some(raw) = raw else { continue };
        if raw.kind.as_deref() != Some("server") {
            continue;
        }
        let Some(cloud) = raw.cloud.as_deref().and_then(|c| clouds.get(c)) else {
            continue;
        };
        if cloud.endpoints.server_backup.is_none() && !cloud.auth.has_catalog() {
            report.value(
                &policies_path.index(i).key("cloud"),
                format!(
                    "cloud \"{}\" has no `endpoints.server_backup` (the CSBS base URL, such as https://csbs.eu-de.example.com), which kind server needs; only password auth, or token auth with auth_url, can find it in the Keystone service catalog",
                    cloud.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{parse, PolicyKind, ServerWork, Work, DEFAULT_CSBS_PROVIDER};

    const SERVER_POLICY: &str = r#"
clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints:
      volume: https://evs.eu-de.example.com
      backup: https://vbs.eu-de.example.com
      server_backup: https://csbs.eu-de.example.com
    auth: { type: token, token_env: VBS_TOKEN }
policies:
  - name: web
    kind: server
    cloud: prod
    schedule: "0 0 2 * * *"
    servers: [F8DDC472-CF00-4384-851E-5F2A68C33762, 9506416d-db6c-406e-8bca-c0f43793d914]
    retention: { keep_daily: 7 }
"#;

    #[test]
    fn a_server_policy_targets_its_servers_with_the_default_provider() {
        let config = parse(SERVER_POLICY, Path::new("/etc/vbs-agent/policy.yaml")).unwrap();
        let p = config.policy("web").unwrap();
        assert_eq!(p.kind(), PolicyKind::Server);
        assert_eq!(
            p.work,
            Work::Server(ServerWork {
                servers: vec![
                    "f8ddc472-cf00-4384-851e-5f2a68c33762".into(),
                    "9506416d-db6c-406e-8bca-c0f43793d914".into()
                ],
                provider_id: DEFAULT_CSBS_PROVIDER.into(),
            })
        );
        assert_eq!(p.retention.map(|r| r.keep_daily), Some(7));
        let endpoint = config.clouds["prod"].endpoints.server_backup.as_ref();
        assert_eq!(
            endpoint.map(|u| u.as_str()),
            Some("https://csbs.eu-de.example.com/")
        );
    }

    #[test]
    fn a_bad_server_backup_endpoint_is_named() {
        let text = SERVER_POLICY.replace(
            "https://csbs.eu-de.example.com",
            "https://csbs.eu-de.example.com/v1/0123456789abcdef0123456789abcdef",
        );
        let errors = parse(&text, Path::new("p.yaml")).unwrap_err().to_string();
        assert!(
            errors.contains("clouds.prod.endpoints.server_backup"),
            "{errors}"
        );
    }
}
