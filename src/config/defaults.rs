//! The `defaults` section and the blocks a policy may override field by
//! field (`poll`, `retries`), with the built-in values behind them.

use std::time::Duration;

use chrono_tz::Tz;

use super::bounds::{MAX_COMPLETION_TIMEOUT, MAX_JITTER, MAX_POLL_WAIT, MAX_RETRY_DELAY};
use super::checks;
use super::model::{Misfire, PollSettings, Retries};
use super::path::FieldPath;
use super::raw::{RawDefaults, RawPoll, RawRetries};
use super::report::Report;
use super::validate::{ok_or_report, optional};

/// `defaults.completion_timeout` when not given.
pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// `poll` when not given.
pub const DEFAULT_POLL: PollSettings = PollSettings {
    initial: Duration::from_secs(2),
    max: Duration::from_secs(60),
    factor: 1.5,
};

/// `retries` when not given: one attempt.
pub const DEFAULT_RETRIES: Retries = Retries {
    max_attempts: 1,
    delay: Duration::from_secs(300),
};

/// `defaults` with built-in values filled in. A bad value is reported and
/// replaced by the built-in, so policies are still checked.
pub(super) struct Defaults {
    pub(super) timezone: Tz,
    pub(super) completion_timeout: Duration,
    pub(super) poll: PollParts,
    pub(super) jitter: Duration,
    pub(super) misfire: Misfire,
    pub(super) retries: RetryParts,
    pub(super) notify: Option<super::model::Notify>,
}

/// The fields a policy may set over `defaults`, as given in one of them:
/// `Some(None)` when not given, `None` when refused (reported).
pub(super) struct Overrides {
    pub(super) timezone: Option<Option<Tz>>,
    pub(super) completion_timeout: Option<Option<Duration>>,
    pub(super) jitter: Option<Option<Duration>>,
    pub(super) misfire: Option<Option<Misfire>>,
}

impl Overrides {
    /// Checks `timezone`, `completion_timeout`, `jitter` and `misfire`, in
    /// that order, of the block at `path`.
    pub(super) fn parse(
        [timezone, completion_timeout, jitter, misfire]: [&Option<String>; 4],
        path: &FieldPath,
        report: &mut Report<'_>,
    ) -> Self {
        Overrides {
            timezone: optional(timezone, path, "timezone", checks::timezone, report),
            completion_timeout: optional(
                completion_timeout,
                path,
                "completion_timeout",
                |d| checks::duration(d, MAX_COMPLETION_TIMEOUT),
                report,
            ),
            jitter: optional(
                jitter,
                path,
                "jitter",
                |d| checks::duration_or_zero(d, MAX_JITTER),
                report,
            ),
            misfire: optional(misfire, path, "misfire", checks::misfire, report),
        }
    }
}

/// `defaults`, each field checked and filled in.
pub(super) fn defaults(raw: &RawDefaults, report: &mut Report<'_>) -> Defaults {
    let path = FieldPath::root().key("defaults");
    let own = Overrides::parse(
        [
            &raw.timezone,
            &raw.completion_timeout,
            &raw.jitter,
            &raw.misfire,
        ],
        &path,
        report,
    );
    let poll_path = path.key("poll");
    let poll = PollParts::parse(raw.poll.as_ref(), &poll_path, report);
    poll.check_order(&PollParts::default(), &poll_path, report);
    let retries = RetryParts::parse(raw.retries.as_ref(), &path.key("retries"), report);
    let notify = raw
        .notify
        .as_ref()
        .and_then(|n| super::notify::notify(n, &path.key("notify"), report));
    Defaults {
        timezone: own.timezone.flatten().unwrap_or(Tz::UTC),
        completion_timeout: own
            .completion_timeout
            .flatten()
            .unwrap_or(DEFAULT_COMPLETION_TIMEOUT),
        poll,
        jitter: own.jitter.flatten().unwrap_or(Duration::ZERO),
        misfire: own.misfire.flatten().unwrap_or(Misfire::RunOnce),
        retries,
        notify,
    }
}

