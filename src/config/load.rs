//! Reading a policy file: YAML syntax first, then each section on its own
//! (defaults, every cloud, every policy), then the semantic checks — so one
//! run reports every problem in the file with its line, column and field.

use std::path::Path;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::de::NodeDeserializer;
use super::error::{ConfigError, ConfigErrors};
use super::locate::{Document, Node, Value};
use super::model::Config;
use super::path::FieldPath;
use super::raw::{RawCloud, RawDefaults, RawPolicy, TOP_FIELDS};
use super::report::Report;
use super::validate::{self, Parsed};
use super::yaml_guard;

/// Reads and validates the policy file at `path`. An unreadable file is
/// reported as a [`ConfigErrors`] too, so callers have one error path.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = yaml_guard::read(path).map_err(|e| refused(path, &e))?;
    parse(&text, path)
}

/// Validates policy-file text. `origin` names the file in messages, and a
/// relative `state_dir` (or secret file) is resolved against its directory.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigErrors> {
    // Editors hide a byte-order mark; columns on line 1 should not count it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Before either YAML reader copies what an alias names.
    yaml_guard::check_size(text)
        .and_then(|()| yaml_guard::expanded_nodes(text))
        .map_err(|e| refused(origin, &e))?;
    // libyaml (through serde_yaml) has the most familiar syntax messages;
    // deserializing into `IgnoredAny` checks syntax without rejecting the
    // duplicate keys we want to report alongside everything else.
    if let Err(e) = serde_yaml::from_str::<IgnoredAny>(text) {
        return Err(single(syntax_error(origin, &e)));
    }
    let doc = Document::parse(text).map_err(|e| {
        single(ConfigError {
            file: origin.to_path_buf(),
            line: Some(e.marker().line()),
            column: Some(e.marker().col() + 1),
            field: String::new(),
            message: format!("invalid YAML: {}", e.info()),
        })
    })?;

    let mut report = Report::new(origin, doc.root.as_ref());
    for dup in &doc.duplicates {
        report.at(
            &dup.path,
            Some(dup.pos),
            format!(
                "duplicate key (first given at line {}, column {}); remove one of them",
                dup.first.line, dup.first.column
            ),
        );
    }
    let parsed = match &doc.root {
        None => {
            report.at(
                &FieldPath::root(),
                None,
                "the policy file is empty; it needs at least `clouds:` and `policies:`",
            );
            None
        }
        Some(root) => split(root, &mut report),
    };
    let config = parsed.and_then(|parsed| validate::validate(parsed, origin, &mut report));
    match config {
        Some(config) if report.is_empty() => Ok(config),
        _ => Err(ConfigErrors {
            errors: report.finish(),
        }),
    }
}

/// A file refused before it was parsed.
fn refused(origin: &Path, e: &yaml_guard::Refused) -> ConfigErrors {
    let pos = e.pos();
    let message = match e {
        yaml_guard::Refused::Read(io) => format!("cannot read the policy file: {io}"),
        other => other.to_string(),
    };
    single(ConfigError {
        file: origin.to_path_buf(),
        line: pos.map(|p| p.line),
        column: pos.map(|p| p.column),
        field: String::new(),
        message,
    })
}

fn single(error: ConfigError) -> ConfigErrors {
    ConfigErrors {
        errors: vec![error],
    }
}

