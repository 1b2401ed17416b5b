//! When a policy's slots fall: a cron expression (with a seconds field)
//! evaluated in the policy's IANA time zone.
//!
//! DST semantics follow the Open Cron Pattern Specification as implemented by
//! `croner` (the same rules Vixie cron uses):
//! - a *fixed-time* schedule (single second, minute and hour) whose wall-clock
//!   time is skipped when clocks go forward fires once at the first valid
//!   instant after the gap (02:30 on a spring-forward night fires at 03:00);
//! - a fixed-time schedule whose wall-clock time occurs twice when clocks go
//!   back fires once, at the first occurrence;
//! - interval and wildcard schedules (`*/10`, `*` in the hour field, lists)
//!   follow real elapsed time: skipped wall-clock times do not exist, repeated
//!   ones fire on both passes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// A parsed cron schedule. Parsing is strict: exactly six fields
/// (`sec min hour day-of-month month day-of-week`).
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    expr: String,
}

/// Why a cron expression was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid cron expression `{expr}`: {reason}")]
pub struct ScheduleError {
    /// The expression as written.
    pub expr: String,
    /// What the parser objected to.
    pub reason: String,
}

/// The schedule of policies the scheduler never fires (restores on
/// request, which run when asked): once a year, at New Year.
const UNSCHEDULED: &str = "0 0 0 1 1 *";

impl Schedule {
    /// The schedule of a policy that only runs when asked (see
    /// [`UNSCHEDULED`]); the scheduler is never given one.
    pub fn unscheduled() -> Self {
        Self::parse(UNSCHEDULED)
            .unwrap_or_else(|e| panic!("the built-in schedule does not parse: {e}"))
    }

    /// Parses a six-field cron expression.
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let fields = expr.split_whitespace().count();
        if fields != 6 {
            return Err(ScheduleError {
                expr: expr.to_string(),
                reason: format!(
                    "it has {fields} fields; expected 6: sec min hour day-of-month month day-of-week (e.g. \"0 30 1 * * *\")"
                ),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            cron,
            expr: expr.to_string(),
        })
    }

    /// The expression as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The first slot strictly after `after`, evaluated in `tz`.
    /// `None` when the expression never matches again (e.g. 30 February).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` slots strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after;
        while out.len() < n {
            match self.next_after(cursor, tz) {
                Some(t) => {
                    out.push(t);
                    cursor = t;
                }
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Europe::Berlin;

    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Berlin
            .with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(expr: &str, after: DateTime<Utc>, n: usize) -> Vec<String> {
        Schedule::parse(expr)
            .unwrap()
            .upcoming(after, Berlin, n)
            .iter()
            .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
            .collect()
    }

    #[test]
    fn wall_clock_time_holds_in_winter_and_summer() {
        // 02:30 Berlin is 01:30 UTC in winter and 00:30 UTC in summer,
        // whichever side of the transition the schedule was made on.
        assert_eq!(
            next("0 30 2 * * *", berlin(2026, 1, 15, 12, 0), 1),
            ["2026-01-16T01:30Z"]
        );
        assert_eq!(
            next("0 30 2 * * *", berlin(2026, 7, 10, 12, 0), 1),
            ["2026-07-11T00:30Z"]
        );
    }

    #[test]
    fn a_time_skipped_in_spring_fires_once_when_clocks_jump() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        assert_eq!(
            next("0 30 2 * * *", berlin(2026, 3, 28, 12, 0), 3),
            [
                "2026-03-29T01:00Z",
                "2026-03-30T00:30Z",
                "2026-03-31T00:30Z"
            ]
        );
    }

    #[test]
    fn a_time_repeated_in_autumn_fires_once() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            next("0 30 2 * * *", berlin(2026, 10, 24, 12, 0), 3),
            [
                "2026-10-25T00:30Z",
                "2026-10-26T01:30Z",
                "2026-10-27T01:30Z"
            ]
        );
    }

    #[test]
    fn interval_schedules_follow_elapsed_time_across_both_transitions() {
        assert_eq!(
            next("0 */30 * * * *", berlin(2026, 3, 29, 1, 0), 4),
            [
                "2026-03-29T00:30Z",
                "2026-03-29T01:00Z",
                "2026-03-29T01:30Z",
                "2026-03-29T02:00Z"
            ]
        );
        assert_eq!(
            next("0 */30 * * * *", utc("2026-10-24T23:30:00Z"), 5),
            [
                "2026-10-25T00:00Z",
                "2026-10-25T00:30Z",
                "2026-10-25T01:00Z",
                "2026-10-25T01:30Z",
                "2026-10-25T02:00Z"
            ]
        );
    }

    #[test]
    fn only_six_field_expressions_are_accepted() {
        assert!(Schedule::parse("0 30 1 * * *").is_ok());
        let err = Schedule::parse("30 1 * * *").unwrap_err();
        assert!(err.to_string().contains("it has 5 fields"), "{err}");
        assert!(Schedule::parse("0 61 1 * * *").is_err());
        assert!(Schedule::parse("0 30 1 * * * 2027").is_err());
    }

    #[test]
    fn an_impossible_date_never_fires() {
        assert_eq!(
            next("0 0 0 30 2 *", utc("2026-01-01T00:00:00Z"), 1),
            Vec::<String>::new()
        );
    }
}
