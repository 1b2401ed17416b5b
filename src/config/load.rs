//! Reading a policy file: YAML syntax first, then each section on its own
//! (defaults, every cloud, every policy), then the semantic checks — so one
//! run reports every problem in the file with its line, column and field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::{DeserializeOwned, IgnoredAny};

use super::de::NodeDeserializer;
use super::error::{ConfigError, ConfigErrors};
use super::locate::{Document, Node, Value};
use super::model::Config;
use super::path::FieldPath;
use super::raw::{RawCloud, RawDefaults, RawHistory, RawPolicy, TOP_FIELDS};
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
            "opt_out" => {
                parsed.opt_out =
                    section::<Option<BTreeMap<String, String>>>(node, &path, report).flatten()
            }
            "history" => {
                parsed.history = section::<Option<RawHistory>>(node, &path, report).flatten()
            }
            "coverage_every" => {
                parsed.coverage_every = section::<Option<String>>(node, &path, report).flatten()
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
    let entries = items(
        node,
        |value| match value {
            Value::Mapping(entries) => Some(entries),
            _ => None,
        },
        [
            "no clouds are defined; define at least one under `clouds:`",
            "a mapping from cloud names to clouds",
        ],
        path,
        report,
    );
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
    let items = items(
        node,
        |value| match value {
            Value::Sequence(items) => Some(items),
            _ => None,
        },
        [
            "no policies are defined; define at least one under `policies:`",
            "a list of policies (`- name: …`)",
        ],
        path,
        report,
    );
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            section::<Option<RawPolicy>>(item, &path.index(i), report)
                .map(Option::unwrap_or_default)
        })
        .collect()
}

/// The entries of a collection section (`clouds`, `policies`), which `of`
/// picks out of its node; `[empty, expected]` say what an empty one lacks
/// and what shape it should have.
fn items<'n, T>(
    node: &'n Node,
    of: fn(&'n Value) -> Option<&'n Vec<T>>,
    [empty, expected]: [&str; 2],
    path: &FieldPath,
    report: &mut Report<'_>,
) -> &'n [T] {
    let found = of(&node.value);
    match found {
        Some(items) if !items.is_empty() => return items,
        _ if found.is_some() || node.is_null() => report.value(path, empty),
        _ => report.value(
            path,
            format!("expected {expected}, found {}", kind_of(node)),
        ),
    }
    &[]
}

#[cfg(test)]
pub(crate) mod tests;
