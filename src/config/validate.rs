//! Semantic checks and defaults: turns the raw sections into the validated
//! [`Config`]. Every check reports into the shared [`Report`] and carries on,
//! so one run names every problem in the file; a `Config` is returned only
//! when nothing was reported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::bounds::{
    MAX_COMPLETION_TIMEOUT, MAX_JITTER, MAX_KEEP_COUNT, MAX_POLL_WAIT, MAX_RETENTION_AGE,
    MAX_RETRY_DELAY, MAX_RPO,
};
use super::checks::{self, UrlRole};
use super::model::{
    ApiVersion, AuthConfig, BackupWork, Cloud, CloudOrigin, Config, Domain, Endpoints, Misfire,
    Policy, PolicyKind, PollSettings, Project, Retention, Retries, ServerWork, SnapshotWork, Work,
    DEFAULT_MAX_CONCURRENT_JOBS,
};
use super::path::FieldPath;
use super::raw::{RawAuth, RawCloud, RawDefaults, RawPolicy, RawPoll, RawRetention, RawRetries};
use super::report::Report;
use super::secret::SecretSource;
use super::source::{self, Env, ProcessEnv, Sourced};
use crate::naming;
use crate::schedule::Schedule;

/// Where `history.db` lives when `state_dir` is not given.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vbs-agent";
/// `defaults.completion_timeout` when not given.
pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// `poll` when not given.
pub const DEFAULT_POLL: PollSettings = PollSettings {
    initial: Duration::from_secs(2),
    max: Duration::from_secs(60),
    factor: 1.5,
};

/// `retries` when not given: one attempt.
pub const DEFAULT_RETRIES: Retries = Retries {
    max_attempts: 1,
    delay: Duration::from_secs(300),
};

/// The sections of the file that deserialized, as the loader split them.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) state_dir: Option<String>,
    pub(crate) max_concurrent_jobs: Option<u64>,
    pub(crate) defaults: RawDefaults,
    /// Every key under `clouds`, with the cloud if it deserialized.
    pub(crate) clouds: Vec<(String, Option<RawCloud>)>,
    /// Every entry under `policies`, with the policy if it deserialized.
    pub(crate) policies: Vec<Option<RawPolicy>>,
    pub(crate) metrics_listen: Option<String>,
}

/// Checks everything and resolves every default.
pub(crate) fn validate(parsed: Parsed, origin: &Path, report: &mut Report<'_>) -> Option<Config> {
    let base_dir = origin.parent().unwrap_or(Path::new(""));
    let state_dir = state_dir(parsed.state_dir.as_deref(), base_dir, report);
    let defaults = defaults(&parsed.defaults, report);
    let max_concurrent_jobs = max_concurrent_jobs(parsed.max_concurrent_jobs, report);
    let metrics_listen = super::listen::metrics_listen(parsed.metrics_listen.as_deref(), report);

    let clouds_path = FieldPath::root().key("clouds");
    let defined: Vec<&str> = parsed.clouds.iter().map(|(n, _)| n.as_str()).collect();
    let mut clouds = BTreeMap::new();
    for (name, raw) in &parsed.clouds {
        let path = clouds_path.key(name);
        if let Err(message) = checks::cloud_name(name) {
            report.key(&path, message);
        }
        if let Some(cloud) = raw
            .as_ref()
            .and_then(|raw| cloud(name, raw, &path, base_dir, report))
        {
            clouds.insert(name.clone(), cloud);
        }
    }

    let policies_path = FieldPath::root().key("policies");
    let mut names: HashMap<String, FieldPath> = HashMap::new();
    let mut policies = Vec::new();
    for (i, raw) in parsed.policies.iter().enumerate() {
        let Some(raw) = raw else { continue };
        let path = policies_path.index(i);
        if let Some(name) = &raw.name {
            if let Some(first) = names.get(name) {
                let line = report
                    .line_of(first)
                    .map_or(String::new(), |l| format!(" (first defined at line {l})"));
                report.value(
                    &path.key("name"),
                    format!("duplicate policy name \"{name}\"{line}; policy names must be unique"),
                );
            } else {
                names.insert(name.clone(), path.key("name"));
            }
        }
        if let Some(policy) = policy(raw, &path, &defaults, &defined, report) {
            policies.push(policy);
        }
    }

    super::server::check_endpoints(&parsed.policies, &clouds, report);

    if !report.is_empty() {
        return None;
    }
    Some(Config {
        state_dir,
        max_concurrent_jobs,
        clouds,
        policies,
        metrics_listen,
    })
}

