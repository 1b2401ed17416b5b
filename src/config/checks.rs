//! Checks of single values (durations, time zones, IDs, URLs, names). Each
//! returns the parsed value or a message saying what to write instead; the
//! caller knows which field it was and where.

use std::net::IpAddr;
use std::time::Duration;

use super::bounds::{spoken, MAX_RATE_REQUESTS};
use super::model::{Misfire, RateLimit};

use chrono_tz::Tz;
use url::{Host, Url};

use super::suggest;
use crate::naming::MAX_POLICY_NAME;

/// A positive duration such as `30s`, `15m`, `6h` or `7d`, at most `max`.
pub(crate) fn duration(text: &str, max: Duration) -> Result<Duration, String> {
    let hint = "use a number with a unit, such as 30s, 15m, 6h or 7d";
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err(format!("duration \"{text}\" is zero; {hint}")),
        Ok(d) => at_most(text, d, max),
        Err(e) => Err(format!("invalid duration \"{text}\": {e} ({hint})")),
    }
}

/// A duration that may be zero (`jitter: 0s`), at most `max`.
pub(crate) fn duration_or_zero(text: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "invalid duration \"{text}\": {e} (use a number with a unit, such as 0s, 30s or 15m)"
        )
    })?;
    at_most(text, d, max)
}

fn at_most(text: &str, d: Duration, max: Duration) -> Result<Duration, String> {
    if d > max {
        return Err(format!(
            "duration \"{text}\" is longer than the maximum of {} for this field",
            spoken(max)
        ));
    }
    Ok(d)
}

/// `N/s`, `N/m` or `N/h` with N ≥ 1.
pub(crate) fn rate_limit(text: &str) -> Result<RateLimit, String> {
    let bad = || format!("\"{text}\" is not a rate (write N/s, N/m or N/h, e.g. 10/s)");
    let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let requests: u32 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    if requests == 0 {
        return Err(format!("rate_limit \"{text}\" allows no request at all; use at least 1, or leave rate_limit out for no limit"));
    }
    if requests > MAX_RATE_REQUESTS {
        return Err(format!("rate_limit \"{text}\" is above the maximum of {MAX_RATE_REQUESTS} requests per unit; leave rate_limit out for no limit"));
    }
    Ok(RateLimit { requests, per })
}

/// `run_once` or `skip`.
pub(crate) fn misfire(text: &str) -> Result<Misfire, String> {
    match text {
        "run_once" => Ok(Misfire::RunOnce),
        "skip" => Ok(Misfire::Skip),
        other => Err(format!(
            "unknown misfire \"{other}\" (use run_once or skip)"
        )),
    }
}

/// An IANA time zone name such as `Europe/Berlin`.
pub(crate) fn timezone(text: &str) -> Result<Tz, String> {
    if let Ok(tz) = text.parse::<Tz>() {
        return Ok(tz);
    }
    // Name the closest real zone as the example, so a typo's fix is in the
    // message itself. Only Area/City names (and UTC) are offered: legacy
    // names such as CET or EST5EDT are what a user should move away from.
    let names = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| name.contains('/') || *name == "UTC");
    let example = suggest::closest(text, names).unwrap_or("Europe/Berlin");
    Err(format!(
        "unknown timezone \"{text}\" (use an IANA name such as {example})"
    ))
}

/// A volume ID: a hyphenated UUID, returned in lower case.
pub(crate) fn volume_id(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    match uuid::Uuid::try_parse(&lower) {
        Ok(id) if id.hyphenated().to_string() == lower => Ok(lower),
        _ => Err(format!(
            "\"{text}\" is not a volume ID (expected a UUID such as \
             c5834fe1-577f-462e-9bf3-1b158e1dde9c)"
        )),
    }
}

/// A project ID: 32 hex digits, returned in lower case.
pub(crate) fn project_id(text: &str) -> Result<String, String> {
    if text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "\"{text}\" is not a project ID (expected 32 hex digits such as \
             0123456789abcdef0123456789abcdef)"
        ))
    }
}

/// An environment variable name: letters, digits and `_`, not starting
/// with a digit.
pub(crate) fn env_var(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "\"{text}\" is not an environment variable name (letters, digits and _, \
             such as VBS_PASSWORD)"
        ))
    }
}

/// A catalog interface name.
pub(crate) fn interface(text: &str) -> Result<String, String> {
    let name = text.strip_suffix("URL").unwrap_or(text);
    match name {
        "public" | "internal" | "admin" => Ok(name.to_string()),
        _ => Err(format!(
            "unknown interface \"{text}\" (supported: public, internal, admin)"
        )),
    }
}

