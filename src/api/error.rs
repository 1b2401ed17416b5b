//! Failure classification and the errors of HTTP calls. The engine decides
//! what to do from the class alone: retry now, retry later, give up, or
//! report a quota problem; the constructors below name the situations, so
//! each sets the class and whether a retry is safe the same way everywhere.

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

    /// A call that could not be made at all (no HTTP client, a bad URL, no
    /// endpoint): nothing reached the server, and trying again cannot help.
    pub fn unsendable(call: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            call: call.into(),
            status: None,
            code: None,
            message: message.into(),
            not_processed: true,
            retry_after: None,
        }
    }

    /// Credentials that could not be read: no request was sent.
    pub fn unreadable_credentials(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Auth,
            ..Self::unsendable("read credentials", message)
        }
    }

    /// A call the server took but that never came to a good end (a delete
    /// that did not finish): permanent, and the server may have acted.
    pub fn failed(call: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            not_processed: false,
            ..Self::unsendable(call, message)
        }
    }

    /// An attempt the job's deadline ended: retryable in principle, but the
    /// request may have reached the server.
    pub fn cut_off(call: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            call: call.into(),
            status: None,
            code: None,
            message: "no answer before the job's completion deadline; given up".into(),
            not_processed: false,
            retry_after: None,
        }
    }

    /// A call that got no answer: retryable, except an untrusted TLS
    /// certificate, which no retry can fix.
    pub fn transport(call: &str, e: &reqwest::Error) -> Self {
        let chain = error_chain(e);
        if chain.to_ascii_lowercase().contains("certificate") {
            return Self::unsendable(
                call,
                format!(
                    "TLS certificate not trusted: {chain}; if the cloud uses a private CA, \
                     give its PEM file as `cacert` on the cloud (or OS_CACERT / clouds.yaml cacert)"
                ),
            );
        }
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "connection failed"
        };
        Self {
            class: ErrorClass::Retryable,
            call: call.to_string(),
            status: None,
            code: None,
            message: format!("{what}: {chain}"),
            // Only a refused connection proves the request never arrived; a
            // reset mid-request is reported as a request error and may have
            // been acted on.
            not_processed: e.is_connect(),
            retry_after: None,
        }
    }

    /// An answer that is not the documented shape, or too large to read.
    pub fn bad_answer(call: &str, status: u16, message: impl Into<String>) -> Self {
        Self::answered(call, ErrorClass::BadAnswer, Some(status), message.into())
    }

    /// A 3xx answer from `who`. Redirects are never followed: the token, the
    /// signature or the password would go along to wherever they point.
    pub fn redirected(call: &str, who: &str, fix: &str, resp: &reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let target = crate::http::redirect_target(resp).map_or_else(
            || "an address it did not name".to_string(),
            |u| u.to_string(),
        );
        Self::answered(
            call,
            ErrorClass::Permanent,
            Some(status),
            format!(
                "{who} answered {status} with a redirect to {target}; the agent does not follow \
                 redirects (credentials would travel with them): fix {fix} to the final address"
            ),
        )
    }

    /// An HTTP error answer, classified by its status and vendor code.
    pub fn status(call: &str, status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let fault = FaultBody::parse(body);
        let class = classify(status, &fault);
        let detail = fault
            .describe()
            .unwrap_or_else(|| "no error details in the answer".into());
        Self {
            class,
            call: call.to_string(),
            status: Some(status),
            code: fault.code.clone(),
            message: format!("HTTP {status}: {detail}"),
            not_processed: status == 429,
            retry_after,
        }
    }

    /// A failed call of the given class that may have reached the server;
    /// the message is bounded, as it may quote the answer.
    pub fn answered(call: &str, class: ErrorClass, status: Option<u16>, message: String) -> Self {
        Self {
            class,
            call: call.to_string(),
            status,
            code: None,
            message: crate::bounded::message_owned(message),
            not_processed: false,
            retry_after: None,
        }
    }
}

/// The server's `Retry-After`, in seconds (the only form clouds send).
pub(super) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The error and its sources on one line (reqwest hides the cause otherwise).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Whether a CBR code (`BackupService.6125`, or a bare `6125` as in a
/// checkpoint's `skipped_resources`) means "busy, try later".
pub fn is_busy_cbr_code(code: &str) -> bool {
    let full = if code.contains('.') {
        code.to_string()
    } else {
        format!("BackupService.{code}")
    };
    BUSY_CODES.contains(&full.as_str())
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
    // CBR: resources being backed up (answered with a 500), a restore
    // running, a backup running, and the vendor's other "try later" codes.
    "BackupService.0002",
    "BackupService.2002",
    "BackupService.2010",
    "BackupService.6125",
    "BackupService.6130",
    "BackupService.6134",
    "BackupService.6203",
    "BackupService.7302",
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
    // CBR: the vault is full, all vaults are full, too many vaults, the
    // snapshot quota.
    "BackupService.6114",
    "BackupService.6142",
    "BackupService.6133",
    "BackupService.8300",
];

/// Codes that say the request can never succeed as made, whatever the HTTP
/// status: CBR answers "one disk cannot sit in several vaults" with a 500,
/// which would otherwise be retried.
const PERMANENT_CODES: &[&str] = &["BackupService.6137"];

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
    if PERMANENT_CODES.contains(&code) {
        return ErrorClass::Permanent;
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
    fn cinder_unknown_availability_zone_is_permanent() {
        // Cinder 29's answer to a volume create in a zone it has no volumes in.
        let f = fault(Some("400"), "Availability zone 'no-such-az' is invalid.");
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
    fn cbr_codes_are_classified() {
        let cbr = |status: u16, code: &str| {
            let body = format!(r#"{{"error_code": "BackupService.{code}", "error_msg": "x"}}"#);
            classify(status, &FaultBody::parse(&body))
        };
        // A busy resource, answered with a 500 or a 400.
        assert_eq!(cbr(500, "0002"), ErrorClass::Busy);
        for code in ["2002", "2010", "6125", "6130", "6134", "6203", "7302"] {
            assert_eq!(cbr(400, code), ErrorClass::Busy, "{code}");
        }
        for code in ["6114", "6142", "6133", "8300"] {
            assert_eq!(cbr(400, code), ErrorClass::Quota, "{code}");
        }
        // Fix the configuration: a disk already in a vault, a wrong type.
        for code in ["6102", "6103", "7001", "7002", "7106", "9900"] {
            assert_eq!(cbr(400, code), ErrorClass::Permanent, "{code}");
        }
        assert_eq!(cbr(500, "6137"), ErrorClass::Permanent);
        // An unknown error of the service stays a 500: retried.
        assert_eq!(cbr(500, "9910"), ErrorClass::Retryable);
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