fn max_concurrent_jobs(value: Option<u64>, report: &mut Report<'_>) -> usize {
    match value {
        None => DEFAULT_MAX_CONCURRENT_JOBS,
        Some(n @ 1..=10_000) => usize::try_from(n).unwrap_or(DEFAULT_MAX_CONCURRENT_JOBS),
        Some(n) => {
            report.value(
                &FieldPath::root().key("max_concurrent_jobs"),
                format!("max_concurrent_jobs {n} is out of range; use 1 to 10000"),
            );
            DEFAULT_MAX_CONCURRENT_JOBS
        }
    }
}

/// A relative path is relative to the policy file's directory, so a policy
/// file and its state can move together.
fn resolve(base_dir: &Path, text: &str) -> PathBuf {
    base_dir.join(text)
}

fn state_dir(text: Option<&str>, base_dir: &Path, report: &mut Report<'_>) -> PathBuf {
    match text {
        None => PathBuf::from(DEFAULT_STATE_DIR),
        Some("") => {
            report.value(
                &FieldPath::root().key("state_dir"),
                format!(
                    "state_dir is empty; give a directory or leave it out for {DEFAULT_STATE_DIR}"
                ),
            );
            PathBuf::from(DEFAULT_STATE_DIR)
        }
        Some(text) => resolve(base_dir, text),
    }
}

/// `defaults` with built-in values filled in. A bad value is reported and
/// replaced by the built-in, so policies are still checked.
struct Defaults {
    timezone: Tz,
    completion_timeout: Duration,
    poll: PollParts,
    jitter: Duration,
    misfire: Misfire,
    retries: RetryParts,
    notify: Option<super::model::Notify>,
}

fn defaults(raw: &RawDefaults, report: &mut Report<'_>) -> Defaults {
    let path = FieldPath::root().key("defaults");
    let timezone = raw
        .timezone
        .as_deref()
        .and_then(|tz| ok_or_report(checks::timezone(tz), &path.key("timezone"), report))
        .unwrap_or(Tz::UTC);
    let completion_timeout = raw
        .completion_timeout
        .as_deref()
        .and_then(|d| {
            ok_or_report(
                checks::duration(d, MAX_COMPLETION_TIMEOUT),
                &path.key("completion_timeout"),
                report,
            )
        })
        .unwrap_or(DEFAULT_COMPLETION_TIMEOUT);
    let poll_path = path.key("poll");
    let poll = PollParts::parse(raw.poll.as_ref(), &poll_path, report);
    poll.check_order(&PollParts::default(), &poll_path, report);
    let jitter = raw
        .jitter
        .as_deref()
        .and_then(|d| {
            ok_or_report(
                checks::duration_or_zero(d, MAX_JITTER),
                &path.key("jitter"),
                report,
            )
        })
        .unwrap_or(Duration::ZERO);
    let misfire = raw
        .misfire
        .as_deref()
        .and_then(|m| ok_or_report(checks::misfire(m), &path.key("misfire"), report))
        .unwrap_or(Misfire::RunOnce);
    let retries = RetryParts::parse(raw.retries.as_ref(), &path.key("retries"), report);
    let notify = raw
        .notify
        .as_ref()
        .and_then(|n| super::notify::notify(n, &path.key("notify"), report));
    Defaults {
        timezone,
        completion_timeout,
        poll,
        jitter,
        misfire,
        retries,
        notify,
    }
}

/// The fields of one `retries` block that are set and valid.
#[derive(Debug, Clone, Copy, Default)]
struct RetryParts {
    max_attempts: Option<u32>,
    delay: Option<Duration>,
}

impl RetryParts {
    fn parse(raw: Option<&RawRetries>, path: &FieldPath, report: &mut Report<'_>) -> Self {
        let Some(raw) = raw else {
            return Self::default();
        };
        let max_attempts = raw.max_attempts.filter(|n| {
            let ok = (1..=10).contains(n);
            if !ok {
                report.value(
                    &path.key("max_attempts"),
                    format!("max_attempts {n} is out of range; use 1 (no retry) to 10"),
                );
            }
            ok
        });
        let delay = raw.delay.as_deref().and_then(|d| {
            ok_or_report(
                checks::duration(d, MAX_RETRY_DELAY),
                &path.key("delay"),
                report,
            )
        });
        Self {
            max_attempts,
            delay,
        }
    }

