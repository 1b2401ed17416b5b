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
#[error("invalid cron expression `{expr}`: {reason} (expected 6 fields: sec min hour day-of-month month day-of-week, e.g. \"0 30 1 * * *\")")]
pub struct ScheduleError {
    /// The expression as written.
    pub expr: String,
    /// What the parser objected to.
    pub reason: String,
}

impl Schedule {
    /// Parses a six-field cron expression.
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let fields = expr.split_whitespace().count();
        if fields != 6 {
            return Err(ScheduleError {
                expr: expr.to_string(),
                reason: format!("it has {fields} fields"),
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
