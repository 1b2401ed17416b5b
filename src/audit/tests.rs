use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::{Europe::Berlin, Tz, UTC};

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn gap(expr: &str, tz: Tz, from: &str) -> Option<Duration> {
    longest_gap(&Schedule::parse(expr).unwrap(), tz, utc(from))
}

const HOUR: u64 = 3600;

#[test]
fn a_daily_schedule_has_a_day_between_fires_in_utc() {
    assert_eq!(
        gap("0 30 1 * * *", UTC, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(24 * HOUR))
    );
}

#[test]
fn a_fixed_time_of_day_has_a_25_hour_gap_when_clocks_go_back() {
    // Europe/Berlin: 2026-10-25 has 25 hours; 03:30 exists once on both
    // transition days, so the longest gap is the autumn one.
    assert_eq!(
        gap("0 30 3 * * *", Berlin, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(25 * HOUR))
    );
    // From midsummer, the window reaches autumn too.
    assert_eq!(
        gap("0 30 3 * * *", Berlin, "2026-07-01T00:00:00Z"),
        Some(Duration::from_secs(25 * HOUR))
    );
}

#[test]
fn a_time_skipped_in_spring_shortens_a_gap_and_autumn_stays_the_longest() {
    // 02:30 Berlin is skipped on 2026-03-29 and fires at 03:00 CEST; the
    // autumn day is still the longest gap.
    assert_eq!(
        gap("0 30 2 * * *", Berlin, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(25 * HOUR))
    );
}

#[test]
fn an_hourly_schedule_has_an_hour_between_fires_even_across_dst() {
    assert_eq!(
        gap("0 0 * * * *", Berlin, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(HOUR))
    );
}

#[test]
fn a_weekdays_only_schedule_has_the_weekend_as_its_gap() {
    assert_eq!(
        gap("0 0 2 * * 1-5", UTC, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(72 * HOUR))
    );
    // In Berlin the weekend clocks go back lasts an hour longer.
    assert_eq!(
        gap("0 0 2 * * 1-5", Berlin, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(73 * HOUR))
    );
}

#[test]
fn a_monthly_schedule_has_the_longest_month_as_its_gap() {
    assert_eq!(
        gap("0 0 3 1 * *", UTC, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs(31 * 24 * HOUR))
    );
    // 1 October (CEST) to 1 November (CET) is 31 days and an hour.
    assert_eq!(
        gap("0 0 3 1 * *", Berlin, "2026-01-01T00:00:00Z"),
        Some(Duration::from_secs((31 * 24 + 1) * HOUR))
    );
}

#[test]
fn a_yearly_schedule_sees_its_next_year_and_an_impossible_one_has_no_gap() {
    assert_eq!(
        gap("0 0 3 1 1 *", UTC, "2026-06-01T00:00:00Z"),
        Some(Duration::from_secs(365 * 24 * HOUR))
    );
    assert_eq!(gap("0 0 0 30 2 *", UTC, "2026-01-01T00:00:00Z"), None);
}

#[test]
fn time_bounds_take_durations_dates_and_rfc3339() {
    let now = utc("2026-11-22T12:00:00Z");
    assert_eq!(
        parse_time_bound("24h", now).unwrap(),
        utc("2026-11-21T12:00:00Z")
    );
    assert_eq!(
        parse_time_bound("7d", now).unwrap(),
        utc("2026-11-15T12:00:00Z")
    );
    assert_eq!(
        parse_time_bound("2026-11-20", now).unwrap(),
        utc("2026-11-20T00:00:00Z")
    );
    assert_eq!(
        parse_time_bound("2026-11-20T06:00:00+01:00", now).unwrap(),
        utc("2026-11-20T05:00:00Z")
    );
    let err = parse_time_bound("last tuesday", now).unwrap_err();
    assert!(err.contains("`last tuesday` is not a time"), "{err}");
}

