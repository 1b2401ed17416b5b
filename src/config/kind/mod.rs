//! What only one kind of policy has. Each kind's file turns its own raw
//! fields into its [`Work`] and refuses the fields that do not apply to it;
//! adding a kind means one file here and one arm in [`rules`].

mod backup;
mod server;
mod snapshot;

use std::collections::{BTreeMap, HashMap};

use super::checks;
use super::model::{Cloud, PolicyKind, Selector, Work};
use super::path::FieldPath;
use super::raw::RawPolicy;
use super::report::Report;
use super::validate::ok_or_report;

pub(super) use backup::check_service;
pub(super) use server::check_endpoints;

/// The checks of one kind, in the order a policy is checked.
pub(super) struct Rules {
    /// The list a job is made for each entry of.
    targets: &'static IdList,
    /// Reports the fields given that do not apply to this kind.
    refuse: fn(&RawPolicy, &FieldPath, &mut Report<'_>),
    /// The kind's own settings, with the targets when they checked out.
    work: WorkFn,
}

/// Builds a kind's [`Work`] from the raw policy and its checked targets.
type WorkFn = fn(&RawPolicy, Targets, &FieldPath, &mut Report<'_>) -> Option<Work>;

/// A policy's targets, or `None` when their problems were reported.
type Targets = Option<Vec<String>>;

/// The checks of `kind`.
fn rules(kind: PolicyKind) -> &'static Rules {
    match kind {
        PolicyKind::Backup => &backup::RULES,
        PolicyKind::Snapshot => &snapshot::RULES,
        PolicyKind::Server => &server::RULES,
        // Never parsed from the file (see `parse`); a drill policy is made
        // from its backup policy's `drill:` by `super::drill`.
        PolicyKind::Restore => &backup::RULES,
    }
}

/// The `kind` named in the file; an unknown one is reported.
pub(super) fn parse(text: &str, path: &FieldPath, report: &mut Report<'_>) -> Option<PolicyKind> {
    let kind = text.parse().ok();
    match kind {
        None => report.value(
            &path.key("kind"),
            format!("unknown kind \"{text}\" (supported: backup, snapshot, server)"),
        ),
        Some(PolicyKind::Restore) => {
            report.value(
                &path.key("kind"),
                "kind restore is not written in the file: give a backup policy a `drill:` block to restore its backups on a schedule",
            );
            return None;
        }
        Some(_) => {}
    }
    kind
}

/// Reports the fields that do not apply to `kind`; with no kind (missing or
/// unknown, reported) nothing is known not to apply.
pub(super) fn refuse(
    kind: Option<PolicyKind>,
    raw: &RawPolicy,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    if let Some(kind) = kind {
        (rules(kind).refuse)(raw, path, report);
    }
}

/// What a job is made for each of, as listed; with no kind, the volumes,
/// so one run names their problems too. A policy with `select` may list
/// none.
pub(super) fn targets(
    kind: Option<PolicyKind>,
    raw: &RawPolicy,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Targets {
    let list = id_list_of(kind);
    if raw.select.is_some() && (list.raw)(raw).is_none() {
        return Some(Vec::new());
    }
    id_list(raw, path, list, report)
}

/// The list of IDs a policy of `kind` names its targets in.
fn id_list_of(kind: Option<PolicyKind>) -> &'static IdList {
    kind.map_or(&VOLUMES, |kind| rules(kind).targets)
}

/// The `select` block, its excluded IDs checked as `kind`'s listed ones.
pub(super) fn selector(
    kind: Option<PolicyKind>,
    raw: &RawPolicy,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Option<Selector>> {
    let Some(select) = &raw.select else {
        return Some(None);
    };
    super::select::selector(select, &path.key("select"), id_list_of(kind).check, report).map(Some)
}

/// The work of a policy of `kind`. With no kind there is none, but the
/// settings are checked as for kind backup (and `provider_id` as for
/// server), so one run names their problems too.
pub(super) fn work(
    kind: Option<PolicyKind>,
    raw: &RawPolicy,
    targets: Targets,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Work> {
    match kind {
        Some(kind) => (rules(kind).work)(raw, targets, path, report),
        None => {
            server::provider_id(raw.provider_id.as_deref(), path, report);
            (backup::RULES.work)(raw, targets, path, report);
            None
        }
    }
}

/// Each policy of the file that names a configured cloud: where it is,
/// what it says, its kind (if it parses) and its cloud.
fn on_clouds<'a>(
    policies: &'a [Option<RawPolicy>],
    clouds: &'a BTreeMap<String, Cloud>,
) -> impl Iterator<Item = (FieldPath, &'a RawPolicy, Option<PolicyKind>, &'a Cloud)> + 'a {
    let policies_path = FieldPath::root().key("policies");
    policies.iter().enumerate().filter_map(move |(i, raw)| {
        let raw = raw.as_ref()?;
        let cloud = clouds.get(raw.cloud.as_deref()?)?;
        let kind = raw.kind.as_deref().and_then(|k| k.parse().ok());
        Some((policies_path.index(i), raw, kind, cloud))
    })
}

/// Whether the policy gives `field`, one of the fields only some kinds have
/// (any other name is never given).
fn given(raw: &RawPolicy, field: &str) -> bool {
    match field {
        "volumes" => raw.volumes.is_some(),
        "force" => raw.force.is_some(),
        "keep_snapshot" => raw.keep_snapshot.is_some(),
        "share_to" => raw.share_to.is_some(),
        "full_backup_every" => raw.full_backup_every.is_some(),
        "servers" => raw.servers.is_some(),
        "provider_id" => raw.provider_id.is_some(),
        "drill" => raw.drill.is_some(),
        "select" => raw.select.is_some(),
        "vault" => raw.vault.is_some(),
        "add_to_vault" => raw.add_to_vault.is_some(),
        _ => false,
    }
}

/// Reports each of `fields` the policy gives, at its key, with `message`.
fn refuse_given(
    raw: &RawPolicy,
    fields: &[&str],
    message: impl Fn(&str) -> String,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    for field in fields.iter().filter(|field| given(raw, field)) {
        report.key(&path.key(field), message(field));
    }
}

/// What one list of IDs (`volumes`, `servers`) is called, where it is in a
/// raw policy and how an ID is checked.
struct IdList {
    field: &'static str,
    noun: &'static str,
    missing: &'static str,
    check: fn(&str) -> Result<String, String>,
    raw: fn(&RawPolicy) -> Option<&[String]>,
}

/// `volumes`: what the volume kinds make a job for each of.
const VOLUMES: IdList = IdList {
    field: "volumes",
    noun: "volume",
    missing: "missing required field `volumes` (a list of volume IDs) or `select` (volumes by their labels)",
    check: checks::volume_id,
    raw: |raw| raw.volumes.as_deref(),
};

/// Non-empty, each a valid ID, none twice.
fn id_list(
    raw: &RawPolicy,
    path: &FieldPath,
    list: &IdList,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let Some(raw) = (list.raw)(raw) else {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load::tests::token_cloud;
    use crate::config::{parse, SnapshotWork, Work};

    fn policy(lines: &str) -> String {
        format!(
            "{}  - name: db\n    cloud: prod\n    schedule: \"0 0 2 * * *\"\n{lines}",
            token_cloud()
        )
    }

    #[test]
    fn a_snapshot_policy_has_its_volumes_and_force_only() {
        let text = policy(
            "    kind: snapshot\n    force: true\n    volumes: [C5834FE1-577F-462E-9BF3-1B158E1DDE9C]\n",
        );
        let config = parse(&text, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.policies[0].work,
            Work::Snapshot(SnapshotWork {
                volumes: vec!["c5834fe1-577f-462e-9bf3-1b158e1dde9c".into()],
                force: true,
            })
        );
    }

    #[test]
    fn an_unknown_kind_still_has_its_volumes_checked() {
        let text = policy("    kind: bakup\n    volumes: [abc]\n");
        let errors = parse(&text, Path::new("p.yaml")).unwrap_err();
        let fields: Vec<&str> = errors.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["policies[0].kind", "policies[0].volumes[0]"]);
    }
}
