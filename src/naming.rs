//! Deterministic resource names. The name of every snapshot and backup the
//! agent creates is derived from (policy, slot, volume), so that a restarted
//! agent can find what it already created by listing by name, and an
//! operator can tell from the console which policy and slot made it.

use chrono::{DateTime, Utc};

/// Longest policy name that keeps generated names within the vendor's 64
/// characters (leaving room for an attempt suffix).
pub const MAX_POLICY_NAME: usize = 32;

/// `{policy}-{slot as YYYYMMDDTHHMMSSZ}-{first 8 hex digits of the volume}`.
pub fn resource_name(policy: &str, slot: DateTime<Utc>, volume_id: &str) -> String {
    let short: String = volume_id.chars().filter(|c| *c != '-').take(8).collect();
    format!("{}-{short}", run_name(policy, slot))
}

/// `{policy}-{slot as YYYYMMDDTHHMMSSZ}`: the name of a run's one CBR
/// checkpoint, which the backups it makes carry, so that a restarted agent
/// finds them by name.
pub fn run_name(policy: &str, slot: DateTime<Utc>) -> String {
    format!("{policy}-{}", slot.format("%Y%m%dT%H%M%SZ"))
}

/// The name of attempt `attempt` (2, 3, …) of a job: the first attempt's
/// name with `-r{attempt}`, so every attempt is found by its own name.
pub fn attempt_name(resource_name: &str, attempt: u32) -> String {
    let base = match resource_name.rsplit_once("-r") {
        Some((base, n)) if n.parse::<u32>().is_ok() => base,
        _ => resource_name,
    };
    if attempt <= 1 {
        base.to_string()
    } else {
        format!("{base}-r{attempt}")
    }
}

/// Checks a name against the VBS rule: 1–64 characters of letters, digits,
/// `_` and `-`, not starting with `auto` (reserved for the console's own
/// automatic backups). Returns what is wrong.
pub fn check_vendor_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "`{name}` has {} characters; backup names must have 1 to 64",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "`{name}` contains `{c}`; backup names may only contain letters, digits, `_` and `-`"
        ));
    }
    if name.to_ascii_lowercase().starts_with("auto") {
        return Err(format!(
            "`{name}` starts with `auto`, which VBS reserves for automatic backups"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_deterministic_and_valid() {
        let slot = Utc.with_ymd_and_hms(2026, 11, 22, 1, 30, 0).unwrap();
        let name = resource_name("db-nightly", slot, "c5834fe1-577f-462e-9bf3-1b158e1dde9c");
        assert_eq!(name, "db-nightly-20261122T013000Z-c5834fe1");
        assert_eq!(
            name,
            resource_name("db-nightly", slot, "c5834fe1-577f-462e-9bf3-1b158e1dde9c")
        );
        check_vendor_name(&name).unwrap();
    }

    #[test]
    fn longest_policy_name_fits_the_vendor_limit() {
        let slot = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let policy = "p".repeat(MAX_POLICY_NAME);
        let name = resource_name(&policy, slot, "c5834fe1-577f-462e-9bf3-1b158e1dde9c");
        check_vendor_name(&format!("{name}-r9")).unwrap();
    }

    #[test]
    fn attempts_get_their_own_names() {
        let first = "db-20261122T013000Z-c5834fe1";
        assert_eq!(attempt_name(first, 2), "db-20261122T013000Z-c5834fe1-r2");
        assert_eq!(
            attempt_name(&attempt_name(first, 2), 3),
            "db-20261122T013000Z-c5834fe1-r3"
        );
        assert_eq!(attempt_name(first, 1), first);
    }

    #[test]
    fn vendor_rule_rejects_bad_names() {
        assert!(check_vendor_name("").is_err());
        assert!(check_vendor_name(&"a".repeat(65)).is_err());
        assert!(check_vendor_name("db.nightly").unwrap_err().contains('.'));
        assert!(check_vendor_name("autobk_x").unwrap_err().contains("auto"));
        assert!(check_vendor_name("AutoX").is_err());
    }
}
