//! Failure classification. The engine decides what to do from the class
//! alone: retry now, retry later, give up, or report a quota problem.

use std::time::Duration;

use super::fault::FaultBody;

/// What kind of failure an API call met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: connection or read errors, timeouts, 5xx, 429. Retry with backoff.
    Retryable,
    /// The request is wrong or refused for good (400, 403, 404, 409 not busy).
    Permanent,
    /// The volume, snapshot or backup is in a transitional state; retry later.
    Busy,
    /// A quota is exhausted; retrying will not help until someone frees space.
    Quota,
    /// Authentication failed even after one re-authentication.
    Auth,
    /// The server answered with something that is not the documented shape.
    BadAnswer,
}

impl ErrorClass {
    /// The name stored in the `events.class` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Retryable => "retryable",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Busy => "busy",
            ErrorClass::Quota => "quota",
            ErrorClass::Auth => "auth",
            ErrorClass::BadAnswer => "bad_answer",
        }
    }
}

/// A failed API call, with everything an operator needs to act on it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call}: {message}")]
pub struct ApiError {
    pub class: ErrorClass,
    /// `METHOD path` of the call.
    pub call: String,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Vendor error code (`VolumeBackup.0012`, `400`, …), when given.
    pub code: Option<String>,
    pub message: String,
    /// Whether the server certainly did not act on the request (connection
    /// refused, throttled), so even a create call may simply be sent again.
    pub not_processed: bool,
    /// Server-requested wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// The server answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

/// VBS/EVS/CSBS codes meaning "the resource is busy, try later".
const BUSY_CODES: &[&str] = &[
    "VolumeBackup.0012",
    "VolumeBackup.0013",
    "VolumeBackup.0206",
    "EVS.2130",
    "CSBS.2003",
    "CSBS.2004",
    "CSBS.1001",
    "CSBS.6030",
    // The server's state forbids a backup now (resizing, rebooting…).
    "CSBS.6005",
];

/// Codes meaning "a quota is exhausted".
const QUOTA_CODES: &[&str] = &[
    "VolumeBackup.0040",
    "VolumeBackup.0077",
    "VolumeBackup.0078",
    "VolumeBackup.0079",
    "VolumeBackup.0080",
    "VolumeBackup.0081",
    "VolumeBackup.0084",
    "EVS.5413",
    "CSBS.9006",
];

/// Cinder statuses a resource passes through on its way somewhere else.
const TRANSITIONAL: &[&str] = &[
    "creating",
    "backing-up",
    "deleting",
    "restoring",
    "attaching",
    "detaching",
    "extending",
    "downloading",
    "uploading",
    "retyping",
    "reserved",
    "maintenance",
    "awaiting-transfer",
    "rollbacking",
];

/// Classifies an HTTP error answer.
pub fn classify(status: u16, fault: &FaultBody) -> ErrorClass {
    let code = fault.code.as_deref().unwrap_or_default();
    let message = fault.message.as_deref().unwrap_or_default();
    if BUSY_CODES.contains(&code) || (matches!(status, 400 | 409) && names_transitional(message)) {
        return ErrorClass::Busy;
    }
    if status == 413 || QUOTA_CODES.contains(&code) || mentions_quota(message) {
        return ErrorClass::Quota;
    }
    match status {
        401 => ErrorClass::Auth,
        408 | 429 => ErrorClass::Retryable,
        500..=599 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// Cinder reports busy resources as 400 "… current status is "backing-up"".
fn names_transitional(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    let Some(pos) = lower.find("status is") else {
        return false;
    };
    let rest = &lower[pos..];
    TRANSITIONAL.iter().any(|s| {
        rest.contains(&format!("\"{s}\""))
            || rest.contains(&format!(": {s}"))
            || rest.contains(&format!(" {s}."))
    })
}

fn mentions_quota(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("quota") || (lower.contains("maximum number of") && lower.contains("exceeded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(code: Option<&str>, message: &str) -> FaultBody {
        FaultBody {
            code: code.map(str::to_string),
            message: Some(message.to_string()),
        }
    }

    #[test]
    fn cinder_busy_volume_is_busy_not_permanent() {
        let f = fault(Some("400"), "Invalid volume: Volume to be backed up must be available or in-use, but the current status is \"backing-up\".");
        assert_eq!(classify(400, &f), ErrorClass::Busy);
    }

    #[test]
    fn attached_volume_without_force_is_permanent() {
        let f = fault(
            None,
            "Invalid volume: Volume abc status must be available, but current status is: in-use.",
        );
        assert_eq!(classify(400, &f), ErrorClass::Permanent);
    }

    #[test]
    fn vendor_codes_decide_over_status() {
        assert_eq!(
            classify(400, &fault(Some("VolumeBackup.0206"), "x")),
            ErrorClass::Busy
        );
        assert_eq!(
            classify(500, &fault(Some("CSBS.6030"), "x")),
            ErrorClass::Busy
        );
        assert_eq!(
            classify(400, &fault(Some("VolumeBackup.0080"), "x")),
            ErrorClass::Quota
        );
        assert_eq!(
            classify(
                413,
                &fault(None, "Maximum number of backups allowed (10) exceeded")
            ),
            ErrorClass::Quota
        );
    }

    #[test]
    fn csbs_codes_are_classified() {
        for (status, code) in [
            (400, "CSBS.2003"),
            (400, "CSBS.2004"),
            (500, "CSBS.1001"),
            (500, "CSBS.6030"),
            (400, "CSBS.6005"),
        ] {
            assert_eq!(
                classify(status, &fault(Some(code), "x")),
                ErrorClass::Busy,
                "{code}"
            );
        }
        assert_eq!(
            classify(400, &fault(Some("CSBS.9006"), "x")),
            ErrorClass::Quota
        );
        // An unknown CSBS code keeps the HTTP status's class.
        assert_eq!(
            classify(400, &fault(Some("CSBS.1000"), "x")),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn transport_like_statuses_are_retryable() {
        let f = FaultBody::default();
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify(s, &f), ErrorClass::Retryable, "{s}");
        }
        assert_eq!(classify(401, &f), ErrorClass::Auth);
        for s in [400, 403, 404, 405, 409] {
            assert_eq!(classify(s, &f), ErrorClass::Permanent, "{s}");
        }
    }
}
