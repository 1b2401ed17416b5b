use std::collections::HashSet;

use chrono::{TimeDelta, TimeZone};
use chrono_tz::Europe::Berlin;
use proptest::prelude::*;

use super::*;

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

fn backup(id: &str, created: DateTime<Utc>) -> Candidate {
    Candidate {
        id: id.into(),
        name: Some(format!("db-{id}")),
        status: "available".into(),
        created_at: Some(created),
        has_dependents: false,
    }
}

fn run(
    rules: Retention,
    candidates: &[Candidate],
    ours: &[&str],
    now: DateTime<Utc>,
) -> Vec<(String, Verdict)> {
    let ours: HashSet<String> = ours.iter().map(|s| s.to_string()).collect();
    let ctx = Context {
        rules: &rules,
        tz: Berlin,
        ours: &ours,
        name_prefix: "db-",
        now,
        release_newest: false,
    };
    plan(&ctx, candidates)
        .into_iter()
        .map(|d| (d.id, d.verdict))
        .collect()
}

#[test]
fn keep_last_keeps_the_newest_and_deletes_the_rest() {
    let all: Vec<_> = (1..=5).map(|d| backup(&format!("b{d}"), t(d, 1))).collect();
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    let got = run(
        Retention {
            keep_last: 2,
            ..Default::default()
        },
        &all,
        &ids,
        t(10, 0),
    );
    let deleted: Vec<&str> = got
        .iter()
        .filter(|(_, v)| *v == Verdict::Delete)
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(deleted, ["b1", "b2", "b3"]);
}

#[test]
fn daily_buckets_follow_the_policy_time_zone() {
    // 23:30 UTC on the 20th is already the 21st in Berlin.
    let late = Utc.with_ymd_and_hms(2026, 11, 20, 23, 30, 0).unwrap();
    let all = vec![
        backup("a", t(20, 10)),
        backup("b", late),
        backup("c", t(21, 10)),
    ];
    let got = run(
        Retention {
            keep_daily: 2,
            ..Default::default()
        },
        &all,
        &["a", "b", "c"],
        t(22, 0),
    );
    // Berlin days: 20th {a}, 21st {b, c}: c is newest of the 21st, a of the 20th.
    assert_eq!(
        got,
        [
            ("a".into(), Verdict::Keep),
            ("b".into(), Verdict::Delete),
            ("c".into(), Verdict::Keep)
        ]
    );
}

#[test]
fn max_age_keeps_young_backups() {
    let all = vec![
        backup("old", t(1, 0)),
        backup("young", t(9, 0)),
        backup("newest", t(9, 12)),
    ];
    let rules = Retention {
        max_age: Some(std::time::Duration::from_secs(3 * 86400)),
        ..Default::default()
    };
    let got = run(rules, &all, &["old", "young", "newest"], t(10, 0));
    assert_eq!(got[0], ("old".into(), Verdict::Delete));
    assert_eq!(got[1], ("young".into(), Verdict::Keep));
}

#[test]
fn hard_rules_hold_whatever_the_rules_say() {
    let mut parent = backup("parent", t(1, 0));
    parent.has_dependents = true;
    let mut busy = backup("busy", t(2, 0));
    busy.status = "creating".into();
    let foreign = backup("foreign", t(3, 0));
    let mut misnamed = backup("misnamed", t(4, 0));
    misnamed.name = Some("other-policy-x".into());
    let mut failed = backup("failed", t(5, 0));
    failed.status = "error".into();
    let newest = backup("newest", t(6, 0));
    let all = vec![parent, busy, foreign, misnamed, failed, newest];
    let rules = Retention {
        keep_hourly: 1,
        ..Default::default()
    };
    let ours = ["parent", "busy", "misnamed", "failed", "newest"];
    let got = run(rules, &all, &ours, t(10, 0));
    assert_eq!(
        got,
        [
            ("parent".into(), Verdict::BlockedByDependants),
            ("busy".into(), Verdict::Keep),
            ("foreign".into(), Verdict::Keep),
            ("misnamed".into(), Verdict::Keep),
            ("failed".into(), Verdict::Delete),
            ("newest".into(), Verdict::Keep),
        ]
    );
}