    /// These parts over `base`, then over the built-in defaults.
    fn resolve(&self, base: &RetryParts) -> Retries {
        Retries {
            max_attempts: self
                .max_attempts
                .or(base.max_attempts)
                .unwrap_or(DEFAULT_RETRIES.max_attempts),
            delay: self.delay.or(base.delay).unwrap_or(DEFAULT_RETRIES.delay),
        }
    }
}

fn ok_or_report<T>(
    result: Result<T, String>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<T> {
    result.map_err(|message| report.value(path, message)).ok()
}

/// The fields of one `poll` block that are set and valid.
#[derive(Debug, Clone, Copy, Default)]
struct PollParts {
    initial: Option<Duration>,
    max: Option<Duration>,
    factor: Option<f64>,
    /// False when a field was given but invalid (already reported).
    valid: bool,
}

impl PollParts {
    fn parse(raw: Option<&RawPoll>, path: &FieldPath, report: &mut Report<'_>) -> Self {
        let mut parts = PollParts {
            valid: true,
            ..PollParts::default()
        };
        let Some(raw) = raw else { return parts };
        let mut duration = |text: &Option<String>, field: &str, valid: &mut bool| {
            let text = text.as_deref()?;
            let parsed = ok_or_report(
                checks::duration(text, MAX_POLL_WAIT),
                &path.key(field),
                report,
            );
            *valid &= parsed.is_some();
            parsed
        };
        parts.initial = duration(&raw.initial, "initial", &mut parts.valid);
        parts.max = duration(&raw.max, "max", &mut parts.valid);
        if let Some(factor) = raw.factor {
            if (1.0..=10.0).contains(&factor) {
                parts.factor = Some(factor);
            } else {
                parts.valid = false;
                report.value(
                    &path.key("factor"),
                    format!("poll factor {factor} is out of range; use a number from 1.0 (fixed interval) to 10.0"),
                );
            }
        }
        parts
    }

    /// These parts over `base`, then over the built-in defaults.
    fn resolve(&self, base: &PollParts) -> PollSettings {
        PollSettings {
            initial: self
                .initial
                .or(base.initial)
                .unwrap_or(DEFAULT_POLL.initial),
            max: self.max.or(base.max).unwrap_or(DEFAULT_POLL.max),
            factor: self.factor.or(base.factor).unwrap_or(DEFAULT_POLL.factor),
        }
    }

    /// Reports `initial` > `max` when this block set one of them (otherwise
    /// the block it inherits from is at fault and reports it itself).
    fn check_order(&self, base: &PollParts, path: &FieldPath, report: &mut Report<'_>) {
        if !self.valid || !base.valid || (self.initial.is_none() && self.max.is_none()) {
            return;
        }
        let poll = self.resolve(base);
        if poll.initial > poll.max {
            let field = if self.initial.is_some() {
                "initial"
            } else {
                "max"
            };
            report.value(
                &path.key(field),
                format!(
                    "poll.initial ({}) is longer than poll.max ({}); initial must not exceed max",
                    humantime::format_duration(poll.initial),
                    humantime::format_duration(poll.max),
                ),
            );
        }
    }
}

fn required<'r>(
    value: &'r Option<String>,
    path: &FieldPath,
    field: &str,
    what: &str,
    report: &mut Report<'_>,
) -> Option<&'r str> {
    match value.as_deref() {
        None => {
            report.missing(
                path,
                field,
                format!("missing required field `{field}` ({what})"),
            );
            None
        }
        Some("") => {
            report.value(&path.key(field), format!("`{field}` is empty ({what})"));
            None
        }
        Some(text) => Some(text),
    }
}

