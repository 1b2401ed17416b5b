//! Selection by labels: a policy's `select` block, and the top-level
//! `opt_out` and `coverage_every`. What a label may look like depends on
//! the cloud's `select_by` and is checked against it once the clouds are
//! known ([`check_labels`]).

use std::collections::BTreeMap;
use std::time::Duration;

use super::bounds::{MAX_COVERAGE_EVERY, MAX_SELECT_KEYS};
use super::checks;
use super::model::{
    Cloud, LabelMatch, PolicyKind, SelectBy, Selector, DEFAULT_COVERAGE_EVERY, DEFAULT_OPT_OUT,
};
use super::path::FieldPath;
use super::raw::{RawPolicy, RawSelect};
use super::report::Report;
use super::validate::unique_ids;

/// Cinder's limit on a metadata key or value.
const MAX_METADATA_LEN: usize = 255;

/// The `select` block under `path`; `check` validates an excluded ID as
/// the policy's listed IDs are.
pub(super) fn selector(
    raw: &RawSelect,
    path: &FieldPath,
    check: fn(&str) -> Result<String, String>,
    report: &mut Report<'_>,
) -> Option<Selector> {
    let match_path = path.key("match");
    let all_of = match raw.all_of.as_ref() {
        None => {
            report.missing(
                path,
                "match",
                "missing required field `match` (label pairs such as `backup: nightly`, all of which must hold)",
            );
            None
        }
        Some(pairs) if pairs.is_empty() => {
            report.value(
                &match_path,
                "match is empty; give at least one label such as `backup: nightly` (a selector matching everything would protect volumes nobody chose)",
            );
            None
        }
        Some(pairs) if pairs.len() > MAX_SELECT_KEYS => {
            report.value(
                &match_path,
                format!(
                    "match has {} labels; the vendor's tag filters take at most {MAX_SELECT_KEYS}",
                    pairs.len()
                ),
            );
            None
        }
        Some(pairs) => label_matches(pairs, &match_path, report),
    };
    let exclude = exclude(raw.exclude.as_deref(), &path.key("exclude"), check, report);
    Some(Selector {
        all_of: all_of?,
        exclude: exclude?,
    })
}

/// `key: value` pairs, `"*"` standing for any value.
fn label_matches(
    pairs: &BTreeMap<String, String>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<LabelMatch>> {
    let mut valid = true;
    let mut all_of = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let at = path.key(key);
        if let Err(message) = metadata_text(key, "key").and(metadata_text(value, "value")) {
            report.value(&at, message);
            valid = false;
            continue;
        }
        all_of.push(LabelMatch {
            key: key.clone(),
            value: (value != "*").then(|| value.clone()),
        });
    }
    valid.then_some(all_of)
}

/// A metadata key or value: what Cinder stores.
fn metadata_text(text: &str, what: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("the label {what} is empty"));
    }
    if text.chars().count() > MAX_METADATA_LEN {
        return Err(format!(
            "the label {what} \"{text}\" is longer than {MAX_METADATA_LEN} characters"
        ));
    }
    Ok(())
}

/// The excluded IDs: each valid, none twice.
fn exclude(
    raw: Option<&[String]>,
    path: &FieldPath,
    check: fn(&str) -> Result<String, String>,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let twice = |id: &str| format!("{id} is excluded twice; list it once");
    unique_ids(raw.unwrap_or_default(), path, check, twice, report)
}

/// An ID both listed and excluded is a contradiction the file must settle.
pub(super) fn check_overlap(
    listed: &[String],
    selector: &Selector,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    for (i, id) in selector.exclude.iter().enumerate() {
        if listed.contains(id) {
            report.value(
                &path.key("select").key("exclude").index(i),
                format!("{id} is both listed and excluded; remove it from one of the two"),
            );
        }
    }
}