/// A systemd credential name: a file name under `$CREDENTIALS_DIRECTORY`.
pub(crate) fn credential_name(text: &str) -> Result<(), String> {
    if text.is_empty() || text == "." || text == ".." || text.contains('/') {
        Err(format!(
            "\"{text}\" is not a credential name; give the NAME of LoadCredential=NAME:PATH \
             (no `/`), such as password"
        ))
    } else {
        Ok(())
    }
}

/// What a URL is for, which decides what its path may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UrlRole<'a> {
    /// A service base URL: no API version or project segment.
    Endpoint { project_id: Option<&'a str> },
    /// The Keystone URL, which ends in `/v3`.
    Identity,
}

/// An `http(s)` URL. Plain `http` is refused for non-loopback hosts unless
/// `allow_http`, because the auth token (or password) would travel in clear.
pub(crate) fn url(text: &str, role: UrlRole<'_>, allow_http: bool) -> Result<Url, String> {
    let example = match role {
        UrlRole::Endpoint { .. } => "https://evs.eu-de.example.com",
        UrlRole::Identity => "https://iam.eu-de.example.com/v3",
    };
    let url = Url::parse(text).map_err(|e| {
        format!("\"{text}\" is not a URL ({e}); write it in full, such as {example}")
    })?;
    let Some(host) = url.host() else {
        return Err(format!(
            "\"{text}\" has no host; write it in full, such as {example}"
        ));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in URLs are not allowed; use the auth block".to_string());
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&host) => {}
        "http" => {
            return Err(format!(
                "plain http to {host} would send the auth token in clear; use https, or set \
                 `allow_http: true` on this cloud if the network path is trusted"
            ))
        }
        other => {
            return Err(format!(
                "unsupported scheme `{other}` in \"{text}\"; use https"
            ))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "\"{text}\" has a query or fragment; give the base URL, such as {example}"
        ));
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    match role {
        UrlRole::Endpoint { project_id } => {
            let versioned = segments.iter().any(|s| {
                matches!(*s, "v1" | "v2" | "v3")
                    || project_id.is_some_and(|p| s.eq_ignore_ascii_case(p))
            });
            if versioned {
                return Err(format!(
                    "\"{text}\" includes an API version or project ID; give the base URL, \
                     such as {example} (the agent adds /v2/{{project_id}})"
                ));
            }
        }
        UrlRole::Identity => {
            if segments.last() != Some(&"v3") {
                return Err(format!(
                    "\"{text}\" does not end in /v3; give the Keystone v3 URL, such as {example}"
                ));
            }
        }
    }
    Ok(url)
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Letters, digits, `_` and `-` only: the characters VBS allows in names.
fn first_bad_char(text: &str) -> Option<char> {
    text.chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
}

/// A policy name: it begins every backup name, so it follows the vendor's
/// naming rule and leaves room for the slot and volume suffix.
pub(crate) fn policy_name(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars == 0 {
        return Err("policy name is empty".to_string());
    }
    if let Some(c) = first_bad_char(text) {
        return Err(format!(
            "policy name \"{text}\" contains `{c}`; use only letters, digits, `_` and `-` \
             (it becomes part of backup names)"
        ));
    }
    if chars > MAX_POLICY_NAME {
        return Err(format!(
            "policy name \"{text}\" has {chars} characters; at most {MAX_POLICY_NAME} are \
             allowed (backup names are the policy name plus a 26-character suffix, and VBS \
             allows 64)"
        ));
    }
    if text.to_ascii_lowercase().starts_with("auto") {
        return Err(format!(
            "policy name \"{text}\" starts with `auto`, which VBS reserves for automatic \
             backups; choose another name"
        ));
    }
    Ok(())
}

