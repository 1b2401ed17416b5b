//! What `vbs-agent trigger` shows while its jobs run: on a terminal, one
//! status line per target redrawn in place (indicatif); otherwise one plain
//! line per phase change, change of the cloud's status, warning and end.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::escape;
use crate::config::Policy;
use crate::engine::{JobEvent, JobListener};
use crate::store::{JobRecord, JobStatus};

/// How often a terminal's spinners move.
const TICK: Duration = Duration::from_millis(120);

/// A [`JobListener`] printing progress to stdout.
pub struct LiveView {
    out: Output,
    /// Per job: the latest detail and the last status the cloud reported.
    jobs: Mutex<HashMap<i64, JobView>>,
}

enum Output {
    Terminal(MultiProgress),
    Plain,
}

#[derive(Default)]
struct JobView {
    bar: Option<ProgressBar>,
    detail: String,
    last_status: Option<String>,
    looks: u32,
}

impl LiveView {
    /// Status lines redrawn in place when `terminal`, plain lines otherwise.
    pub fn new(terminal: bool) -> Self {
        let out = if terminal {
            Output::Terminal(MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
        } else {
            Output::Plain
        };
        Self {
            out,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, multi: &MultiProgress) -> ProgressBar {
        let style = ProgressStyle::with_template("{spinner} {wide_msg} {elapsed:>4}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = multi.add(ProgressBar::new_spinner().with_style(style));
        bar.enable_steady_tick(TICK);
        bar
    }
}

impl JobListener for LiveView {
    fn on_job(&self, _policy: &Policy, job: &JobRecord, event: &JobEvent<'_>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let view = jobs.entry(job.id).or_default();
        let plain = plain_line(job, event, view);
        update(view, job, event);
        match &self.out {
            Output::Plain => {
                if let Some(line) = plain {
                    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
                    outln!("{at} {}", escape::one_line(&line));
                }
            }
            Output::Terminal(multi) => {
                let bar = view.bar.get_or_insert_with(|| self.bar(multi)).clone();
                let line = status_line(job, &escape::one_line(&view.detail));
                if *event == JobEvent::Finished {
                    bar.finish_with_message(line);
                } else {
                    bar.set_message(line);
                }
            }
        }
    }
}

/// Keeps what the terminal line shows: the latest look or note.
fn update(view: &mut JobView, job: &JobRecord, event: &JobEvent<'_>) {
    match event {
        JobEvent::Phase { note } => {
            view.detail = (*note).to_string();
            view.looks = 0;
        }
        JobEvent::Poll {
            resource,
            id,
            status,
        } => {
            view.looks += 1;
            view.detail = format!("{resource} {id}: {status} (look {})", view.looks);
            view.last_status = Some((*status).to_string());
        }
        JobEvent::Warning { message } => view.detail = format!("warning: {message}"),
        JobEvent::Finished => view.detail = outcome(job),
    }
}

/// The plain line for an event, if it says something new: every phase
/// change, warning and end, and a look only when the cloud's status changed.
fn plain_line(job: &JobRecord, event: &JobEvent<'_>, view: &JobView) -> Option<String> {
    let target = &job.target;
    Some(match event {
        JobEvent::Phase { note } => format!(
            "{target} {} ({}): {note}",
            job.phase.as_str(),
            job.status.as_str()
        ),
        JobEvent::Poll {
            resource,
            id,
            status,
        } => {
            if view.last_status.as_deref() == Some(*status) {
                return None;
            }
            format!("{target} {resource} {id}: {status}")
        }
        JobEvent::Warning { message } => format!("{target} warning: {message}"),
        JobEvent::Finished => format!("{target} finished: {}", outcome(job)),
    })
}

/// `succeeded, backup ID` or `failed: REASON`.
fn outcome(job: &JobRecord) -> String {
    match (job.status, &job.fail_reason) {
        (JobStatus::Succeeded, _) => {
            let id = job.backup_id.as_ref().or(job.snapshot_id.as_ref());
            match id {
                Some(id) => format!("succeeded ({id})"),
                None => "succeeded".into(),
            }
        }
        (status, Some(reason)) => format!("{}: {reason}", status.as_str()),
        (status, None) => status.as_str().to_string(),
    }
}

/// One target's terminal line: `TARGET  PHASE  STATUS  DETAIL`.
fn status_line(job: &JobRecord, detail: &str) -> String {
    let mark = match job.status {
        JobStatus::Succeeded => "✓",
        JobStatus::Running => " ",
        _ => "✗",
    };
    format!(
        "{mark} {:<36}  {:<18}  {detail}",
        job.target,
        job.phase.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Phase;

    fn job(status: JobStatus, phase: Phase) -> JobRecord {
        let now = Utc::now();
        JobRecord {
            id: 7,
            run_id: 1,
            policy: "db".into(),
            kind: crate::kind::PolicyKind::Backup,
            cloud: "prod".into(),
            target: "c5834fe1-577f-462e-9bf3-1b158e1dde9c".into(),
            slot: now,
            resource_name: "db-x".into(),
            status,
            phase,
            snapshot_id: Some("s1".into()),
            backup_id: Some("b1".into()),
            size_gb: None,
            is_incremental: None,
            fail_reason: None,
            started_at: now,
            finished_at: None,
            attempt: 1,
            attempt_started_at: now,
            blocked_by: None,
            retry_at: None,
            service: None,
        }
    }

    #[test]
    fn the_terminal_line_shows_the_latest_look() {
        let running = job(JobStatus::Running, Phase::BackupCreating);
        let mut view = JobView::default();
        for _ in 0..3 {
            let look = JobEvent::Poll {
                resource: "backup",
                id: "b1",
                status: "creating",
            };
            update(&mut view, &running, &look);
        }
        assert_eq!(
            status_line(&running, &view.detail),
            "  c5834fe1-577f-462e-9bf3-1b158e1dde9c  backup_creating     backup b1: creating (look 3)"
        );
        let mut failed = job(JobStatus::Failed, Phase::Done);
        failed.fail_reason = Some("Connection to swift failed".into());
        update(&mut view, &failed, &JobEvent::Finished);
        assert!(status_line(&failed, &view.detail)
            .starts_with("✗ c5834fe1-577f-462e-9bf3-1b158e1dde9c  done"));
        assert!(view.detail.ends_with("failed: Connection to swift failed"));
    }

    #[test]
    fn plain_lines_skip_looks_that_saw_nothing_new() {
        let running = job(JobStatus::Running, Phase::BackupCreating);
        let mut view = JobView::default();
        let look = JobEvent::Poll {
            resource: "backup",
            id: "b1",
            status: "creating",
        };
        let first = plain_line(&running, &look, &view);
        update(&mut view, &running, &look);
        let second = plain_line(&running, &look, &view);
        assert_eq!(
            first.as_deref(),
            Some("c5834fe1-577f-462e-9bf3-1b158e1dde9c backup b1: creating")
        );
        assert_eq!(second, None);
        let done = JobEvent::Poll {
            resource: "backup",
            id: "b1",
            status: "available",
        };
        assert!(plain_line(&running, &done, &view).is_some());
        let ok = job(JobStatus::Succeeded, Phase::Done);
        assert_eq!(
            plain_line(&ok, &JobEvent::Finished, &view).as_deref(),
            Some("c5834fe1-577f-462e-9bf3-1b158e1dde9c finished: succeeded (b1)")
        );
    }
}