const CLOUD: &str = "clouds:
  prod:
    project_id: 0123456789abcdef0123456789abcdef
    endpoints: { volume: https://evs.example.com, backup: https://vbs.example.com }
    auth: { type: token, token_env: VBS_TOKEN }
";
const V1: &str = "00000001-0000-4000-8000-000000000001";
const V2: &str = "00000002-0000-4000-8000-000000000002";
const V3: &str = "00000003-0000-4000-8000-000000000003";

/// A nightly backup policy of three volumes with a weekly drill (Sundays
/// 05:00 UTC, default 6 h timeout) and the given extra drill settings.
fn drilled(drill_extra: &str) -> Config {
    let text = format!(
        "defaults: {{ timezone: UTC }}\n{CLOUD}policies:
  - name: db
    kind: backup
    cloud: prod
    schedule: \"0 30 1 * * *\"
    volumes: [{V1}, {V2}, {V3}]
    drill:
      schedule: \"0 0 5 * * SUN\"
{drill_extra}"
    );
    crate::config::parse(&text, std::path::Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

const WEEK: u64 = 7 * 24 * HOUR;

#[test]
fn a_drill_without_a_sample_has_its_schedules_gap_as_restore_rpo() {
    let config = drilled("");
    let drill = config.policy("db.drill").unwrap();
    assert_eq!(runs_per_target(drill), 1);
    let rpo = effective_rpo(drill, utc("2026-11-01T00:00:00Z")).unwrap();
    assert_eq!(rpo.source, RpoSource::Schedule);
    assert_eq!(rpo.max_age, Duration::from_secs(WEEK + 6 * HOUR));
}

#[test]
fn a_sampled_drill_reaches_each_volume_only_every_few_runs_and_its_rpo_says_so() {
    // sample 1 of 3: each volume every 3rd drill, so three weeks (plus the
    // time the drill may take).
    let config = drilled("      sample: 1\n");
    let drill = config.policy("db.drill").unwrap();
    assert_eq!(runs_per_target(drill), 3);
    let rpo = effective_rpo(drill, utc("2026-11-01T00:00:00Z")).unwrap();
    assert_eq!(rpo.max_age, Duration::from_secs(3 * WEEK + 6 * HOUR));
    // sample 2 of 3: ⌈3/2⌉ = 2 drills.
    let config = drilled("      sample: 2\n      timeout: 1h\n");
    let drill = config.policy("db.drill").unwrap();
    assert_eq!(runs_per_target(drill), 2);
    let rpo = effective_rpo(drill, utc("2026-11-01T00:00:00Z")).unwrap();
    assert_eq!(rpo.max_age, Duration::from_secs(2 * WEEK + HOUR));
    // A configured rpo is taken as written; the backup policy is unaffected.
    let config = drilled("      sample: 1\n      rpo: 30d\n");
    let drill = config.policy("db.drill").unwrap();
    let rpo = effective_rpo(drill, utc("2026-11-01T00:00:00Z")).unwrap();
    assert_eq!(
        (rpo.max_age, rpo.source),
        (Duration::from_secs(30 * 24 * HOUR), RpoSource::Configured)
    );
    assert_eq!(runs_per_target(config.policy("db").unwrap()), 1);
}

#[test]
fn the_longest_span_over_several_runs_follows_the_real_fire_times() {
    let schedule = Schedule::parse("0 0 2 * * 1-5").unwrap();
    let from = utc("2026-01-01T00:00:00Z");
    // Two weekday runs: at worst Friday to Tuesday.
    assert_eq!(
        longest_span(&schedule, UTC, from, 2),
        Some(Duration::from_secs(96 * HOUR))
    );
    // Five runs: a week, whatever day it starts.
    assert_eq!(
        longest_span(&schedule, UTC, from, 5),
        Some(Duration::from_secs(7 * 24 * HOUR))
    );
    assert_eq!(
        longest_span(&schedule, UTC, from, 1),
        longest_gap(&schedule, UTC, from)
    );
}

#[test]
fn the_median_is_the_middle_value_or_the_mean_of_the_two() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[4.0]), Some(4.0));
    assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
    assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
}

/// How a crafted drill restore ends.
enum Drill {
    /// Restored in this many seconds and verified.
    Verified(i64),
    /// Restored in this many seconds, then `verify` failed.
    VerifyFailed(i64),
}

/// Records one drill run of `db.drill` at `slot`, each restore starting a
/// minute after the slot.
fn drill_run(store: &Store, slot: DateTime<Utc>, jobs: &[(&str, Drill)]) {
    use crate::store::{JobStatus, JobUpdate, NewRestore, NewRunJob, Phase, Trigger};
    let names: Vec<String> = jobs.iter().map(|(t, _)| format!("r-{t}-{slot}")).collect();
    let specs: Vec<NewRunJob<'_>> = jobs
        .iter()
        .zip(&names)
        .map(|((target, _), name)| NewRunJob {
            target,
            kind: "restore",
            cloud: "prod",
            resource_name: name,
            status: JobStatus::Running,
            blocked_by: None,
            note: None,
            restore: Some(NewRestore {
                requested_by: "schedule",
                into_volume: "scratch",
                volume_id: None,
                restore_api: "cinder",
                backup_id: Some("bk"),
            }),
            service: None,
        })
        .collect();
    let run = store
        .create_run("db.drill", slot, Trigger::Schedule, &specs, None, slot)
        .unwrap()
        .unwrap();
    let at = |s: i64| slot + chrono::Duration::seconds(s);
    for (job, (_, drill)) in store.jobs_of_run(run).unwrap().iter().zip(jobs) {
        let (took, status) = match drill {
            Drill::Verified(s) => (*s, JobStatus::Verified),
            Drill::VerifyFailed(s) => (*s, JobStatus::Failed),
        };
        store.restore_started(job.id, None, at(60)).unwrap();
        store.restore_finished(job.id, at(60 + took)).unwrap();
        let end = at(120 + took);
        let update = JobUpdate {
            phase: Some(Phase::Done),
            status: Some(status),
            finished_at: Some(end),
            fail_reason: (status == JobStatus::Failed).then_some("verify failed: exit status 1"),
            ..Default::default()
        };
        store.update_job(job.id, &update, end).unwrap();
    }
    store.settle_run(run, at(3600)).unwrap();
}

