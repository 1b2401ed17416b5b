//! Semantic checks and defaults: turns the raw sections into the validated
//! [`Config`]. Every check reports into the shared [`Report`] and carries on,
//! so one run names every problem in the file; a `Config` is returned only
//! when nothing was reported.
//!
//! This file holds the top level and the helpers every check uses; the
//! sections have their own files: `defaults.rs`, `cloud.rs` (with
//! `auth.rs`), `policy.rs` (with `retention.rs` and `kind/`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::checks;
use super::model::{Config, PolicyKind, DEFAULT_MAX_CONCURRENT_JOBS};
use super::path::FieldPath;
use super::raw::{RawCloud, RawDefaults, RawPolicy};
use super::report::Report;

/// Where `history.db` lives when `state_dir` is not given.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vbs-agent";

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
    pub(crate) opt_out: Option<BTreeMap<String, String>>,
    pub(crate) coverage_every: Option<String>,
    pub(crate) history: Option<super::raw::RawHistory>,
}

/// Checks everything and resolves every default.
pub(crate) fn validate(parsed: Parsed, origin: &Path, report: &mut Report<'_>) -> Option<Config> {
    let base_dir = origin.parent().unwrap_or(Path::new(""));
    let state_dir = state_dir(parsed.state_dir.as_deref(), base_dir, report);
    let defaults = super::defaults::defaults(&parsed.defaults, report);
    let max_concurrent_jobs = max_concurrent_jobs(parsed.max_concurrent_jobs, report);
    let metrics_listen = super::listen::metrics_listen(parsed.metrics_listen.as_deref(), report);
    let opt_out = super::select::opt_out(parsed.opt_out.as_ref(), report);
    let coverage_every = super::select::coverage_every(parsed.coverage_every.as_deref(), report);
    let history = super::history::history(parsed.history.as_ref(), base_dir, report);

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
            .and_then(|raw| super::cloud::cloud(name, raw, &path, base_dir, report))
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
        if let Some(policy) = super::policy::policy(raw, &path, &defaults, &defined, report) {
            let drill = raw
                .drill
                .as_ref()
                .filter(|_| policy.kind() == PolicyKind::Backup)
                .and_then(|drill| {
                    super::drill::drill_policy(&policy, drill, &path.key("drill"), report)
                });
            // The drill follows its backup policy.
            policies.push(policy);
            policies.extend(drill);
        }
    }

    super::kind::check_endpoints(&parsed.policies, &clouds, report);
    super::kind::check_service(&parsed.policies, &clouds, report);
    super::select::check_labels(&parsed.policies, &clouds, report);

    if !report.is_empty() {
        return None;
    }
    Some(Config {
        state_dir,
        max_concurrent_jobs,
        clouds,
        policies,
        metrics_listen,
        opt_out: opt_out?,
        coverage_every: coverage_every?,
        history: history?,
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
pub(super) fn resolve(base_dir: &Path, text: &str) -> PathBuf {
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

/// The optional field `field` of the block at `path`, checked: `Some(None)`
/// when it is not given, `None` when it was refused (reported).
pub(super) fn optional<T>(
    value: &Option<String>,
    path: &FieldPath,
    field: &str,
    check: impl FnOnce(&str) -> Result<T, String>,
    report: &mut Report<'_>,
) -> Option<Option<T>> {
    match value.as_deref() {
        None => Some(None),
        Some(text) => ok_or_report(check(text), &path.key(field), report).map(Some),
    }
}

/// A list of IDs at `path`, each valid by `check` and given once; `twice`
/// says what a repeated one is.
pub(super) fn unique_ids(
    raw: &[String],
    path: &FieldPath,
    check: impl Fn(&str) -> Result<String, String>,
    twice: impl Fn(&str) -> String,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let mut ids: Vec<String> = Vec::with_capacity(raw.len());
    let mut valid = true;
    for (i, text) in raw.iter().enumerate() {
        match check(text) {
            Ok(id) if ids.contains(&id) => {
                report.value(&path.index(i), twice(&id));
                valid = false;
            }
            Ok(id) => ids.push(id),
            Err(message) => {
                report.value(&path.index(i), message);
                valid = false;
            }
        }
    }
    valid.then_some(ids)
}

/// The value, or `None` with the message reported at `path`.
pub(super) fn ok_or_report<T>(
    result: Result<T, String>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<T> {
    result.map_err(|message| report.value(path, message)).ok()
}

/// A required text field: missing and empty are reported, with `what` it
/// should hold.
pub(super) fn required<'r>(
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
