//! Loading whole policy files: defaults, overrides and error positions.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::secret::SecretSource;
use crate::config::DEFAULT_RETRIES;
use crate::config::{
    ApiVersion, AuthConfig, BackupWork, Domain, Misfire, PolicyKind, Project, Retries, SelectBy,
    Work, DEFAULT_MAX_CONCURRENT_JOBS, DEFAULT_POLL,
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

/// [`MINIMAL`]'s cloud with its token in an environment variable, followed
/// by `policies:` for a test to list its own under.
pub(crate) fn token_cloud() -> String {
    let endpoints = &MINIMAL[..MINIMAL.find("    auth:").unwrap_or(0)];
    format!("{endpoints}    auth: {{ type: token, token_env: VBS_TOKEN }}\npolicies:\n")
}

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
            vault: None,
            add_to_vault: false,
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
    let policy = |name: &str, cloud: &str, schedule: &str| {
        format!(
            "  - name: {name}\n    kind: backup\n    cloud: {cloud}\n    {schedule}\n    \
             volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]\n"
        )
    };
    let text = [
        token_cloud(),
        policy("a", "prod", "schedule: \"0 30 25 * * *\""),
        policy("b", "prod", "schedule: \"0 0 1 * * *\""),
        policy("c", "prod", "scheduel: \"0 0 1 * * *\""),
        policy("d", "prd", "schedule: \"0 0 1 * * *\""),
    ]
    .concat();
    let found = errors(&text);
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

#[test]
fn select_by_and_the_compute_endpoint() {
    let config = parse(MINIMAL, Path::new("policy.yaml")).unwrap();
    let cloud = &config.clouds["prod"];
    assert_eq!(cloud.select_by, SelectBy::Metadata);
    assert_eq!(cloud.endpoints.compute, None);

    let text = MINIMAL
        .replace(
            "      backup: https://vbs.eu-de.example.com\n",
            "      backup: https://vbs.eu-de.example.com\n      compute: https://ecs.eu-de.example.com/\n",
        )
        .replace("    auth:\n", "    select_by: tags\n    auth:\n");
    let config = parse(&text, Path::new("policy.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let cloud = &config.clouds["prod"];
    assert_eq!(cloud.select_by, SelectBy::Tags);
    assert_eq!(
        cloud.endpoints.compute.as_ref().map(url::Url::as_str),
        Some("https://ecs.eu-de.example.com/")
    );

    let text = MINIMAL
        .replace(
            "      backup: https://vbs.eu-de.example.com\n",
            "      backup: https://vbs.eu-de.example.com\n      compute: ecs.eu-de.example.com\n",
        )
        .replace("    auth:\n", "    select_by: tag\n    auth:\n");
    let found = errors(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("7:16: clouds.prod.endpoints.compute: "),
        "{found:#?}"
    );
    assert_eq!(
        found[1],
        "8:16: clouds.prod.select_by: unknown select_by \"tag\" (supported: metadata, the \
         Cinder volume metadata; tags, the EVS tags of OTC and Huawei Cloud)"
    );
}
