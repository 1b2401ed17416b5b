//! The last step of a restore: `verify`, the operator's check of the
//! restored volume. It runs without a shell, in a process group of its own
//! with a clean environment (`PATH`, `HOME`, `LANG`, `TZ` and the
//! `VBS_*` variables below), so that no credential of the agent reaches
//! it; at its timeout the whole group is killed.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::super::machine::Outcome;
use super::JobRunner;
use crate::config::{RestoreInto, RestoreWork};
use crate::store::{JobStatus, JobUpdate, StoreError};

/// How much of the command's output is kept (its end).
const OUTPUT_KEPT: usize = 2048;
/// How long the output is still read after the command ended or was killed
/// (a descendant that left the group may hold it open).
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// The environment passed on from the agent's.
const PASSED_ON: [&str; 4] = ["PATH", "HOME", "LANG", "TZ"];

/// What `verify` said.
enum Verdict {
    Passed,
    Failed(String),
    TimedOut,
}

/// Runs `verify` (when configured) and records the verdict: a drill that
/// passes is `verified`, a restore on request `succeeded`.
pub(super) async fn verify(runner: &mut JobRunner, work: &RestoreWork) -> Result<(), StoreError> {
    let good = match work.into {
        RestoreInto::Scratch => JobStatus::Verified,
        _ => JobStatus::Succeeded,
    };
    let Some(verify) = &work.verify else {
        runner.store.set_verify(runner.job.id, "none", None)?;
        let update = JobUpdate {
            status: Some(good),
            ..Default::default()
        };
        return runner.advance(Outcome::Ready, update, "restored (no verify command)");
    };
    let volume = runner
        .store
        .restore_columns(runner.job.id)?
        .volume_id
        .unwrap_or_default();
    let env = [
        ("VBS_RESTORE_VOLUME_ID", volume),
        (
            "VBS_BACKUP_ID",
            runner.job.backup_id.clone().unwrap_or_default(),
        ),
        ("VBS_SOURCE_VOLUME_ID", runner.job.target.clone()),
        ("VBS_POLICY", runner.policy.name.clone()),
        ("VBS_CLOUD", runner.job.cloud.clone()),
        ("VBS_JOB_ID", runner.job.id.to_string()),
    ];
    let left = runner
        .deadline
        .saturating_duration_since(tokio::time::Instant::now());
    let timeout = verify.timeout.min(left);
    let (verdict, output) = run(&verify.command, &env, timeout).await;
    let detail = |status: &str| match output.trim() {
        "" => status.to_string(),
        out => format!("{status}; output ends: {out}"),
    };
    match verdict {
        Verdict::Passed => {
            runner
                .store
                .set_verify(runner.job.id, "passed", Some(&detail("exit 0")))?;
            let update = JobUpdate {
                status: Some(good),
                ..Default::default()
            };
            runner.advance(Outcome::Ready, update, "verify passed")
        }
        Verdict::Failed(status) => {
            let detail = detail(&status);
            runner
                .store
                .set_verify(runner.job.id, "failed", Some(&detail))?;
            let reason = format!("verify failed: {detail}");
            runner.fail_then_cleanup(JobStatus::Failed, &reason, false)
        }
        Verdict::TimedOut => {
            let took = humantime::format_duration(timeout);
            let detail = detail(&format!("killed after {took}"));
            runner
                .store
                .set_verify(runner.job.id, "timed_out", Some(&detail))?;
            let reason = format!("verify did not finish within {took} and was killed");
            runner.fail_then_cleanup(JobStatus::Failed, &reason, false)
        }
    }
}

/// Runs `argv` with `env` for at most `timeout`: the verdict and the end of
/// what it printed (stdout and stderr together).
async fn run(argv: &[String], env: &[(&str, String)], timeout: Duration) -> (Verdict, String) {
    let Some((program, args)) = argv.split_first() else {
        return (Verdict::Failed("no program to run".into()), String::new());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(
            PASSED_ON
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return (
                Verdict::Failed(format!("cannot start {program}: {e}")),
                String::new(),
            )
        }
    };
    let out = tokio::spawn(tail(child.stdout.take()));
    let err = tokio::spawn(tail(child.stderr.take()));
    let verdict = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Verdict::Passed,
        Ok(Ok(status)) => Verdict::Failed(match status.code() {
            Some(code) => format!("exit {code}"),
            None => format!("ended by {status}"),
        }),
        Ok(Err(e)) => Verdict::Failed(format!("waiting for {program} failed: {e}")),
        Err(_) => {
            kill_group(child.id());
            let _ = child.wait().await;
            Verdict::TimedOut
        }
    };
    let mut output = String::new();
    for reader in [out, err] {
        if let Ok(Ok(text)) = tokio::time::timeout(OUTPUT_GRACE, reader).await {
            output.push_str(&text);
        }
    }
    let start = output.len().saturating_sub(OUTPUT_KEPT);
    let start = (start..output.len())
        .find(|i| output.is_char_boundary(*i))
        .unwrap_or(output.len());
    (
        verdict,
        crate::bounded::message(&output[start..]).into_owned(),
    )
}

/// The end of what `stream` gives, at most [`OUTPUT_KEPT`] bytes of it.
async fn tail(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_KEPT {
            kept.drain(..kept.len() - OUTPUT_KEPT);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Kills the process group the command leads, descendants included.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group and
    // touches no memory of this process.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}