/// The fields of one `retries` block that are set and valid.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RetryParts {
    max_attempts: Option<u32>,
    delay: Option<Duration>,
}

impl RetryParts {
    pub(super) fn parse(
        raw: Option<&RawRetries>,
        path: &FieldPath,
        report: &mut Report<'_>,
    ) -> Self {
        let Some(raw) = raw else {
            return Self::default();
        };
        let max_attempts = raw.max_attempts.filter(|n| {
            let ok = (1..=10).contains(n);
            if !ok {
                report.value(
                    &path.key("max_attempts"),
                    format!("max_attempts {n} is out of range; use 1 (no retry) to 10"),
                );
            }
            ok
        });
        let delay = raw.delay.as_deref().and_then(|d| {
            ok_or_report(
                checks::duration(d, MAX_RETRY_DELAY),
                &path.key("delay"),
                report,
            )
        });
        Self {
            max_attempts,
            delay,
        }
    }

    /// These parts over `base`, then over the built-in defaults.
    pub(super) fn resolve(&self, base: &RetryParts) -> Retries {
        Retries {
            max_attempts: self
                .max_attempts
                .or(base.max_attempts)
                .unwrap_or(DEFAULT_RETRIES.max_attempts),
            delay: self.delay.or(base.delay).unwrap_or(DEFAULT_RETRIES.delay),
        }
    }
}

/// The fields of one `poll` block that are set and valid.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PollParts {
    initial: Option<Duration>,
    max: Option<Duration>,
    factor: Option<f64>,
    /// False when a field was given but invalid (already reported).
    valid: bool,
}

impl PollParts {
    pub(super) fn parse(raw: Option<&RawPoll>, path: &FieldPath, report: &mut Report<'_>) -> Self {
        let mut parts = PollParts {
            valid: true,
            ..PollParts::default()
        };
        let Some(raw) = raw else { return parts };
        let mut duration = |text: &Option<String>, field: &str, valid: &mut bool| {
            let text = text.as_deref()?;
            let parsed = ok_or_report(
                checks::duration(text, MAX_POLL_WAIT),
                &path.key(field),
                report,
            );
            *valid &= parsed.is_some();
            parsed
        };
        parts.initial = duration(&raw.initial, "initial", &mut parts.valid);
        parts.max = duration(&raw.max, "max", &mut parts.valid);
        if let Some(factor) = raw.factor {
            if (1.0..=10.0).contains(&factor) {
                parts.factor = Some(factor);
            } else {
                parts.valid = false;
                report.value(
                    &path.key("factor"),
                    format!("poll factor {factor} is out of range; use a number from 1.0 (fixed interval) to 10.0"),
                );
            }
        }
        parts
    }

    /// These parts over `base`, then over the built-in defaults.
    pub(super) fn resolve(&self, base: &PollParts) -> PollSettings {
        PollSettings {
            initial: self
                .initial
                .or(base.initial)
                .unwrap_or(DEFAULT_POLL.initial),
            max: self.max.or(base.max).unwrap_or(DEFAULT_POLL.max),
            factor: self.factor.or(base.factor).unwrap_or(DEFAULT_POLL.factor),
        }
    }

    /// Reports `initial` > `max` when this block set one of them (otherwise
    /// the block it inherits from is at fault and reports it itself).
    pub(super) fn check_order(&self, base: &PollParts, path: &FieldPath, report: &mut Report<'_>) {
        if !self.valid || !base.valid || (self.initial.is_none() && self.max.is_none()) {
            return;
        }
        let poll = self.resolve(base);
        if poll.initial > poll.max {
            let field = if self.initial.is_some() {
                "initial"
            } else {
                "max"
            };
            report.value(
                &path.key(field),
                format!(
                    "poll.initial ({}) is longer than poll.max ({}); initial must not exceed max",
                    humantime::format_duration(poll.initial),
                    humantime::format_duration(poll.max),
                ),
            );
        }
    }
}
