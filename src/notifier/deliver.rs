//! One delivery of one notification: a webhook POST or a command, bounded
//! by a timeout, logged and recorded whatever happens.

use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::AsyncWriteExt;
use url::Url;

use super::Payload;
use crate::http::{origin_of, redirect_target};
use crate::store::{Event, EventKind, Store};

/// Most bytes of a failing command's standard error kept in the message.
const STDERR_KEPT: usize = 300;

/// Where one notification goes.
pub(super) enum Delivery {
    Webhook {
        http: reqwest::Client,
        url: Url,
        timeout: Duration,
    },
    Command {
        argv: Vec<String>,
        /// Variables not passed on to the command (the clouds' secrets).
        hidden_env: Vec<String>,
        timeout: Duration,
    },
}

/// How a delivery ended.
struct Outcome {
    /// `ok`, `failed` or `timed_out`.
    class: &'static str,
    http_status: Option<u16>,
    message: String,
}

impl Delivery {
    /// Delivers `payload`, then logs and records how it went.
    pub(super) async fn run(self, payload: &Payload, store: Option<&Store>) {
        let started = Instant::now();
        let (method, target, outcome) = match &self {
            Delivery::Webhook { http, url, timeout } => (
                "POST",
                origin_of(url),
                webhook(http, url, *timeout, payload).await,
            ),
            Delivery::Command {
                argv,
                hidden_env,
                timeout,
            } => (
                "command",
                argv.first().cloned().unwrap_or_default(),
                command(argv, hidden_env, *timeout, payload).await,
            ),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let message = format!(
            "{} notification for {} to {target}: {}",
            payload.event, payload.target, outcome.message
        );
        if outcome.class == "ok" {
            tracing::info!(policy = %payload.policy, target = %payload.target, job_id = payload.job_id, "{message}");
        } else {
            tracing::warn!(policy = %payload.policy, target = %payload.target, job_id = payload.job_id, "{message}");
        }
        let Some(store) = store else { return };
        let event = Event {
            job_id: payload.job_id,
            method: Some(method),
            path: Some(&target),
            http_status: outcome.http_status,
            latency_ms: Some(latency_ms),
            class: Some(outcome.class),
            message: Some(&message),
            ..Default::default()
        };
        if let Err(e) = store.record_event(EventKind::Notification, &event, Utc::now()) {
            tracing::error!(error = %e, "cannot record a notification in the history");
        }
    }
}

async fn webhook(
    http: &reqwest::Client,
    url: &Url,
    timeout: Duration,
    payload: &Payload,
) -> Outcome {
    let sent = http
        .post(url.clone())
        .timeout(timeout)
        .json(payload)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => Outcome {
            class: "ok",
            http_status: Some(resp.status().as_u16()),
            message: format!("HTTP {}", resp.status().as_u16()),
        },
        Ok(resp) if resp.status().is_redirection() => redirected(&resp),
        Ok(resp) => Outcome {
            class: "failed",
            http_status: Some(resp.status().as_u16()),
            message: format!("refused with HTTP {}", resp.status().as_u16()),
        },
        Err(e) if e.is_timeout() => timed_out(timeout),
        Err(e) => Outcome {
            class: "failed",
            http_status: None,
            // Without the URL, which reqwest puts in its message.
            message: format!("not delivered: {}", e.without_url()),
        },
    }
}

/// A 3xx from the webhook: not followed, since the payload would go
/// along to the other address (and with a `Referer`, the webhook URL).
fn redirected(resp: &reqwest::Response) -> Outcome {
    let status = resp.status().as_u16();
    let target = redirect_target(resp)
        .map_or_else(|| "an address it did not name".into(), |u| origin_of(&u));
    Outcome {
        class: "failed",
        http_status: Some(status),
        message: format!(
            "not delivered: the webhook answered {status} with a redirect to {target}; \
             redirects are not followed: fix the webhook URL to the final address"
        ),
    }
}

fn timed_out(timeout: Duration) -> Outcome {
    Outcome {
        class: "timed_out",
        http_status: None,
        message: format!(
            "no answer within {}; given up",
            humantime::format_duration(timeout)
        ),
    }
}

async fn command(
    argv: &[String],
    hidden_env: &[String],
    timeout: Duration,
    payload: &Payload,
) -> Outcome {
    let failed = |message: String| Outcome {
        class: "failed",
        http_status: None,
        message,
    };
    let Some((program, args)) = argv.split_first() else {
        return failed("no program to run".into());
    };
    let body = match serde_json::to_vec(payload) {
        Ok(b) => b,
        Err(e) => return failed(format!("cannot encode the payload: {e}")),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(payload.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A timed-out command is dropped, and so killed.
        .kill_on_drop(true);
    for name in hidden_env {
        cmd.env_remove(name);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {program}: {e}")),
    };
    let run = async move {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is fine.
            let _ = stdin.write_all(&body).await;
        }
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => timed_out(timeout),
        Ok(Err(e)) => failed(format!("waiting for {program} failed: {e}")),
        Ok(Ok(out)) if out.status.success() => Outcome {
            class: "ok",
            http_status: None,
            message: "exit 0".into(),
        },
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stderr: String = stderr.trim().chars().take(STDERR_KEPT).collect();
            let status = out
                .status
                .code()
                .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
            failed(if stderr.is_empty() {
                status
            } else {
                format!("{status}: {stderr}")
            })
        }
    }
}
