//! One entry under `clouds`: its project, endpoints, rate limit and catalog
//! settings, written inline or named from clouds.yaml or the environment.

use std::path::Path;

use super::auth::auth;
use super::checks::{self, UrlRole};
use super::model::{
    ApiVersion, AuthConfig, BackupService, Cloud, CloudOrigin, Domain, Endpoints, Project,
    RestoreApi, SelectBy,
};
use super::path::FieldPath;
use super::raw::RawCloud;
use super::report::Report;
use super::source::{self, Env, ProcessEnv, Sourced};
use super::validate::{ok_or_report, required, resolve};

/// The cloud `name`, checked; `None` when anything in it was reported.
pub(super) fn cloud(
    name: &str,
    raw: &RawCloud,
    path: &FieldPath,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<Cloud> {
    let allow_http = raw.allow_http.unwrap_or(false);
    // `Some(None)`: written inline; `None`: the named source failed (reported).
    let sourced = sourced(raw, path, report);
    let source_field = if raw.clouds_yaml.is_some() {
        "clouds_yaml"
    } else {
        "from_env"
    };
    let auth = match (&raw.auth, &sourced) {
        (Some(_), Some(Some(s))) => {
            report.key(
                &path.key("auth"),
                format!(
                    "the credentials come from {} (`{source_field}`); remove `auth` here, or remove `{source_field}`",
                    s.origin.as_ref().map_or_else(String::new, ToString::to_string)
                ),
            );
            None
        }
        (None, Some(Some(s))) => ok_or_report(s.auth(allow_http), &path.key(source_field), report),
        (_, None) => None,
        (None, Some(None)) => {
            report.missing(
                path,
                "auth",
                "missing required field `auth` (type password, token or aksk; or name the cloud \
                 with `clouds_yaml` or `from_env: true`)",
            );
            None
        }
        (Some(raw_auth), Some(None)) => {
            auth(raw_auth, &path.key("auth"), allow_http, base_dir, report)
        }
    };
    let project = project(raw, &sourced, auth.as_ref(), path, source_field, report);
    let project_id = project.as_ref().and_then(|p| p.id());
    let discoverable = auth.as_ref().is_some_and(AuthConfig::has_catalog);

    let endpoints = match &raw.endpoints {
        None if discoverable => Some(Endpoints {
            volume: None,
            backup: None,
            server_backup: None,
            cbr: None,
            compute: None,
        }),
        None => {
            // A password block with other mistakes, or a source that failed,
            // is reported on its own.
            let password_declared = raw.auth.as_ref().is_some_and(|a| {
                a.kind.as_deref() == Some("password")
                    || (a.kind.as_deref() == Some("token") && a.auth_url.is_some())
            });
            let source_failed = match &sourced {
                None => true,
                Some(Some(_)) => auth.is_none(),
                Some(None) => false,
            };
            if !password_declared && !source_failed {
                report.missing(
                    path,
                    "endpoints",
                    "missing required field `endpoints` (with `volume` and `backup` base URLs; \
                     only password auth, or token auth with auth_url, can find them in the \
                     Keystone service catalog)",
                );
            }
            None
        }
        Some(raw_endpoints) => {
            let ep_path = path.key("endpoints");
            let role = UrlRole::Endpoint { project_id };
            let mut url = |value: &Option<String>, field: &str| -> Option<Option<url::Url>> {
                if value.is_none() && discoverable {
                    return Some(None);
                }
                let text = required(
                    value,
                    &ep_path,
                    field,
                    "a base URL such as https://evs.eu-de.example.com; only password auth, or \
                     token auth with auth_url, can find it in the Keystone service catalog",
                    report,
                )?;
                ok_or_report(
                    checks::url(text, role, allow_http),
                    &ep_path.key(field),
                    report,
                )
                .map(Some)
            };
            let volume = url(&raw_endpoints.volume, "volume");
            let backup = url(&raw_endpoints.backup, "backup");
            let mut optional = |value: &Option<String>, field: &str| match value {
                None => Some(None),
                given => url(given, field),
            };
            let server_backup = optional(&raw_endpoints.server_backup, "server_backup");
            let cbr = optional(&raw_endpoints.cbr, "cbr");
            let compute = optional(&raw_endpoints.compute, "compute");
            // Not `?`: that would end the cloud here and hide its later errors.
            match (volume, backup, server_backup, cbr, compute) {
                (Some(volume), Some(backup), Some(server_backup), Some(cbr), Some(compute)) => {
                    Some(Endpoints {
                        volume,
                        backup,
                        server_backup,
                        cbr,
                        compute,
                    })
                }
                _ => None,
            }
        }
    };

    let snapshot_api = match raw.snapshot_api.as_deref() {
        None | Some("v2") => Some(ApiVersion::V2),
        Some("v3") => Some(ApiVersion::V3),
        Some(other) => {
            report.value(
                &path.key("snapshot_api"),
                format!("unknown snapshot_api \"{other}\" (supported: v2, v3; the vendor recommends v2)"),
            );
            None
        }
    };

    let restore_api = match raw.restore_api.as_deref() {
        None | Some("cinder") => Some(RestoreApi::Cinder),
        Some("vendor") => Some(RestoreApi::Vendor),
        Some(other) => {
            report.value(
                &path.key("restore_api"),
                format!("unknown restore_api \"{other}\" (supported: cinder, vendor)"),
            );
            None
        }
    };

    let select_by = match raw.select_by.as_deref() {
        None | Some("metadata") => Some(SelectBy::Metadata),
        Some("tags") => Some(SelectBy::Tags),
        Some(other) => {
            report.value(
                &path.key("select_by"),
                format!(
                    "unknown select_by \"{other}\" (supported: metadata, the Cinder volume \
                     metadata; tags, the EVS tags of OTC and Huawei Cloud)"
                ),
            );
            None
        }
    };

    let backup_service = match raw.backup_service.as_deref() {
        None | Some("vbs") => Some(BackupService::Vbs),
        Some("cbr") => Some(BackupService::Cbr),
        Some("auto") => Some(BackupService::Auto),
        Some(other) => {
            report.value(
                &path.key("backup_service"),
                format!(
                    "unknown backup_service \"{other}\" (supported: vbs, the default; cbr, for \
                     projects created since July 2025; auto, cbr when the service catalog \
                     lists cbr but not vbs)"
                ),
            );
            None
        }
    };

    let rate_limit = match raw.rate_limit.as_deref() {
        None => Some(None),
        Some(r) => ok_or_report(checks::rate_limit(r), &path.key("rate_limit"), report).map(Some),
    };

    let from_source = sourced.as_ref().and_then(Option::as_ref);
    let region = raw
        .region
        .clone()
        .or_else(|| from_source.and_then(|s| s.region.clone()));
    if region.as_deref() == Some("") {
        report.value(
            &path.key("region"),
            "region is empty; give a region name such as eu-de, or leave it out",
        );
    }
    let interface = match (
        &raw.interface,
        from_source.and_then(|s| s.interface.as_deref()),
    ) {
        (Some(i), _) => ok_or_report(checks::interface(i), &path.key("interface"), report),
        (None, Some(i)) => ok_or_report(checks::interface(i), &path.key(source_field), report),
        (None, None) => Some("public".to_string()),
    };
    let cacert = match raw.cacert.as_deref() {
        Some("") => {
            report.value(
                &path.key("cacert"),
                "cacert is empty; give the path of a PEM file of CA certificates",
            );
            None
        }
        Some(c) => Some(Some(resolve(base_dir, c))),
        None => Some(from_source.and_then(|s| s.cacert.clone())),
    };

    Some(Cloud {
        name: name.to_string(),
        project: project?,
        endpoints: endpoints?,
        snapshot_api: snapshot_api?,
        restore_api: restore_api?,
        select_by: select_by?,
        backup_service: backup_service?,
        auth: auth?,
        rate_limit: rate_limit?,
        origin: from_source
            .and_then(|s| s.origin.clone())
            .unwrap_or(CloudOrigin::Inline),
        region: region.filter(|r| !r.is_empty()),
        interface: interface?,
        cacert: cacert?,
    })
}

/// The cloud's project: `project_id` or `project_name` (with
/// `project_domain`) here, else from the clouds.yaml entry or environment.
/// An ID given here wins over a name; a name needs password auth.
fn project(
    raw: &RawCloud,
    sourced: &Option<Option<Sourced>>,
    auth: Option<&AuthConfig>,
    path: &FieldPath,
    source_field: &str,
    report: &mut Report<'_>,
) -> Option<Project> {
    if let Some(id) = raw.project_id.as_deref() {
        let id = checks::project_id(id)
            .map_err(|e| format!("{e}; a project given by name goes in project_name"));
        return ok_or_report(id, &path.key("project_id"), report).map(Project::Id);
    }
    if let Some(name) = raw.project_name.as_deref() {
        if name.is_empty() {
            report.value(
                &path.key("project_name"),
                "project_name is empty; give the project's name, such as eu-de",
            );
            return None;
        }
        let domain = raw.project_domain.clone().map(Domain::Name);
        // Without usable credentials the auth error says what to fix.
        return ok_or_report(
            source::by_name(name, domain, auth?)
                .map_err(|e| format!("{e}: give the ID as project_id")),
            &path.key("project_name"),
            report,
        );
    }
    match sourced {
        Some(Some(s)) => ok_or_report(s.project(auth), &path.key(source_field), report).flatten(),
        Some(None) => {
            report.missing(
                path,
                "project_id",
                "missing required field `project_id` (32 hex digits; or `project_name`)",
            );
            None
        }
        None => None,
    }
}

/// The clouds.yaml entry or environment this cloud is named from:
/// `Some(None)` when it is written inline, `None` when the source is
/// unusable (reported).
fn sourced(raw: &RawCloud, path: &FieldPath, report: &mut Report<'_>) -> Option<Option<Sourced>> {
    let from_env = raw.from_env.unwrap_or(false);
    match raw.clouds_yaml.as_deref() {
        Some(_) if from_env => {
            report.key(
                &path.key("from_env"),
                "set either clouds_yaml or from_env, not both",
            );
            None
        }
        Some("") => {
            report.value(
                &path.key("clouds_yaml"),
                "clouds_yaml is empty; give the name of an entry under `clouds:` in clouds.yaml",
            );
            None
        }
        Some(entry) => clouds_yaml_entry(entry, &path.key("clouds_yaml"), report),
        // As for the openstack CLI, OS_CLOUD names a clouds.yaml entry.
        None if from_env => match ProcessEnv.var("OS_CLOUD") {
            Some(entry) => clouds_yaml_entry(&entry, &path.key("from_env"), report),
            None => Some(Some(source::from_env(&ProcessEnv))),
        },
        None => Some(None),
    }
}

fn clouds_yaml_entry(
    entry: &str,
    field: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Option<Sourced>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    ok_or_report(
        source::from_clouds_yaml(entry, &ProcessEnv, &cwd),
        field,
        report,
    )
    .map(Some)
}
