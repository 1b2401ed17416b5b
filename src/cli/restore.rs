//! `vbs-agent restore`: restore one backup into a new volume or over an
//! existing one, and wait for it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::progress::LiveView;
use super::{load_config, EXIT_INVALID};
use crate::config::RestoreInto;
use crate::engine::{Engine, RestoreRequest};
use crate::history_store;
use crate::store::JobStatus;

/// What to restore, and into what.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup to restore.
    #[arg(value_name = "BACKUP_ID")]
    pub backup_id: String,
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The cloud the backup is in.
    #[arg(long, value_name = "NAME")]
    pub cloud: String,
    /// Restore over this existing volume (available, detached, at least as
    /// large as the backup). Its data is replaced.
    #[arg(
        long,
        value_name = "VOLUME_ID",
        conflicts_with = "new_volume",
        required_unless_present = "new_volume"
    )]
    pub to_volume: Option<String>,
    /// Restore into a new volume of the backup's size.
    #[arg(long)]
    pub new_volume: bool,
    /// The new volume's name (default: the agent's name for it).
    #[arg(long, value_name = "NAME", requires = "new_volume")]
    pub name: Option<String>,
    /// The new volume's availability zone (default: the backup's).
    #[arg(long, value_name = "AZ", requires = "new_volume")]
    pub az: Option<String>,
    /// Overwrite the `--to-volume` volume without asking.
    #[arg(long)]
    pub yes: bool,
    /// How long the restore may take.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(args: &RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if !config.clouds.contains_key(&args.cloud) {
        let known: Vec<&str> = config.clouds.keys().map(String::as_str).collect();
        errln!(
            "error: no cloud `{}` in {} (clouds: {})",
            args.cloud,
            args.config.display(),
            known.join(", ")
        );
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let into = match &args.to_volume {
        Some(id) => {
            if !args.yes && !confirmed(id)? {
                errln!("not restored: volume {id} was not confirmed (type its id, or pass --yes)");
                return Ok(ExitCode::from(EXIT_INVALID));
            }
            RestoreInto::Existing(id.to_ascii_lowercase())
        }
        None => RestoreInto::NewVolume {
            name: args.name.clone(),
            availability_zone: args.az.clone(),
        },
    };
    let request = RestoreRequest {
        cloud: args.cloud.clone(),
        backup_id: args.backup_id.clone(),
        into,
        requested_by: requested_by(),
        timeout: args.timeout,
    };
    let history = history_store::open_for_command(&config, "restore").await?;
    let store = Arc::clone(&history.store);
    let view = Arc::new(LiveView::new(super::trigger::live()));
    let engine =
        Engine::new(&config, Arc::clone(&store), history.settings.clone())?.with_listener(view);
    let report = engine
        .restore(&request)
        .await
        .with_context(|| format!("restoring backup {}", args.backup_id));
    history.finish().await;
    let report = report?;
    let Some(job) = report.jobs.first() else {
        anyhow::bail!("the restore recorded no job");
    };
    let columns = store.restore_columns(job.id)?;
    let took = match (columns.restore_started_at, columns.restore_finished_at) {
        (Some(start), Some(end)) => (end - start)
            .to_std()
            .map(|d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string())
            .unwrap_or_default(),
        _ => "-".into(),
    };
    let volume = columns.volume_id.as_deref().unwrap_or("-");
    outln!("backup    {}", job.backup_id.as_deref().unwrap_or("-"));
    outln!("volume    {volume}");
    outln!("restore   {took}");
    outln!("outcome   {}", job.status.as_str());
    if let Some(reason) = &job.fail_reason {
        outln!("reason    {}", super::escape::one_line(reason));
    }
    outln!("job       {} (vbs-agent history shows its events)", job.id);
    Ok(if job.status == JobStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Asks on the terminal for the volume's id to be typed; never on a pipe.
fn confirmed(volume: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    let mut err = std::io::stderr();
    write!(
        err,
        "Restoring replaces everything on volume {volume}. Type its id to go on: "
    )?;
    err.flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim().eq_ignore_ascii_case(volume))
}

/// Who asked: the login behind `sudo`, or the user.
fn requested_by() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}
