//! `notify:` blocks: checks and defaults.

use std::time::Duration;

use url::Url;

use super::bounds::MAX_NOTIFY_TIMEOUT;
use super::checks;
use super::model::{Notify, NotifyOn};
use super::path::FieldPath;
use super::raw::RawNotify;
use super::report::Report;

/// `notify.on` when not given: what needs an operator. A failed drill is
/// a backup that may not restore, as urgent as a failed backup.
pub const DEFAULT_NOTIFY_ON: [NotifyOn; 3] = [
    NotifyOn::Failure,
    NotifyOn::RpoBreach,
    NotifyOn::DrillFailure,
];
/// `notify.timeout` when not given.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks one `notify` block at `path`; `None` when something was reported.
pub(crate) fn notify(raw: &RawNotify, path: &FieldPath, report: &mut Report<'_>) -> Option<Notify> {
    let mut valid = true;
    if raw.webhook.is_none() && raw.command.is_none() {
        report.value(
            path,
            "notify needs `webhook` (a URL to POST to) or `command` (a program to run), or both",
        );
        valid = false;
    }
    let webhook = match raw.webhook.as_deref() {
        None => None,
        Some(text) => match webhook(text) {
            Ok(url) => Some(url),
            Err(message) => {
                report.value(&path.key("webhook"), message);
                valid = false;
                None
            }
        },
    };
    let command = match raw.command.as_deref() {
        None => None,
        Some(argv) => {
            let checked = command(argv, &path.key("command"), report);
            valid &= checked.is_some();
            checked
        }
    };
    let on = match raw.on.as_deref() {
        None => DEFAULT_NOTIFY_ON.to_vec(),
        Some(list) => {
            let mut on = Vec::with_capacity(list.len());
            for (i, text) in list.iter().enumerate() {
                match NotifyOn::ALL.iter().find(|o| o.as_str() == text) {
                    Some(o) if on.contains(o) => {
                        report.value(
                            &path.key("on").index(i),
                            format!("`{text}` is listed twice; list each outcome once"),
                        );
                        valid = false;
                    }
                    Some(o) => on.push(*o),
                    None => {
                        let known: Vec<&str> = NotifyOn::ALL.iter().map(|o| o.as_str()).collect();
                        report.value(
                            &path.key("on").index(i),
                            format!("unknown outcome \"{text}\" (known: {})", known.join(", ")),
                        );
                        valid = false;
                    }
                }
            }
            on
        }
    };
    let timeout = match raw.timeout.as_deref() {
        None => DEFAULT_NOTIFY_TIMEOUT,
        Some(text) => match checks::duration(text, MAX_NOTIFY_TIMEOUT) {
            Ok(d) => d,
            Err(message) => {
                report.value(&path.key("timeout"), message);
                valid = false;
                DEFAULT_NOTIFY_TIMEOUT
            }
        },
    };
    valid.then_some(Notify {
        webhook,
        command,
        on,
        timeout,
    })
}

/// An absolute `http`/`https` URL with a host and no user info.
fn webhook(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("webhook \"{text}\" is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "webhook must be an http:// or https:// URL with a host, such as https://hooks.example.com/vbs-agent (got scheme `{}`)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("webhook must not carry user:password; put a token in the path or query if the receiver needs one".into());
    }
    Ok(url)
}

/// A program and its arguments (run without a shell): not empty, and the
/// program named.
pub(super) fn command(
    argv: &[String],
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    match argv {
        [] => {
            report.value(
                path,
                "command is empty; give the program and its arguments as a list, e.g. [/usr/local/bin/page-oncall, --team, storage]",
            );
            None
        }
        [program, ..] if program.trim().is_empty() => {
            report.value(&path.index(0), "the program name is empty");
            None
        }
        argv => Some(argv.to_vec()),
    }
}