fn cloud(
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
            let server_backup = match &raw_endpoints.server_backup {
                None => Some(None),
                given => url(given, "server_backup"),
            };
            Some(Endpoints {
                volume: volume?,
                backup: backup?,
                server_backup: server_backup?,
            })
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

const PASSWORD_FIELDS: &[&str] = &[
    "type",
    "auth_url",
    "user",
    "user_domain",
    "password_file",
    "password_env",
    "password_credential",
];
const TOKEN_FIELDS: &[&str] = &[
    "type",
    "auth_url",
    "token_file",
    "token_env",
    "token_credential",
];
const AKSK_FIELDS: &[&str] = &[
    "type",
    "access_key_file",
    "access_key_env",
    "access_key_credential",
    "secret_key_file",
    "secret_key_env",
    "secret_key_credential",
];

fn auth(
    raw: &RawAuth,
    path: &FieldPath,
    allow_http: bool,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<AuthConfig> {
    let kind = required(&raw.kind, path, "type", "password, token or aksk", report)?;
    let fields: [(&str, &Option<String>); 15] = [
        ("auth_url", &raw.auth_url),
        ("user", &raw.user),
        ("user_domain", &raw.user_domain),
        ("password_file", &raw.password_file),
        ("password_env", &raw.password_env),
        ("password_credential", &raw.password_credential),
        ("token_file", &raw.token_file),
        ("token_env", &raw.token_env),
        ("token_credential", &raw.token_credential),
        ("access_key_file", &raw.access_key_file),
        ("access_key_env", &raw.access_key_env),
        ("access_key_credential", &raw.access_key_credential),
        ("secret_key_file", &raw.secret_key_file),
        ("secret_key_env", &raw.secret_key_env),
        ("secret_key_credential", &raw.secret_key_credential),
    ];
    let allowed = match kind {
        "password" => PASSWORD_FIELDS,
        "token" => TOKEN_FIELDS,
        "aksk" => AKSK_FIELDS,
        other => {
            report.value(
                &path.key("type"),
                format!("unknown auth type \"{other}\" (supported: password, token, aksk)"),
            );
            return None;
        }
    };
    for (field, value) in fields {
        if value.is_some() && !allowed.contains(&field) {
            report.key(
                &path.key(field),
                format!(
                    "`{field}` does not apply to auth type {kind} (fields for {kind}: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    let mut secret = |what: &str, file, env, credential| {
        secret(
            SecretFields {
                kind,
                what,
                file,
                env,
                credential,
            },
            path,
            base_dir,
            report,
        )
    };
    match kind {
        "password" => {
            let password = secret(
                "password",
                &raw.password_file,
                &raw.password_env,
                &raw.password_credential,
            );
            let auth_url = required(
                &raw.auth_url,
                path,
                "auth_url",
                "the Keystone v3 URL, such as https://iam.eu-de.example.com/v3",
                report,
            )
            .and_then(|u| {
                ok_or_report(
                    checks::url(u, UrlRole::Identity, allow_http),
                    &path.key("auth_url"),
                    report,
                )
            });
            let user = required(&raw.user, path, "user", "the user name", report);
            let user_domain = required(
                &raw.user_domain,
                path,
                "user_domain",
                "the user's domain name",
                report,
            );
            Some(AuthConfig::Password {
                auth_url: auth_url?,
                user: user?.to_string(),
                user_domain: user_domain?.to_string(),
                password: password?,
            })
        }
        "aksk" => {
            let access_key = secret(
                "access_key",
                &raw.access_key_file,
                &raw.access_key_env,
                &raw.access_key_credential,
            );
            let secret_key = secret(
                "secret_key",
                &raw.secret_key_file,
                &raw.secret_key_env,
                &raw.secret_key_credential,
            );
            Some(AuthConfig::AkSk {
                access_key: access_key?,
                secret_key: secret_key?,
            })
        }
        _ => {
            let token = secret(
                "token",
                &raw.token_file,
                &raw.token_env,
                &raw.token_credential,
            );
            let auth_url = match raw.auth_url.as_deref() {
                None => Some(None),
                Some(u) => ok_or_report(
                    checks::url(u, UrlRole::Identity, allow_http),
                    &path.key("auth_url"),
                    report,
                )
                .map(Some),
            };
            Some(AuthConfig::Token {
                token: token?,
                auth_url: auth_url?,
            })
        }
    }
}

/// The three ways to give one secret of an auth block.
struct SecretFields<'r> {
    /// The auth type, for messages.
    kind: &'r str,
    /// The field prefix: `password`, `token`, `access_key`, `secret_key`.
    what: &'r str,
    file: &'r Option<String>,
    env: &'r Option<String>,
    credential: &'r Option<String>,
}

/// Exactly one of `{what}_file`, `{what}_env` and `{what}_credential`.
fn secret(
    fields: SecretFields<'_>,
    path: &FieldPath,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<SecretSource> {
    let what = fields.what;
    let spoken = what.replace('_', " ");
    let file_field = format!("{what}_file");
    let env_field = format!("{what}_env");
    let credential_field = format!("{what}_credential");
    let given: Vec<&str> = [
        (fields.file, file_field.as_str()),
        (fields.env, env_field.as_str()),
        (fields.credential, credential_field.as_str()),
    ]
    .iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, f)| *f)
    .collect();
    if given.len() > 1 {
        report.key(
            &path.key(given[1]),
            format!("set either {} or {}, not both", given[0], given[1]),
        );
        return None;
    }
    match (
        fields.file.as_deref(),
        fields.env.as_deref(),
        fields.credential.as_deref(),
    ) {
        (None, None, None) => {
            report.missing(
                path,
                &file_field,
                format!(
                    "{} auth needs {file_field} (a file holding the {spoken}), {env_field} (an environment variable) or {credential_field} (a systemd credential name)",
                    fields.kind
                ),
            );
            None
        }
        (Some(""), _, _) => {
            report.value(
                &path.key(&file_field),
                format!("{file_field} is empty; give the path of a file holding the {spoken}"),
            );
            None
        }
        (Some(file), _, _) => Some(SecretSource::File(resolve(base_dir, file))),
        (_, Some(env), _) => {
            ok_or_report(checks::env_var(env), &path.key(&env_field), report).map(SecretSource::Env)
        }
        (_, _, Some(name)) => ok_or_report(
            checks::credential_name(name),
            &path.key(&credential_field),
            report,
        )
        .map(|()| SecretSource::Credential(name.to_string())),
    }
}

fn policy(
    raw: &RawPolicy,
    path: &FieldPath,
    defaults: &Defaults,
    clouds: &[&str],
    report: &mut Report<'_>,
) -> Option<Policy> {
    let name = required(&raw.name, path, "name", "letters, digits, _ and -", report)
        .and_then(|n| ok_or_report(checks::policy_name(n), &path.key("name"), report).map(|()| n));

    let kind = match required(&raw.kind, path, "kind", "backup", report) {
        None => None,
        Some("backup") => Some(PolicyKind::Backup),
        Some("snapshot") => Some(PolicyKind::Snapshot),
        Some("server") => Some(PolicyKind::Server),
        Some(other) => {
            report.value(
                &path.key("kind"),
                format!("unknown kind \"{other}\" (supported: backup, snapshot, server)"),
            );
            None
        }
    };
    super::server::inapplicable(raw, kind, path, report);
    if kind == Some(PolicyKind::Snapshot) && raw.keep_snapshot.is_some() {
        report.key(
            &path.key("keep_snapshot"),
            "keep_snapshot applies to kind backup only; a snapshot policy keeps its snapshots until retention removes them",
        );
    }

    let cloud = required(
        &raw.cloud,
        path,
        "cloud",
        "the name of a cloud under `clouds`",
        report,
    )
    .filter(|cloud| {
        // With no clouds section there is nothing to check against, and that
        // is reported on its own.
        let defined = clouds.is_empty() || clouds.contains(cloud);
        if !defined {
            report.value(
                &path.key("cloud"),
                format!(
                    "cloud \"{cloud}\" is not defined (defined: {})",
                    clouds.join(", ")
                ),
            );
        }
        defined
    });

    let schedule = required(
        &raw.schedule,
        path,
        "schedule",
        "a 6-field cron expression such as \"0 30 1 * * *\"",
        report,
    )
    .and_then(|s| {
        ok_or_report(
            Schedule::parse(s).map_err(|e| e.to_string()),
            &path.key("schedule"),
            report,
        )
    });

    let timezone = match raw.timezone.as_deref() {
        None => Some(defaults.timezone),
        Some(tz) => ok_or_report(checks::timezone(tz), &path.key("timezone"), report),
    };

    let (volumes, servers) = match kind {
        Some(PolicyKind::Server) => (
            Some(Vec::new()),
            super::server::servers(raw.servers.as_deref(), path, report),
        ),
        _ => (
            volumes(raw.volumes.as_deref(), path, report),
            Some(Vec::new()),
        ),
    };
    let provider_id = super::server::provider_id(raw.provider_id.as_deref(), path, report);

    let targets = volumes.iter().chain(&servers).flatten().next();
    if let (Some(name), Some(first)) = (name, targets) {
        let name_of_backup = naming::resource_name(name, DateTime::<Utc>::UNIX_EPOCH, first);
        if let Err(message) = naming::check_vendor_name(&name_of_backup) {
            report.value(
                &path.key("name"),
                format!("backup names made from this policy name are refused by VBS: {message}"),
            );
        }
    }

    let description = match raw.description.as_deref() {
        None => Some(None),
        Some(d) => ok_or_report(checks::description(d), &path.key("description"), report)
            .map(|()| Some(d.to_string())),
    };

    let completion_timeout = match raw.completion_timeout.as_deref() {
        None => Some(defaults.completion_timeout),
        Some(d) => ok_or_report(
            checks::duration(d, MAX_COMPLETION_TIMEOUT),
            &path.key("completion_timeout"),
            report,
        ),
    };

    let poll_path = path.key("poll");
    let poll = PollParts::parse(raw.poll.as_ref(), &poll_path, report);
    poll.check_order(&defaults.poll, &poll_path, report);

    let jitter = match raw.jitter.as_deref() {
        None => Some(defaults.jitter),
        Some(d) => ok_or_report(
            checks::duration_or_zero(d, MAX_JITTER),
            &path.key("jitter"),
            report,
        ),
    };
    if let (Some(jitter), Some(schedule), Some(tz)) = (jitter, &schedule, timezone) {
        check_jitter(jitter, schedule, tz, raw.jitter.is_some(), path, report);
    }
    let misfire = match raw.misfire.as_deref() {
        None => Some(defaults.misfire),
        Some(m) => ok_or_report(checks::misfire(m), &path.key("misfire"), report),
    };
    let retries = RetryParts::parse(raw.retries.as_ref(), &path.key("retries"), report)
        .resolve(&defaults.retries);
    let retention = match &raw.retention {
        None => Some(None),
        Some(r) => retention(r, &path.key("retention"), report).map(Some),
    };
    let share_to = share_to(raw.share_to.as_deref(), kind, path, report);
    let full_backup_every = match raw.full_backup_every {
        None => Some(None),
        Some(_) if kind == Some(PolicyKind::Snapshot) => {
            report.key(
                &path.key("full_backup_every"),
                "full_backup_every applies to kind backup only",
            );
            None
        }
        Some(n @ 1..=1000) => Some(Some(n)),
        Some(n) => {
            report.value(
                &path.key("full_backup_every"),
                format!("full_backup_every {n} is out of range; use 1 (always full) to 1000"),
            );
            None
        }
    };

    let notify = match &raw.notify {
        None => Some(defaults.notify.clone()),
        Some(n) => super::notify::notify(n, &path.key("notify"), report).map(Some),
    };

    let rpo = match raw.rpo.as_deref() {
        None => Some(None),
        Some(d) => ok_or_report(checks::duration(d, MAX_RPO), &path.key("rpo"), report).map(Some),
    };

    let (volumes, servers, provider_id) = (volumes?, servers?, provider_id?);
    let (share_to, full_backup_every) = (share_to?, full_backup_every?);
    let force = raw.force.unwrap_or(false);
    let work = match kind? {
        PolicyKind::Backup => Work::Backup(BackupWork {
            volumes,
            force,
            keep_snapshot: raw.keep_snapshot.unwrap_or(false),
            share_to,
            full_backup_every,
        }),
        PolicyKind::Snapshot => Work::Snapshot(SnapshotWork { volumes, force }),
        PolicyKind::Server => Work::Server(ServerWork {
            servers,
            provider_id,
        }),
    };
    Some(Policy {
        name: name?.to_string(),
        cloud: cloud?.to_string(),
        schedule: schedule?,
        timezone: timezone?,
        description: description?,
        completion_timeout: completion_timeout?,
        poll: poll.resolve(&defaults.poll),
        jitter: jitter?,
        misfire: misfire?,
        retries,
        retention: retention?,
        notify: notify?,
        rpo: rpo?,
        work,
    })
}

/// Project IDs, each once, for kind `backup` only.
fn share_to(
    raw: Option<&[String]>,
    kind: Option<PolicyKind>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let list = path.key("share_to");
    if kind == Some(PolicyKind::Snapshot) {
        report.key(
            &list,
            "share_to applies to kind backup only: snapshots cannot be shared",
        );
        return None;
    }
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    let mut valid = true;
    for (i, text) in raw.iter().enumerate() {
        match checks::project_id(text) {
            Ok(id) if ids.contains(&id) => {
                report.value(
                    &list.index(i),
                    format!("project {id} is listed twice; list each project once"),
                );
                valid = false;
            }
            Ok(id) => ids.push(id),
            Err(message) => {
                report.value(&list.index(i), message);
                valid = false;
            }
        }
    }
    valid.then_some(ids)
}

/// Retention rules; a block that keeps nothing is refused rather than
/// read as "delete everything".
fn retention(raw: &RawRetention, path: &FieldPath, report: &mut Report<'_>) -> Option<Retention> {
    let max_age = match raw.max_age.as_deref() {
        None => Some(None),
        Some(d) => ok_or_report(
            checks::duration(d, MAX_RETENTION_AGE),
            &path.key("max_age"),
            report,
        )
        .map(Some),
    }?;
    let mut counts_valid = true;
    let mut count = |value: Option<u32>, field: &str| match value {
        Some(n) if n > MAX_KEEP_COUNT => {
            report.value(
                &path.key(field),
                format!("{field} {n} is out of range; use 0 to {MAX_KEEP_COUNT}"),
            );
            counts_valid = false;
            0
        }
        other => other.unwrap_or(0),
    };
    let rules = Retention {
        keep_last: count(raw.keep_last, "keep_last"),
        max_age,
        keep_hourly: count(raw.keep_hourly, "keep_hourly"),
        keep_daily: count(raw.keep_daily, "keep_daily"),
        keep_weekly: count(raw.keep_weekly, "keep_weekly"),
        keep_monthly: count(raw.keep_monthly, "keep_monthly"),
        keep_yearly: count(raw.keep_yearly, "keep_yearly"),
    };
    if !counts_valid {
        return None;
    }
    if rules == Retention::default() {
        report.value(
            path,
            "retention keeps nothing; set at least one of keep_last, max_age, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly (or leave retention out to never delete)",
        );
        return None;
    }
    Some(rules)
}

/// Jitter must be shorter than the gap between two slots, or one slot's
/// jobs would start after the next slot fired.
fn check_jitter(
    jitter: Duration,
    schedule: &Schedule,
    tz: Tz,
    set_by_policy: bool,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    if jitter.is_zero() {
        return;
    }
    let slots = schedule.upcoming(Utc::now(), tz, 50);
    let Some(gap) = slots
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .min()
    else {
        return;
    };
    if jitter < gap {
        return;
    }
    let (field, origin) = if set_by_policy {
        (path.key("jitter"), "")
    } else {
        (
            FieldPath::root().key("defaults").key("jitter"),
            " (from defaults.jitter)",
        )
    };
    report.value(
        &field,
        format!(
            "jitter {}{origin} is not shorter than the interval of {} between slots of {}; jobs of one slot would run into the next",
            humantime::format_duration(jitter),
            humantime::format_duration(gap),
            path,
        ),
    );
}

/// Non-empty, each a volume ID, none twice.
fn volumes(
    raw: Option<&[String]>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    id_list(
        raw,
        path,
        IdList {
            field: "volumes",
            noun: "volume",
            missing: "missing required field `volumes` (a list of volume IDs)",
            check: checks::volume_id,
        },
        report,
    )
}

/// What one list of IDs (`volumes`, `servers`) is called and how an ID is checked.
pub(super) struct IdList {
    pub(super) field: &'static str,
    pub(super) noun: &'static str,
    pub(super) missing: &'static str,
    pub(super) check: fn(&str) -> Result<String, String>,
}

/// Non-empty, each a valid ID, none twice.
pub(super) fn id_list(
    raw: Option<&[String]>,
    path: &FieldPath,
    list: IdList,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        report.missing(path, list.field, list.missing);
        return None;
    };
    let (field, noun) = (list.field, list.noun);
    let list_path = path.key(field);
    if raw.is_empty() {
        report.value(
            &list_path,
            format!("{field} is empty; list at least one {noun} ID"),
        );
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::with_capacity(raw.len());
    let mut valid = true;
    for (i, text) in raw.iter().enumerate() {
        let item = list_path.index(i);
        let Some(id) = ok_or_report((list.check)(text), &item, report) else {
            valid = false;
            continue;
        };
        if let Some(first) = seen.get(&id) {
            let line = report
                .line_of(&list_path.index(*first))
                .map_or(String::new(), |l| format!(" (first listed at line {l})"));
            report.value(
                &item,
                format!("{noun} {id} is listed twice{line}; list each {noun} once"),
            );
            valid = false;
            continue;
        }
        seen.insert(id.clone(), i);
        ids.push(id);
    }
    valid.then_some(ids)
}
