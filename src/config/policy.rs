//! One entry under `policies`: the fields every kind has, checked here in
//! one place; what only one kind has is checked in `kind/`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::bounds::MAX_RPO;
use super::checks;
use super::defaults::{Defaults, Overrides, PollParts, RetryParts};
use super::kind;
use super::model::Policy;
use super::path::FieldPath;
use super::raw::RawPolicy;
use super::report::Report;
use super::retention::retention;
use super::validate::{ok_or_report, optional, required};
use crate::naming;
use crate::schedule::Schedule;

/// One entry under `policies`, checked, over `defaults`; `None` when
/// anything in it was reported.
pub(super) fn policy(
    raw: &RawPolicy,
    path: &FieldPath,
    defaults: &Defaults,
    clouds: &[&str],
    report: &mut Report<'_>,
) -> Option<Policy> {
    let name = required(&raw.name, path, "name", "letters, digits, _ and -", report)
        .and_then(|n| ok_or_report(checks::policy_name(n), &path.key("name"), report).map(|()| n));

    let kind = required(&raw.kind, path, "kind", "backup", report)
        .and_then(|text| kind::parse(text, path, report));
    kind::refuse(kind, raw, path, report);

    let cloud = required(
        &raw.cloud,
        path,
        "cloud",
        "the name of a cloud under `clouds`",
        report,
    )
    .filter(|cloud| {
        // With no clouds section there is nothing to check against, and that
        // is reported on its own.
        let defined = clouds.is_empty() || clouds.contains(cloud);
        if !defined {
            report.value(
                &path.key("cloud"),
                format!(
                    "cloud \"{cloud}\" is not defined (defined: {})",
                    clouds.join(", ")
                ),
            );
        }
        defined
    });

    let schedule = schedule(&raw.schedule, path, "0 30 1 * * *", report);

    let own = Overrides::parse(
        [
            &raw.timezone,
            &raw.completion_timeout,
            &raw.jitter,
            &raw.misfire,
        ],
        path,
        report,
    );
    let timezone = own.timezone.map(|tz| tz.unwrap_or(defaults.timezone));

    let targets = kind::targets(kind, raw, path, report);
    let select = kind::selector(kind, raw, path, report);
    if let (Some(listed), Some(Some(selector))) = (&targets, &select) {
        super::select::check_overlap(listed, selector, path, report);
    }
    if let (Some(name), Some(_)) = (name, &targets) {
        // Every ID is as long as this one, so one name stands for all.
        let any_id = "00000000-0000-0000-0000-000000000000";
        let name_of_backup = naming::resource_name(name, DateTime::<Utc>::UNIX_EPOCH, any_id);
        if let Err(message) = naming::check_vendor_name(&name_of_backup) {
            report.value(
                &path.key("name"),
                format!("backup names made from this policy name are refused by VBS: {message}"),
            );
        }
    }

    let description = optional(
        &raw.description,
        path,
        "description",
        |d| checks::description(d).map(|()| d.to_string()),
        report,
    );
    let completion_timeout = own
        .completion_timeout
        .map(|d| d.unwrap_or(defaults.completion_timeout));

    let poll_path = path.key("poll");
    let poll = PollParts::parse(raw.poll.as_ref(), &poll_path, report);
    poll.check_order(&defaults.poll, &poll_path, report);

    let jitter = own.jitter.map(|j| j.unwrap_or(defaults.jitter));
    if let (Some(jitter), Some(schedule), Some(tz)) = (jitter, &schedule, timezone) {
        check_jitter(jitter, schedule, tz, raw.jitter.is_some(), path, report);
    }
    let misfire = own.misfire.map(|m| m.unwrap_or(defaults.misfire));
    let retries = RetryParts::parse(raw.retries.as_ref(), &path.key("retries"), report)
        .resolve(&defaults.retries);
    let retention = match &raw.retention {
        None => Some(None),
        Some(r) => retention(r, &path.key("retention"), report).map(Some),
    };
    let work = kind::work(kind, raw, targets, path, report);

    let notify = match &raw.notify {
        None => Some(defaults.notify.clone()),
        Some(n) => super::notify::notify(n, &path.key("notify"), report).map(Some),
    };

    let rpo = rpo(&raw.rpo, path, report);

    Some(Policy {
        name: name?.to_string(),
        cloud: cloud?.to_string(),
        schedule: schedule?,
        timezone: timezone?,
        description: description?,
        completion_timeout: completion_timeout?,
        poll: poll.resolve(&defaults.poll),
        jitter: jitter?,
        misfire: misfire?,
        retries,
        retention: retention?,
        notify: notify?,
        rpo: rpo?,
        select: select?,
        work: work?,
    })
}

/// The `rpo` under `path`, at most [`MAX_RPO`].
pub(super) fn rpo(
    raw: &Option<String>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Option<Duration>> {
    optional(raw, path, "rpo", |d| checks::duration(d, MAX_RPO), report)
}

/// The `schedule` under `path`: required, a 6-field cron expression (for
/// which `example` is one).
pub(super) fn schedule(
    raw: &Option<String>,
    path: &FieldPath,
    example: &str,
    report: &mut Report<'_>,
) -> Option<Schedule> {
    let what = format!("a 6-field cron expression such as \"{example}\"");
    required(raw, path, "schedule", &what, report).and_then(|s| {
        ok_or_report(
            Schedule::parse(s).map_err(|e| e.to_string()),
            &path.key("schedule"),
            report,
        )
    })
}

/// Jitter must be shorter than the gap between two slots, or one slot's
/// jobs would start after the next slot fired.
fn check_jitter(
    jitter: Duration,
    schedule: &Schedule,
    tz: Tz,
    set_by_policy: bool,
    path: &FieldPath,
    report: &mut Report<'_>,
) {
    if jitter.is_zero() {
        return;
    }
    let slots = schedule.upcoming(Utc::now(), tz, 50);
    let Some(gap) = slots
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .min()
    else {
        return;
    };
    if jitter < gap {
        return;
    }
    let (field, origin) = if set_by_policy {
        (path.key("jitter"), "")
    } else {
        (
            FieldPath::root().key("defaults").key("jitter"),
            " (from defaults.jitter)",
        )
    };
    report.value(
        &field,
        format!(
            "jitter {}{origin} is not shorter than the interval of {} between slots of {}; jobs of one slot would run into the next",
            humantime::format_duration(jitter),
            humantime::format_duration(gap),
            path,
        ),
    );
}