#[test]
fn report_shows_each_drilled_volumes_verified_restores_and_its_restore_rpo() {
    let (_dir, store) = crate::store::test_support::temp_store();
    // Sundays 1, 8 and 15 November: V1 verified every time; V2 verified
    // on the 1st, then its verify fails; V3 never drilled.
    drill_run(
        &store,
        utc("2026-11-01T05:00:00Z"),
        &[(V1, Drill::Verified(300)), (V2, Drill::Verified(200))],
    );
    drill_run(
        &store,
        utc("2026-11-08T05:00:00Z"),
        &[(V1, Drill::Verified(100)), (V2, Drill::VerifyFailed(50))],
    );
    drill_run(
        &store,
        utc("2026-11-15T05:00:00Z"),
        &[(V1, Drill::Verified(900)), (V2, Drill::VerifyFailed(60))],
    );
    let config = drilled("");
    let at = utc("2026-11-16T12:00:00Z");
    let report = compliance_report(&config, &store, utc("2026-11-01T00:00:00Z"), at).unwrap();
    let find = |policy: &str, target: &str| {
        report
            .targets
            .iter()
            .find(|t| t.policy == policy && t.target == target)
            .unwrap()
    };
    // The backup policy's rows have no restore columns.
    let backup = find("db", V1);
    assert_eq!((backup.restore_rpo, &backup.restores), (None, &None));

    let v1 = find("db.drill", V1);
    assert_eq!(v1.restore_rpo, Some(false));
    assert!(!v1.rpo_breached);
    let r1 = v1.restores.as_ref().unwrap();
    assert_eq!(r1.last_verified_at, Some(utc("2026-11-15T05:00:00Z")));
    assert_eq!(r1.last_verified_age_seconds, Some(31 * 3600));
    assert_eq!(r1.last_verified_backup_id.as_deref(), Some("bk"));
    assert_eq!(r1.verified, 3);
    assert_eq!(r1.median_restore_seconds, Some(300.0));
    assert_eq!(r1.worst_restore_seconds, Some(900.0));

    // V2's last verified restore is 15½ days old: beyond a week + 6 h.
    let v2 = find("db.drill", V2);
    assert_eq!((v2.restore_rpo, v2.rpo_breached), (Some(true), true));
    let r2 = v2.restores.as_ref().unwrap();
    assert_eq!(r2.last_verified_at, Some(utc("2026-11-01T05:00:00Z")));
    assert_eq!(r2.verified, 1);
    assert_eq!(
        (r2.median_restore_seconds, r2.worst_restore_seconds),
        (Some(200.0), Some(200.0)),
        "failed drills' restore times are not counted"
    );
    assert_eq!(v2.counts.failed, 2);

    // V3 was never drilled and has no slot yet: not yet due.
    let v3 = find("db.drill", V3);
    assert_eq!(v3.restore_rpo, Some(false));
    assert_eq!(v3.restores.as_ref().unwrap().verified, 0);

    // V2 counts once among the breaches, and as a restore breach.
    let restore_breaches: Vec<&str> = report
        .restore_breaches()
        .map(|t| t.target.as_str())
        .collect();
    assert_eq!(restore_breaches, [V2]);
    assert!(report.breaches().filter(|t| t.target == V2).count() == 1);

    // The metrics' gauge after a restart: each volume's newest verified
    // restore, by when it ended.
    let last: Vec<(String, DateTime<Utc>)> = store
        .last_verified_restores()
        .unwrap()
        .into_iter()
        .map(|l| (l.target, l.finished_at))
        .collect();
    assert_eq!(
        last,
        [
            (V1.to_string(), utc("2026-11-15T05:17:00Z")),
            (V2.to_string(), utc("2026-11-01T05:05:20Z")),
        ]
    );

    // A window that starts after the first drill: only the later restores.
    let later = compliance_report(&config, &store, utc("2026-11-08T00:00:00Z"), at).unwrap();
    let v1 = later
        .targets
        .iter()
        .find(|t| t.policy == "db.drill" && t.target == V1)
        .unwrap();
    let r1 = v1.restores.as_ref().unwrap();
    assert_eq!(
        (
            r1.verified,
            r1.median_restore_seconds,
            r1.worst_restore_seconds
        ),
        (2, Some(500.0), Some(900.0))
    );
}
