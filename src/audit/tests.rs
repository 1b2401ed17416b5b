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
