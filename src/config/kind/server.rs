//! Kind `server`: a CSBS backup of each whole server. Its `servers` list
//! and provider id, the fields of the volume kinds it refuses, and the
//! `server_backup` endpoint of the cloud it uses.

use std::collections::BTreeMap;

use super::{refuse_given, IdList, Rules, Targets};
use crate::config::model::{Cloud, PolicyKind, ServerWork, Work, DEFAULT_CSBS_PROVIDER};
use crate::config::path::FieldPath;
use crate::config::raw::RawPolicy;
use crate::config::report::Report;

/// Servers as targets; the fields of the volume kinds refused.
pub(super) const RULES: Rules = Rules {
    targets: &SERVERS,
    refuse,
    work,
};

/// `servers`: required for kind `server`, non-empty, each a UUID, none twice.
const SERVERS: IdList = IdList {
    field: "servers",
    noun: "server",
    missing: "missing required field `servers` (a list of server IDs) or `select` (servers by their tags) for kind server",
    check: |text| uuid(text, "server ID", "f8ddc472-cf00-4384-851e-5f2a68c33762"),
    raw: |raw| raw.servers.as_deref(),
};

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

/// The servers and the CSBS provider protecting them.
fn work(raw: &RawPolicy, ids: Targets, path: &FieldPath, report: &mut Report<'_>) -> Option<Work> {
    let provider_id = provider_id(raw.provider_id.as_deref(), path, report);
    Some(Work::Server(ServerWork {
        servers: ids?,
        provider_id: provider_id?,
        vault: super::backup::vault(raw.vault.as_deref(), path, report)?,
        add_to_vault: raw.add_to_vault.unwrap_or(false),
    }))
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

/// The fields of the volume kinds, and why a server policy has none of them.
const VOLUME_ONLY: [(&str, &str); 6] = [
    (
        "volumes",
        "a server policy backs up whole servers; list them under `servers`",
    ),
    ("force", "CSBS backs up running servers without it"),
    (
        "keep_snapshot",
        "a server backup makes no snapshot the agent could keep",
    ),
    (
        "full_backup_every",
        "CSBS decides by itself between full and incremental",
    ),
    ("share_to", "server backups cannot be shared"),
    (
        "drill",
        "restore drills restore volume backups; a server backup's volumes are restored with the server",
    ),
];

/// Refuses what only the volume kinds have.
fn refuse(raw: &RawPolicy, path: &FieldPath, report: &mut Report<'_>) {
    for (field, why) in VOLUME_ONLY {
        refuse_given(
            raw,
            &[field],
            |field| format!("`{field}` does not apply to kind server: {why}"),
            path,
            report,
        );
    }
}

/// Refuses `servers` and `provider_id` on a policy of another `kind`.
pub(super) fn refuse_on(
    kind: PolicyKind,
    raw: &RawPolicy,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    refuse_given(
        raw,
        &["servers", "provider_id"],
        |field| {
            format!(
                "`{field}` applies to kind server only (this policy is kind {kind}; it lists `volumes`)"
            )
        },
        path,
        report,
    );
}

/// Every server policy's cloud must have an `endpoints.server_backup`,
/// unless its auth yields a service catalog to find CSBS in.
pub(in crate::config) fn check_endpoints(
    policies: &[Option<RawPolicy>],
    clouds: &BTreeMap<String, Cloud>,
    report: &mut Report<'_>,
) {
    for (path, _, kind, cloud) in super::on_clouds(policies, clouds) {
        if kind != Some(PolicyKind::Server) {
            continue;
        }
        let on_cbr = cloud.backup_service == crate::config::BackupService::Cbr;
        if !on_cbr && cloud.endpoints.server_backup.is_none() && !cloud.auth.has_catalog() {
            report.value(
                &path.key("cloud"),
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

    use crate::config::load::tests::token_cloud;
    use crate::config::{parse, PolicyKind, ServerWork, Work, DEFAULT_CSBS_PROVIDER};

    /// A server policy on a cloud with a CSBS endpoint.
    fn server_policy() -> String {
        let cloud = token_cloud().replace(
            "      backup: https://vbs.eu-de.example.com\n",
            "      backup: https://vbs.eu-de.example.com\n      \
             server_backup: https://csbs.eu-de.example.com\n",
        );
        format!(
            "{cloud}  - name: web\n    kind: server\n    cloud: prod\n    \
             schedule: \"0 0 2 * * *\"\n    servers: [F8DDC472-CF00-4384-851E-5F2A68C33762, \
             9506416d-db6c-406e-8bca-c0f43793d914]\n    retention: {{ keep_daily: 7 }}\n"
        )
    }

    #[test]
    fn a_server_policy_targets_its_servers_with_the_default_provider() {
        let config = parse(&server_policy(), Path::new("/etc/vbs-agent/policy.yaml")).unwrap();
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
                vault: None,
                add_to_vault: false,
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
        let text = server_policy().replace(
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