/// A cloud name (a key under `clouds`): it appears in field paths, logs
/// and command lines, so it is kept to simple characters.
pub(crate) fn cloud_name(text: &str) -> Result<(), String> {
    if text.is_empty() || text.chars().count() > 64 {
        return Err(format!(
            "cloud name \"{text}\" must have 1 to 64 characters"
        ));
    }
    if let Some(c) = first_bad_char(text) {
        return Err(format!(
            "cloud name \"{text}\" contains `{c}`; use only letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// A backup description: the API takes at most 64 characters and refuses
/// `<` and `>`.
pub(crate) fn description(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if chars > 64 {
        return Err(format!(
            "description has {chars} characters; VBS allows at most 64"
        ));
    }
    if let Some(c) = text.chars().find(|c| matches!(c, '<' | '>')) {
        return Err(format!(
            "description contains `{c}`, which VBS refuses; remove it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let day = Duration::from_secs(86_400);
        assert_eq!(duration("6h", day), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(duration("1h 30m", day), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1d", day), Ok(day));
        assert!(duration("0s", day).unwrap_err().contains("is zero"));
        assert!(duration("6 hourz", day)
            .unwrap_err()
            .contains("invalid duration"));
        assert!(duration("3600", day).unwrap_err().contains("such as 30s"));
        assert_eq!(
            duration("99999999y", day).unwrap_err(),
            "duration \"99999999y\" is longer than the maximum of 1d for this field"
        );
        assert_eq!(duration_or_zero("0s", day), Ok(Duration::ZERO));
        assert!(duration_or_zero("25h", day)
            .unwrap_err()
            .contains("maximum of 1d"));
    }

    #[test]
    fn timezones() {
        assert_eq!(timezone("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(
            timezone("Europe/Berln").unwrap_err(),
            "unknown timezone \"Europe/Berln\" (use an IANA name such as Europe/Berlin)"
        );
        assert_eq!(
            timezone("europe/berlin").unwrap_err(),
            "unknown timezone \"europe/berlin\" (use an IANA name such as Europe/Berlin)"
        );
        assert_eq!(
            timezone("CEST").unwrap_err(),
            "unknown timezone \"CEST\" (use an IANA name such as Europe/Berlin)"
        );
        assert_eq!(
            timezone("Mars/Olympus").unwrap_err(),
            "unknown timezone \"Mars/Olympus\" (use an IANA name such as Europe/Berlin)"
        );
    }

    #[test]
    fn ids() {
        assert_eq!(
            volume_id("C5834FE1-577F-462E-9BF3-1B158E1DDE9C").unwrap(),
            "c5834fe1-577f-462e-9bf3-1b158e1dde9c"
        );
        assert!(volume_id("c5834fe1577f462e9bf31b158e1dde9c").is_err());
        assert!(volume_id("{c5834fe1-577f-462e-9bf3-1b158e1dde9c}").is_err());
        assert!(volume_id("abc").unwrap_err().contains("is not a volume ID"));
        assert_eq!(
            project_id("0123456789ABCDEF0123456789abcdef").unwrap(),
            "0123456789abcdef0123456789abcdef"
        );
        assert!(project_id("0123").is_err());
        assert!(env_var("VBS_TOKEN").is_ok());
        assert!(env_var("1X").is_err());
        assert!(env_var("").is_err());
    }

    #[test]
    fn urls() {
        let ep = UrlRole::Endpoint {
            project_id: Some("0123456789abcdef0123456789abcdef"),
        };
        assert!(url("https://evs.example.com", ep, false).is_ok());
        assert!(url("http://127.0.0.1:8080", ep, false).is_ok());
        assert!(url("http://localhost:8080", ep, false).is_ok());
        assert!(url("http://[::1]:8080", ep, false).is_ok());
        assert!(url("http://evs.example.com", ep, false)
            .unwrap_err()
            .contains("in clear"));
        assert!(url("http://evs.example.com", ep, true).is_ok());
        assert!(url("evs.example.com", ep, false)
            .unwrap_err()
            .contains("not a URL"));
        assert!(url(
            "https://evs.example.com/v2/0123456789abcdef0123456789abcdef",
            ep,
            false
        )
        .unwrap_err()
        .contains("base URL"));
        assert!(url("https://u:p@evs.example.com", ep, false)
            .unwrap_err()
            .starts_with("credentials"));
        assert!(url("ftp://evs.example.com", ep, false).is_err());
        assert!(url("https://iam.example.com/v3", UrlRole::Identity, false).is_ok());
        assert!(url("https://iam.example.com/v3/", UrlRole::Identity, false).is_ok());
        assert!(url("https://iam.example.com", UrlRole::Identity, false).is_err());
    }

    #[test]
    fn names_and_descriptions() {
        assert!(policy_name("db-nightly_1").is_ok());
        assert!(policy_name("").is_err());
        assert!(policy_name("db.nightly").unwrap_err().contains("`.`"));
        assert!(policy_name("AutoBackup").unwrap_err().contains("auto"));
        assert!(policy_name(&"p".repeat(33))
            .unwrap_err()
            .contains("33 characters"));
        assert!(policy_name(&"p".repeat(32)).is_ok());
        assert!(cloud_name("eu-de_prod").is_ok());
        assert!(cloud_name("eu.prod").is_err());
        assert!(description(&"d".repeat(64)).is_ok());
        assert!(description(&"d".repeat(65)).is_err());
        assert!(description("a <b>").unwrap_err().contains("`<`"));
    }
}