#[test]
fn a_gone_targets_newest_is_kept_until_released() {
    let rules = Retention {
        max_age: Some(std::time::Duration::from_secs(7 * 86_400)),
        ..Retention::default()
    };
    let old = [backup("a", t(1, 0)), backup("b", t(2, 0))];
    let ours: HashSet<String> = ["a".to_string(), "b".to_string()].into();
    let verdicts = |release_newest| {
        let ctx = Context {
            rules: &rules,
            tz: Berlin,
            ours: &ours,
            name_prefix: "db-",
            now: t(30, 0),
            release_newest,
        };
        plan(&ctx, &old)
            .into_iter()
            .map(|d| (d.id, d.verdict))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        verdicts(false),
        [("a".into(), Verdict::Delete), ("b".into(), Verdict::Keep)]
    );
    assert_eq!(
        verdicts(true),
        [("a".into(), Verdict::Delete), ("b".into(), Verdict::Delete)]
    );
}

fn arb_candidates() -> impl Strategy<Value = Vec<(u8, i64, bool, bool, bool)>> {
    // (status, age in hours, ours, named right, has dependants)
    prop::collection::vec(
        (
            0u8..6,
            0i64..24 * 800,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        0..40,
    )
}

fn arb_rules() -> impl Strategy<Value = Retention> {
    (
        0u32..5,
        prop::option::of(1u64..2000),
        0u32..4,
        0u32..8,
        0u32..5,
        0u32..13,
        0u32..3,
    )
        .prop_map(
            |(
                keep_last,
                age_h,
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
            )| Retention {
                keep_last,
                max_age: age_h.map(|h| std::time::Duration::from_secs(h * 3600)),
                keep_hourly,
                keep_daily,
                keep_weekly,
                keep_monthly,
                keep_yearly,
                gone_keep_newest_for: None,
            },
        )
}

proptest! {
    #[test]
    fn no_rule_set_breaks_a_hard_rule(raw in arb_candidates(), rules in arb_rules(), now_h in 0i64..24 * 900) {
        const STATUSES: [&str; 6] = ["available", "available", "error", "creating", "deleting", "restoring"];
        let now = t(1, 0) + TimeDelta::hours(now_h);
        let candidates: Vec<Candidate> = raw.iter().enumerate().map(|(i, (s, age, _, named, deps))| Candidate {
            id: format!("id{i}"),
            name: Some(if *named { format!("db-{i}") } else { format!("x-{i}") }),
            status: STATUSES[*s as usize].into(),
            created_at: Some(now - TimeDelta::hours(*age)),
            has_dependents: *deps,
        }).collect();
        let ours: HashSet<String> = raw.iter().enumerate().filter(|(_, r)| r.2).map(|(i, _)| format!("id{i}")).collect();
        let ctx = Context { rules: &rules, tz: Berlin, ours: &ours, name_prefix: "db-", now, release_newest: false };
        let decisions = plan(&ctx, &candidates);

        prop_assert_eq!(decisions.len(), candidates.len());
        let newest = candidates.iter().filter(|c| c.status == "available").max_by(|a, b| a.created_at.cmp(&b.created_at).then(b.id.cmp(&a.id)));
        for (c, d) in candidates.iter().zip(&decisions) {
            prop_assert_eq!(&c.id, &d.id);
            prop_assert!(!d.reason.is_empty());
            if d.verdict != Verdict::Delete { continue; }
            prop_assert!(ours.contains(&c.id), "deleted a backup not in the history: {:?}", c);
            prop_assert!(c.name.as_deref().unwrap_or("").starts_with("db-"), "deleted a foreign name: {:?}", c);
            prop_assert!(!c.has_dependents, "deleted a parent: {:?}", c);
            prop_assert!(c.status == "available" || c.status == "error", "deleted a busy backup: {:?}", c);
            prop_assert!(newest.map(|n| n.id != c.id).unwrap_or(true), "deleted the newest available: {:?}", c);
            let newer_of_mine = candidates.iter().any(|o| o.status == "available" && ours.contains(&o.id) && o.name.as_deref().unwrap_or("").starts_with("db-") && (o.created_at, std::cmp::Reverse(&o.id)) > (c.created_at, std::cmp::Reverse(&c.id)));
            prop_assert!(c.status != "available" || newer_of_mine, "deleted this policy's newest available: {:?}", c);
        }
        // keep_last N keeps at least the N newest of this policy's available backups.
        let mut mine: Vec<&Candidate> = candidates.iter().filter(|c| c.status == "available" && ours.contains(&c.id) && c.name.as_deref().unwrap_or("").starts_with("db-")).collect();
        mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        for c in mine.iter().take(rules.keep_last as usize) {
            let d = decisions.iter().find(|d| d.id == c.id).unwrap();
            prop_assert_ne!(d.verdict, Verdict::Delete);
        }
    }
}