/// `opt_out`: `backup: none` when left out, nothing when `{}`.
pub(super) fn opt_out(
    raw: Option<&BTreeMap<String, String>>,
    report: &mut Report<'_>,
) -> Option<BTreeMap<String, String>> {
    let Some(raw) = raw else {
        let (key, value) = DEFAULT_OPT_OUT;
        return Some(BTreeMap::from([(key.to_string(), value.to_string())]));
    };
    let path = FieldPath::root().key("opt_out");
    let mut valid = true;
    for (key, value) in raw {
        if let Err(message) = metadata_text(key, "key").and(metadata_text(value, "value")) {
            report.value(&path.key(key), message);
            valid = false;
        } else if value == "*" {
            report.value(
                &path.key(key),
                format!("opt_out takes a value, not \"*\"; write the value that opts a volume out, such as `{key}: none`"),
            );
            valid = false;
        }
    }
    valid.then(|| raw.clone())
}

/// `coverage_every`: an hour when left out, off at `0s`.
pub(super) fn coverage_every(
    raw: Option<&str>,
    report: &mut Report<'_>,
) -> Option<Option<Duration>> {
    let Some(text) = raw else {
        return Some(Some(DEFAULT_COVERAGE_EVERY));
    };
    match checks::duration_or_zero(text, MAX_COVERAGE_EVERY) {
        Ok(d) if d.is_zero() => Some(None),
        Ok(d) if d < Duration::from_secs(60) => {
            report.value(
                &FieldPath::root().key("coverage_every"),
                format!("coverage_every {text} is shorter than a minute; each snapshot lists every volume, so take one at most every minute (or 0s for none)"),
            );
            None
        }
        Ok(d) => Some(Some(d)),
        Err(message) => {
            report.value(&FieldPath::root().key("coverage_every"), message);
            None
        }
    }
}

/// A tag key's and value's longest, on EVS and ECS.
const MAX_TAG_KEY: usize = 36;
const MAX_TAG_VALUE: usize = 43;

/// Checks what depends on the policy's cloud: selectors matched by tags
/// (volume policies on a cloud with `select_by: tags`, and every server
/// policy) must use labels the tag APIs accept, and a server selector
/// needs the compute endpoint the ECS tag filter is on.
pub(super) fn check_labels(
    policies: &[Option<RawPolicy>],
    clouds: &BTreeMap<String, Cloud>,
    report: &mut Report<'_>,
) {
    let policies_path = FieldPath::root().key("policies");
    for (i, raw) in policies.iter().enumerate() {
        let Some(raw) = raw else { continue };
        let (Some(select), Some(cloud)) = (
            &raw.select,
            raw.cloud.as_deref().and_then(|c| clouds.get(c)),
        ) else {
            continue;
        };
        let path = policies_path.index(i);
        let server = raw.kind.as_deref().and_then(|k| k.parse().ok()) == Some(PolicyKind::Server);
        if server && cloud.endpoints.compute.is_none() && !cloud.auth.has_catalog() {
            report.value(
                &path.key("select"),
                format!(
                    "servers are selected by their ECS tags, on the compute endpoint; cloud \"{}\" has no `endpoints.compute` (such as https://ecs.eu-de.example.com) and no service catalog to find it in",
                    cloud.name
                ),
            );
        }
        if !(server || cloud.select_by == SelectBy::Tags) {
            continue;
        }
        for (key, value) in select.all_of.iter().flatten() {
            let value = (value != "*").then_some(value.as_str());
            if let Err(message) = tag_text(key, MAX_TAG_KEY, "key")
                .and_then(|()| value.map_or(Ok(()), |v| tag_text(v, MAX_TAG_VALUE, "value")))
            {
                let why = if server {
                    "servers are selected by ECS tags".to_string()
                } else {
                    format!("cloud \"{}\" selects by tags", cloud.name)
                };
                report.value(
                    &path.key("select").key("match").key(key),
                    format!("{message} ({why})"),
                );
            }
        }
    }
}

/// A tag key or value as EVS and ECS take it: letters, digits, `-` and
/// `_`, at most `max` characters.
fn tag_text(text: &str, max: usize, what: &str) -> Result<(), String> {
    if text.chars().count() > max {
        return Err(format!(
            "the tag {what} \"{text}\" is longer than {max} characters"
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "the tag {what} \"{text}\" has `{c}`; tags take letters, digits, - and _ only"
        ));
    }
    Ok(())
}
