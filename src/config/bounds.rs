//! Upper bounds on everything the policy file can make large. Without them
//! a typo (`completion_timeout: 99999999y`) passes as a job that never times
//! out, a wait that never ends or a notifier that holds `trigger` forever,
//! and a hostile file (an alias bomb) can exhaust memory when it is read.
//! The tables of docs/policy-file.md state each bound.

use std::time::Duration;

const MINUTE: u64 = 60;
const DAY: u64 = 24 * 60 * MINUTE;
/// humantime's year: 365.25 days.
const YEAR: u64 = 31_557_600;

/// `completion_timeout`: a job still running after a week is stuck.
pub const MAX_COMPLETION_TIMEOUT: Duration = Duration::from_secs(7 * DAY);
/// `poll.initial` and `poll.max`.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(DAY);
/// `jitter` (it must also be shorter than the schedule's interval).
pub const MAX_JITTER: Duration = Duration::from_secs(DAY);
/// `retries.delay`.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(DAY);
/// `rpo`: a schedule firing less than once a year has no useful RPO.
pub const MAX_RPO: Duration = Duration::from_secs(366 * DAY);
/// `retention.max_age`.
pub const MAX_RETENTION_AGE: Duration = Duration::from_secs(100 * YEAR);
/// `notify.timeout`: `trigger` and a stopping daemon wait this long for a
/// delivery in flight at most.
pub const MAX_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10 * MINUTE);
/// `coverage_every`: a coverage snapshot less often than daily cannot
/// answer "which volumes were unprotected on date D".
pub const MAX_COVERAGE_EVERY: Duration = Duration::from_secs(DAY);
/// A leader lease's shortest and longest: renewals every third of it must
/// fit round trips to the database; a longer one leaves schedules unserved
/// longer after a leader dies.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(6);
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(600);
/// Conditions in one `select.match`: the vendor's tag filters take 10 keys.
pub const MAX_SELECT_KEYS: usize = 10;
/// `retention.keep_*` counts.
pub const MAX_KEEP_COUNT: u32 = 100_000;
/// Requests per unit in a cloud's `rate_limit`.
pub const MAX_RATE_REQUESTS: u32 = 10_000;
/// The policy file (and a `clouds.yaml` or `secure.yaml`) in bytes.
pub const MAX_POLICY_FILE_BYTES: u64 = 16 << 20;
/// YAML nodes in one of those files once every alias is replaced by what
/// its anchor names: about 90,000 volumes in one file, and an alias bomb
/// refused after counting, before a single copy is made.
pub const MAX_YAML_NODES: usize = 100_000;

/// `d` in the largest unit that writes it exactly (`7d`, `10m`, `100y`), the
/// way the policy file and docs/policy-file.md write bounds.
pub(crate) fn spoken(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = [(YEAR, "y"), (DAY, "d"), (3600, "h"), (MINUTE, "m")]
        .into_iter()
        .find(|(size, _)| secs > 0 && secs.is_multiple_of(*size) && d.subsec_nanos() == 0);
    match unit {
        Some((size, name)) => format!("{}{name}", secs / size),
        None => humantime::format_duration(d).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_spoken_as_written() {
        assert_eq!(spoken(MAX_COMPLETION_TIMEOUT), "7d");
        assert_eq!(spoken(MAX_POLL_WAIT), "1d");
        assert_eq!(spoken(MAX_RPO), "366d");
        assert_eq!(spoken(MAX_RETENTION_AGE), "100y");
        assert_eq!(spoken(MAX_NOTIFY_TIMEOUT), "10m");
        assert_eq!(spoken(Duration::from_millis(1500)), "1s 500ms");
    }
}
