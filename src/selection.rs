//! Which volumes or servers a policy covers: those it lists by ID, and
//! those its selector matches, less the excluded and opted-out ones. Pure:
//! the cloud's answers go in, a verdict with its reason comes out. Runs,
//! `vbs-agent targets` and `vbs-agent coverage` all judge by these rules,
//! so what coverage calls protected is what the next run backs up.

use std::collections::BTreeMap;

use crate::api::types::Found;
use crate::config::{LabelMatch, Policy, Selector};

/// Why `listed` targets are in scope, as the history records it.
pub const LISTED: &str = "listed";

/// What a policy makes of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Covered; the reason is `listed` or the rule that matched.
    In(String),
    /// The selector matches it, but the policy excludes it by ID.
    Excluded,
    /// The selector matches it, but it carries an opt-out label.
    OptedOut(String),
}

/// How a policy judges `found`; `None` when the policy has nothing to do
/// with it. `labels_are` names the labels (`metadata` or `tags`) in the
/// reason.
pub fn judge(
    policy: &Policy,
    opt_out: &BTreeMap<String, String>,
    labels_are: &str,
    found: &Found,
) -> Option<Verdict> {
    if policy.targets().contains(&found.id) {
        return Some(Verdict::In(LISTED.to_string()));
    }
    let selector = policy.select.as_ref()?;
    if !matches(selector, &found.labels) {
        return None;
    }
    if selector.exclude.contains(&found.id) {
        return Some(Verdict::Excluded);
    }
    if let Some(label) = opted_out(opt_out, &found.labels) {
        return Some(Verdict::OptedOut(label));
    }
    Some(Verdict::In(format!("{labels_are} {selector}")))
}

/// Whether every condition of `selector` holds for `labels`.
pub fn matches(selector: &Selector, labels: &BTreeMap<String, String>) -> bool {
    selector.all_of.iter().all(|m| m.holds(labels))
}

/// The opt-out label `labels` carry, as `key=value`, if any.
pub fn opted_out(
    opt_out: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> Option<String> {
    opt_out
        .iter()
        .find(|(key, value)| labels.get(*key) == Some(*value))
        .map(|(key, value)| format!("{key}={value}"))
}

/// The pairs a server-side metadata filter can ask for: the conditions
/// with a value. Cinder matches values exactly and has no "any value", so
/// the others are checked on the answer.
pub fn exact_pairs(selector: &Selector) -> BTreeMap<String, String> {
    selector
        .all_of
        .iter()
        .filter_map(|m: &LabelMatch| Some((m.key.clone(), m.value.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SnapshotWork, Work};

    fn policy(listed: &[&str], select: Option<Selector>) -> Policy {
        let text = format!(
            "{}  - name: db\n    kind: snapshot\n    cloud: prod\n    schedule: \"0 0 2 * * *\"\n    volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]\n",
            crate::config::test_cloud()
        );
        let mut policy = crate::config::parse(&text, std::path::Path::new("p.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .policies
            .remove(0);
        policy.work = Work::Snapshot(SnapshotWork {
            volumes: listed.iter().map(|s| s.to_string()).collect(),
            force: false,
        });
        policy.select = select;
        policy
    }

    fn found(id: &str, labels: &[(&str, &str)]) -> Found {
        Found {
            id: id.into(),
            name: None,
            status: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attached_to: Vec::new(),
        }
    }

    fn nightly(exclude: &[&str]) -> Selector {
        Selector {
            all_of: vec![
                LabelMatch {
                    key: "backup".into(),
                    value: Some("nightly".into()),
                },
                LabelMatch {
                    key: "tier".into(),
                    value: None,
                },
            ],
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn opt_out() -> BTreeMap<String, String> {
        BTreeMap::from([("backup".to_string(), "none".to_string())])
    }

    #[test]
    fn every_condition_must_hold_and_star_takes_any_value() {
        let p = policy(&[], Some(nightly(&[])));
        let judge =
            |labels: &[(&str, &str)]| judge(&p, &opt_out(), "metadata", &found("v", labels));
        assert_eq!(
            judge(&[("backup", "nightly"), ("tier", "gold")]),
            Some(Verdict::In("metadata backup=nightly,tier=*".into()))
        );
        assert_eq!(judge(&[("backup", "nightly")]), None, "tier missing");
        assert_eq!(judge(&[("backup", "weekly"), ("tier", "gold")]), None);
        assert_eq!(judge(&[]), None);
    }

    #[test]
    fn exclusions_and_opt_outs_are_told_apart_and_listing_wins() {
        let p = policy(&["listed-one"], Some(nightly(&["excluded-one"])));
        let labels = [("backup", "nightly"), ("tier", "x")];
        let oo = opt_out();
        assert_eq!(
            judge(&p, &oo, "tags", &found("excluded-one", &labels)),
            Some(Verdict::Excluded)
        );
        // `backup: none` cannot also be `backup: nightly`; a second opt-out key can.
        let oo2 = BTreeMap::from([("keep".to_string(), "off".to_string())]);
        let labelled = [("backup", "nightly"), ("tier", "x"), ("keep", "off")];
        assert_eq!(
            judge(&p, &oo2, "tags", &found("other", &labelled)),
            Some(Verdict::OptedOut("keep=off".into()))
        );
        assert_eq!(
            judge(&p, &oo, "tags", &found("listed-one", &[("backup", "none")])),
            Some(Verdict::In(LISTED.into()))
        );
        assert_eq!(
            opted_out(&oo, &[("backup".to_string(), "none".to_string())].into()),
            Some("backup=none".into())
        );
    }

    #[test]
    fn only_conditions_with_a_value_go_to_the_server() {
        assert_eq!(
            exact_pairs(&nightly(&[])),
            BTreeMap::from([("backup".to_string(), "nightly".to_string())])
        );
    }
}
