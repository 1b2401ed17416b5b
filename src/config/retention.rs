//! A policy's `retention` block.

use super::bounds::{MAX_KEEP_COUNT, MAX_RETENTION_AGE};
use super::checks;
use super::model::Retention;
use super::path::FieldPath;
use super::raw::RawRetention;
use super::report::Report;
use super::validate::{ok_or_report, optional};

/// Retention rules; a block that keeps nothing is refused rather than
/// read as "delete everything".
pub(super) fn retention(
    raw: &RawRetention,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Retention> {
    let max_age = match raw.max_age.as_deref() {
        None => Some(None),
        Some(d) => ok_or_report(
            checks::duration(d, MAX_RETENTION_AGE),
            &path.key("max_age"),
            report,
        )
        .map(Some),
    }?;
    let mut counts_valid = true;
    let mut count = |value: Option<u32>, field: &str| match value {
        Some(n) if n > MAX_KEEP_COUNT => {
            report.value(
                &path.key(field),
                format!("{field} {n} is out of range; use 0 to {MAX_KEEP_COUNT}"),
            );
            counts_valid = false;
            0
        }
        other => other.unwrap_or(0),
    };
    let rules = Retention {
        keep_last: count(raw.keep_last, "keep_last"),
        max_age,
        keep_hourly: count(raw.keep_hourly, "keep_hourly"),
        keep_daily: count(raw.keep_daily, "keep_daily"),
        keep_weekly: count(raw.keep_weekly, "keep_weekly"),
        keep_monthly: count(raw.keep_monthly, "keep_monthly"),
        keep_yearly: count(raw.keep_yearly, "keep_yearly"),
        gone_keep_newest_for: None,
    };
    if !counts_valid {
        return None;
    }
    if rules == Retention::default() {
        report.value(
            path,
            "retention keeps nothing; set at least one of keep_last, max_age, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly (or leave retention out to never delete)",
        );
        return None;
    }
    let gone_keep_newest_for = optional(
        &raw.gone_keep_newest_for,
        path,
        "gone_keep_newest_for",
        |d| checks::duration(d, MAX_RETENTION_AGE),
        report,
    )?;
    Some(Retention {
        gone_keep_newest_for,
        ..rules
    })
}