fn syntax_error(origin: &Path, e: &serde_yaml::Error) -> ConfigError {
    let location = e.location();
    let mut message = e.to_string();
    if let Some(loc) = &location {
        // The position goes in its own fields; drop it from the text.
        let at = format!(" at line {} column {}", loc.line(), loc.column());
        message = message.replacen(&at, "", 1);
    }
    ConfigError {
        file: origin.to_path_buf(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        field: String::new(),
        message: format!("invalid YAML: {message}"),
    }
}

/// Deserializes one section; on failure reports it and returns `None`.
fn section<T: DeserializeOwned>(
    node: &Node,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<T> {
    match serde_path_to_error::deserialize(NodeDeserializer(node)) {
        Ok(value) => Some(value),
        Err(e) => {
            report.serde(path, e);
            None
        }
    }
}

fn kind_of(node: &Node) -> &'static str {
    match &node.value {
        Value::Scalar { .. } => "a single value",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
    }
}

/// Splits the top-level mapping into its sections and deserializes each.
/// Returns `None` when the file is not a mapping at all.
fn split(root: &Node, report: &mut Report<'_>) -> Option<Parsed> {
    let top = FieldPath::root();
    let Value::Mapping(entries) = &root.value else {
        report.value(
            &top,
            format!(
                "expected a mapping with `clouds:` and `policies:` at the top level, found {}",
                kind_of(root)
            ),
        );
        return None;
    };
    let mut parsed = Parsed::default();
    let (mut has_clouds, mut has_policies) = (false, false);
    for entry in entries {
        let Some(key) = entry.key.as_scalar() else {
            report.at(&top, Some(entry.key.pos), "keys must be plain names");
            continue;
        };
        let path = top.key(key);
        let node = &entry.value;
        match key {
            "state_dir" => {
                parsed.state_dir = section::<Option<String>>(node, &path, report).flatten()
            }
            "max_concurrent_jobs" => {
                parsed.max_concurrent_jobs = section::<Option<u64>>(node, &path, report).flatten()
            }
            "defaults" => {
                parsed.defaults = section::<Option<RawDefaults>>(node, &path, report)
                    .flatten()
                    .unwrap_or_default()
            }
            "clouds" => {
                has_clouds = true;
                parsed.clouds = clouds(node, &path, report);
            }
            "policies" => {
                has_policies = true;
                parsed.policies = policies(node, &path, report);
            }
            "metrics_listen" => {
                parsed.metrics_listen = section::<Option<String>>(node, &path, report).flatten()
            }
            _ => report.unknown_field(&path, TOP_FIELDS),
        }
    }
    if !has_clouds {
        report.missing(
            &top,
            "clouds",
            "missing required field `clouds` (define at least one cloud)",
        );
    }
    if !has_policies {
        report.missing(
            &top,
            "policies",
            "missing required field `policies` (define at least one policy)",
        );
    }
    Some(parsed)
}

fn clouds(
    node: &Node,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Vec<(String, Option<RawCloud>)> {
    let entries = match &node.value {
        Value::Mapping(entries) if !entries.is_empty() => entries,
        _ if node.is_null() || matches!(&node.value, Value::Mapping(_)) => {
            report.value(
                path,
                "no clouds are defined; define at least one under `clouds:`",
            );
            return Vec::new();
        }
        _ => {
            report.value(
                path,
                format!(
                    "expected a mapping from cloud names to clouds, found {}",
                    kind_of(node)
                ),
            );
            return Vec::new();
        }
    };
    let mut clouds = Vec::new();
    for entry in entries {
        let Some(name) = entry.key.as_scalar() else {
            report.at(path, Some(entry.key.pos), "cloud names must be plain names");
            continue;
        };
        let cloud_path = path.key(name);
        let cloud = section::<Option<RawCloud>>(&entry.value, &cloud_path, report)
            .map(Option::unwrap_or_default);
        clouds.push((name.to_string(), cloud));
    }
    clouds
}

fn policies(node: &Node, path: &FieldPath, report: &mut Report<'_>) -> Vec<Option<RawPolicy>> {
    let items = match &node.value {
        Value::Sequence(items) if !items.is_empty() => items,
        _ if node.is_null() || matches!(&node.value, Value::Sequence(_)) => {
            report.value(
                path,
                "no policies are defined; define at least one under `policies:`",
            );
            return Vec::new();
        }
        _ => {
            report.value(
                path,
                format!(
                    "expected a list of policies (`- name: …`), found {}",
                    kind_of(node)
                ),
            );
            return Vec::new();
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            section::<Option<RawPolicy>>(item, &path.index(i), report)
                .map(Option::unwrap_or_default)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::config::secret::SecretSource;
    use crate::config::validate::DEFAULT_RETRIES;
    use crate::config::{
        ApiVersion, AuthConfig, BackupWork, Domain, Misfire, PolicyKind, Project, Retries, Work,
        DEFAULT_MAX_CONCURRENT_JOBS, DEFAULT_POLL,
    };

    const MINIMAL: &str = "\
clouds:
  prod:
    project_id: 0123456789ABCDEF0123456789abcdef
    endpoints:
      volume: https://evs.eu-de.example.com
      backup: https://vbs.eu-de.example.com
    auth:
      type: token
      token_file: secrets/token
policies:
  - name: db-nightly
    kind: backup
    cloud: prod
    schedule: \"0 30 1 * * *\"
    volumes: [C5834FE1-577F-462E-9BF3-1B158E1DDE9C]
";

    #[test]
    fn limits_retries_jitter_and_misfire_default_and_override() {
        let config = parse(MINIMAL, Path::new("policy.yaml")).unwrap();
        assert_eq!(config.max_concurrent_jobs, DEFAULT_MAX_CONCURRENT_JOBS);
        assert_eq!(config.clouds["prod"].rate_limit, None);
        let p = &config.policies[0];
        assert_eq!(
            (p.jitter, p.misfire, p.retries),
            (Duration::ZERO, Misfire::RunOnce, DEFAULT_RETRIES)
        );

        let text = MINIMAL
            .replace("clouds:\n", "max_concurrent_jobs: 4\ndefaults:\n  misfire: skip\n  jitter: 30s\n  retries: { max_attempts: 2, delay: 1m }\nclouds:\n")
            .replace("    auth:\n", "    rate_limit: 300/m\n    auth:\n")
            .replace("    cloud: prod\n", "    cloud: prod\n    retries: { max_attempts: 5 }\n    jitter: 0s\n");
        let config = parse(&text, Path::new("policy.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.max_concurrent_jobs, 4);
        let rate = config.clouds["prod"].rate_limit.unwrap();
        assert_eq!(rate.interval(), Duration::from_millis(200));
        let p = &config.policies[0];
        assert_eq!(p.misfire, Misfire::Skip);
        assert_eq!(p.jitter, Duration::ZERO);
        assert_eq!(
            p.retries,
            Retries {
                max_attempts: 5,
                delay: Duration::from_secs(60)
            }
        );
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("policy.yaml")) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e.errors.iter().map(ConfigError::without_file).collect(),
        }
    }

    #[test]
    fn every_shipped_example_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                if let Err(e) = load(&path) {
                    panic!("{e}");
                }
                seen += 1;
            }
        }
        assert!(seen > 0, "no *.yaml in {}", dir.display());
    }

    #[test]
    fn defaults_are_resolved() {
        let config = parse(MINIMAL, Path::new("/etc/vbs-agent/policy.yaml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/vbs-agent"));
        assert_eq!(
            config.history_path(),
            PathBuf::from("/var/lib/vbs-agent/history.db")
        );
        let cloud = &config.clouds["prod"];
        assert_eq!(cloud.name, "prod");
        assert_eq!(cloud.project.id(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(cloud.snapshot_api, ApiVersion::V2);
        assert_eq!(
            cloud.endpoints.volume.as_ref().map(url::Url::as_str),
            Some("https://evs.eu-de.example.com/")
        );
        match &cloud.auth {
            AuthConfig::Token { token, .. } => assert_eq!(
                token,
                &SecretSource::File(PathBuf::from("/etc/vbs-agent/secrets/token"))
            ),
            other => panic!("{other:?}"),
        }
        let policy = config.policy("db-nightly").unwrap();
        assert_eq!(policy.kind(), PolicyKind::Backup);
        assert_eq!(policy.cloud, "prod");
        assert_eq!(policy.schedule.as_str(), "0 30 1 * * *");
        assert_eq!(policy.timezone, chrono_tz::UTC);
        assert_eq!(
            policy.work,
            Work::Backup(BackupWork {
                volumes: vec!["c5834fe1-577f-462e-9bf3-1b158e1dde9c".into()],
                force: false,
                keep_snapshot: false,
                share_to: Vec::new(),
                full_backup_every: None,
            })
        );
        assert_eq!(policy.description, None);
        assert_eq!(policy.completion_timeout, Duration::from_secs(6 * 3600));
        assert_eq!(policy.poll, DEFAULT_POLL);
    }

    #[test]
    fn policies_override_defaults_field_by_field() {
        let overrides = "    force: true
    keep_snapshot: true
    description: nightly DB backup
    completion_timeout: 2h
    timezone: America/New_York
    poll: { initial: 5s }
  - name: inherits
    kind: backup
    cloud: prod
    schedule: \"0 0 3 * * SUN\"
    volumes: [0b9d4f6e-3c2a-4e1f-8a7b-6c5d4e3f2a1b]
defaults:
  timezone: Europe/Berlin
  completion_timeout: 3h
  poll: { max: 30s, factor: 2 }
";
        let text = format!("{MINIMAL}{overrides}");
        let config = parse(&text, Path::new("policy.yaml")).unwrap();
        let own = config.policy("db-nightly").unwrap();
        assert!(matches!(
            &own.work,
            Work::Backup(w) if w.force && w.keep_snapshot
        ));
        assert_eq!(own.description.as_deref(), Some("nightly DB backup"));
        assert_eq!(own.completion_timeout, Duration::from_secs(7200));
        assert_eq!(own.timezone, chrono_tz::America::New_York);
        let poll = crate::config::PollSettings {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(30),
            factor: 2.0,
        };
        assert_eq!(own.poll, poll);
        let inherits = config.policy("inherits").unwrap();
        assert_eq!(inherits.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(inherits.completion_timeout, Duration::from_secs(3 * 3600));
        assert_eq!(
            inherits.poll,
            crate::config::PollSettings {
                initial: DEFAULT_POLL.initial,
                ..poll
            }
        );
    }

    #[test]
    fn relative_state_dir_is_relative_to_the_policy_file() {
        let text = format!("state_dir: state\n{MINIMAL}");
        let config = parse(&text, Path::new("/etc/vbs-agent/policy.yaml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/etc/vbs-agent/state"));
        let config = parse(&text, Path::new("policy.yaml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("state"));
        let text = format!("state_dir: /srv/vbs\n{MINIMAL}");
        let config = parse(&text, Path::new("/etc/vbs-agent/policy.yaml")).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/srv/vbs"));
    }

    #[test]
    fn a_project_by_name_takes_the_users_domain_unless_given_one() {
        let cloud = |project: &str| {
            format!(
                "clouds:\n  otc:\n{project}    auth:\n      type: password\n      \
                 auth_url: https://iam.eu-de.example.com/v3\n      user: bot\n      \
                 user_domain: OTC0001\n      password_env: PW\npolicies:\n  - name: a\n    \
                 kind: backup\n    cloud: otc\n    schedule: \"0 0 1 * * *\"\n    \
                 volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]\n"
            )
        };
        let project = |lines: &str| {
            parse(&cloud(lines), Path::new("p.yaml")).unwrap().clouds["otc"]
                .project
                .clone()
        };
        assert_eq!(
            project("    project_name: eu-de_sub\n"),
            Project::Name {
                name: "eu-de_sub".into(),
                domain: Domain::Name("OTC0001".into())
            }
        );
        assert_eq!(
            project("    project_name: eu-de\n    project_domain: OTC0002\n"),
            Project::Name {
                name: "eu-de".into(),
                domain: Domain::Name("OTC0002".into())
            }
        );
        // An ID wins over a name.
        assert_eq!(
            project("    project_id: 0123456789ABCDEF0123456789abcdef\n    project_name: eu-de\n"),
            Project::Id("0123456789abcdef0123456789abcdef".into())
        );
    }

    #[test]
    fn all_errors_are_reported_at_once_with_positions() {
        let text = "\
clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints:
      volume: https://evs.eu-de.example.com
      backup: https://vbs.eu-de.example.com
    auth: { type: token, token_env: VBS_TOKEN }
policies:
  - name: a
    kind: backup
    cloud: prod
    schedule: \"0 30 25 * * *\"
    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
  - name: b
    kind: backup
    cloud: prod
    schedule: \"0 0 1 * * *\"
    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
  - name: c
    kind: backup
    cloud: prod
    scheduel: \"0 0 1 * * *\"
    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
  - name: d
    kind: backup
    cloud: prd
    schedule: \"0 0 1 * * *\"
    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
";
        let found = errors(text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].starts_with("12:15: policies[0].schedule: invalid cron expression"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with(
                "22:5: policies[2].scheduel: unknown field `scheduel` (did you mean `schedule`?)"
            ),
            "{found:#?}"
        );
        assert_eq!(
            found[2],
            "26:12: policies[3].cloud: cloud \"prd\" is not defined (defined: prod)"
        );
    }

    #[test]
    fn missing_fields_point_at_the_mapping_that_lacks_them() {
        let text = MINIMAL
            .replace("    schedule: \"0 30 1 * * *\"\n", "")
            .replace("    kind: backup\n", "");
        let found = errors(&text);
        assert_eq!(
            found,
            [
                "11:5: policies[0].kind: missing required field `kind` (backup)",
                "11:5: policies[0].schedule: missing required field `schedule` (a 6-field cron expression such as \"0 30 1 * * *\")",
            ]
        );
    }

    #[test]
    fn duplicate_keys_are_errors_alongside_others() {
        let text = MINIMAL.replace(
            "    cloud: prod\n",
            "    cloud: prod\n    cloud: prod\n    timezone: Mars/Base\n",
        );
        let found = errors(&text);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].starts_with(
                "14:5: policies[0].cloud: duplicate key (first given at line 13, column 5)"
            ),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("15:15: policies[0].timezone: unknown timezone \"Mars/Base\""),
            "{found:#?}"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let found = errors("clouds:\n  prod: [a\npolicies: []\n");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].starts_with("3:9: invalid YAML: "), "{found:#?}");
        assert!(!found[0].contains(" at line 3 column 9"), "{found:#?}");
    }

    #[test]
    fn empty_and_unreadable_files() {
        assert_eq!(
            errors("# nothing yet\n"),
            ["the policy file is empty; it needs at least `clouds:` and `policies:`"]
        );
        let missing = Path::new("/nonexistent/vbs-agent/policy.yaml");
        let err = load(missing).unwrap_err();
        assert_eq!(err.errors.len(), 1);
        assert!(err
            .to_string()
            .starts_with("/nonexistent/vbs-agent/policy.yaml: cannot read the policy file: "));
        assert!(err
            .to_string()
            .ends_with("\n1 error in /nonexistent/vbs-agent/policy.yaml"));
    }

    #[test]
    fn secret_values_are_never_echoed() {
        let text = MINIMAL.replace("token_file: secrets/token", "token: s3cr3t-value");
        let found = errors(&text);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("9:7: clouds.prod.auth.token: secrets are not allowed inline"),
            "{found:#?}"
        );
        assert!(!found[0].contains("s3cr3t"));
    }

    #[test]
    fn an_empty_block_is_reported_at_its_key() {
        let text = format!(
            "clouds:\n  prod:\n{}",
            &MINIMAL[MINIMAL.find("policies:").unwrap()..]
        );
        let found = errors(&text);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found.iter().all(|e| e.starts_with("2:3: clouds.prod.")),
            "{found:#?}"
        );
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        assert!(parse(&format!("\u{feff}{MINIMAL}"), Path::new("p.yaml")).is_ok());
    }
}
