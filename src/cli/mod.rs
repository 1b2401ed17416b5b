//! Subcommands and their output. One file per command.

/// `print!` that drops its output when stdout is closed (`vbs-agent
/// history | head`) instead of panicking ([`output`]).
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::output::stdout(format_args!($($t)*)) };
}

/// `println!` with the same behaviour as [`out!`].
macro_rules! outln {
    () => { $crate::cli::output::stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::output::stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that never panics: a closed stderr drops the line.
macro_rules! errln {
    ($($t:tt)*) => { $crate::cli::output::stderr(format_args!("{}\n", format_args!($($t)*))) };
}

mod backups;
mod check;
mod checkpoint_item;
mod cloud;
mod coverage;
mod demo;
mod docs;
mod escape;
mod history;
mod history_export;
mod logging;
mod output;
mod progress;
mod prune;
mod report;
mod restore;
mod run;
mod shares;
mod table;
mod targets;
mod trigger;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};

/// Exit code for an invalid policy file or bad usage.
const EXIT_INVALID: u8 = 2;

/// Scheduled snapshots and VBS backups of cloud volumes, with an SQLite history.
#[derive(Debug, Parser)]
#[command(name = "vbs-agent", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr: `pretty` (human-readable; coloured and
    /// timestamped only on a terminal, journald adds its own) or `json`
    /// (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy file and its state_dir, and show each policy's next fire times (exit 2 when invalid).
    Check {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the agent: fire every policy on its schedule until SIGTERM/SIGINT.
    Run {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run one policy now, wait for all its jobs and print the outcome (exit 1 if any failed).
    Trigger {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, short, value_name = "NAME")]
        policy: String,
    },
    /// Restore a backup into a new volume or over an existing one, and wait (exit 1 if it failed).
    Restore(Box<restore::RestoreArgs>),
    /// Apply retention now: delete what the policies' retention rules no longer keep.
    Prune {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only this policy.
        #[arg(long, short, value_name = "NAME")]
        policy: Option<String>,
        /// Show the plan (every backup, kept or deleted, and why) and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List backup shares of a cloud (all pages), with the vendor's filters.
    Shares {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "NAME")]
        cloud: String,
        #[command(flatten)]
        filters: Box<shares::ShareFilters>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show jobs from the history, filtered, as a table, JSON or CSV
    /// (read-only); `history export` copies an SQLite history into PostgreSQL.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    History {
        #[command(subcommand)]
        action: Option<HistoryAction>,
        /// Policy file whose state_dir holds the history.
        #[arg(
            long,
            short,
            value_name = "FILE",
            conflicts_with = "db",
            required_unless_present = "db"
        )]
        config: Option<PathBuf>,
        /// The history database itself.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        #[command(flatten)]
        query: Box<history::HistoryQuery>,
    },
    /// Try the agent against a built-in simulator: policies every few seconds, then the history.
    Demo {
        /// How long to let the agent run.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Where to keep the demo's policy file and history; default
        /// `vbs-agent-demo/<UTC time>` in the current directory.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// List a cloud's backups (the summary list, every page; CBR's backups on a CBR cloud), with the vendor's filters.
    Backups {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "NAME")]
        cloud: String,
        #[command(flatten)]
        filters: backups::BackupFilters,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Per policy and target: last good backup, its age against the RPO, and
    /// the window's statistics (read-only; exit 3 when a target is out of RPO).
    Report {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Start of the window: a duration back from --at (30d), a date or an RFC 3339 time.
        #[arg(long, value_name = "TIME", default_value = "30d")]
        since: String,
        /// Judge as of this time instead of now (a date or an RFC 3339 time).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// One backup as the cloud reports it.
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (vbs-agent.1 and one per subcommand) to DIR, or vbs-agent.1 to stdout.
    Man {
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Server backups (CSBS checkpoint items) of a cloud.
    #[command(subcommand)]
    CheckpointItem(checkpoint_item::CheckpointItemCommand),
    /// Resolve each policy's targets against the cloud now: every target
    /// with why it is in scope, and the matches left out (changes nothing).
    Targets {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only this policy.
        #[arg(long, short, value_name = "NAME")]
        policy: Option<String>,
    },
    /// Every volume and server of each cloud, the policies covering it and
    /// its last good backup; exit 3 when one is UNPROTECTED and not opted out.
    Coverage {
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        /// Only this cloud.
        #[arg(long, value_name = "NAME")]
        cloud: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = coverage::CoverageFormat::Table)]
        format: coverage::CoverageFormat,
    },
}

/// `vbs-agent history …` beyond listing jobs.
#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Copy an SQLite history into a PostgreSQL one (for an HA pair), ids
    /// and all; again, it copies only what is missing. Refuses a database
    /// holding another history, and one an agent leads.
    Export(Box<history_export::ExportArgs>),
}

/// `vbs-agent backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupAction {
    /// Every field of one backup's detail (`GET /v3/{project_id}/backups/{id}`).
    Show {
        /// The backup id.
        id: String,
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
        #[arg(long, value_name = "NAME")]
        cloud: String,
        /// Output format (json: the record exactly as the cloud sent it).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Sets up `tracing` on stderr; `RUST_LOG` overrides the level.
pub fn init_logging(cli: &Cli) {
    // `trigger`'s live status lines would be broken up by log lines.
    let live =
        matches!(cli.command, Command::Trigger { .. } | Command::Restore(_)) && trigger::live();
    logging::init(cli.log_format, if live { "error" } else { "info" });
}

/// Runs a parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Check { config } => check::run(&config),
        Command::Run { config } => run::run(&config).await,
        Command::Trigger { config, policy } => trigger::run(&config, &policy).await,
        Command::Restore(args) => restore::run(&args).await,
        Command::Prune {
            config,
            policy,
            dry_run,
        } => prune::run(&config, policy.as_deref(), dry_run).await,
        Command::Shares {
            config,
            cloud,
            filters,
            format,
        } => shares::run(&config, &cloud, &filters, format == Format::Json).await,
        Command::History {
            action: Some(HistoryAction::Export(args)),
            ..
        } => history_export::run(&args),
        Command::History {
            action: None,
            config,
            db,
            query,
        } => history::run(config.as_deref(), db.as_deref(), &query),
        Command::Demo { seconds, state_dir } => demo::run(seconds, state_dir).await,
        Command::Backups {
            config,
            cloud,
            filters,
            format,
        } => backups::list(&config, &cloud, &filters, format == Format::Json).await,
        Command::Backup {
            action:
                BackupAction::Show {
                    id,
                    config,
                    cloud,
                    format,
                },
        } => backups::show(&config, &cloud, &id, format == Format::Json).await,
        Command::Report {
            config,
            since,
            at,
            format,
        } => report::run(&config, &since, at.as_deref(), format == Format::Json),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { out } => docs::man(out.as_deref()),
        Command::CheckpointItem(command) => checkpoint_item::run(&command).await,
        Command::Targets { config, policy } => targets::run(&config, policy.as_deref()).await,
        Command::Coverage {
            config,
            cloud,
            format,
        } => coverage::run(&config, cloud.as_deref(), format).await,
    };
    match result {
        Ok(_) if output::stdout_failed() => ExitCode::from(1),
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", error_text(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, each cause once. Our error types
/// put their `source` in their own message, so `{:#}`, which appends every
/// cause, would print it twice ("File exists (os error 17): File exists
/// (os error 17)").
fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Loads the policy file, printing every error and returning exit code 2
/// when it is invalid.
fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|errors| {
        errln!("{errors}");
        ExitCode::from(EXIT_INVALID)
    })
}

#[cfg(test)]
mod tests {
    use crate::store::StoreError;

    #[test]
    fn each_cause_is_shown_once() {
        let store = StoreError::Create {
            path: "/h/history.db".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = anyhow::Error::new(store).context("running policy p");
        assert_eq!(
            super::error_text(&e),
            "running policy p: cannot create history database /h/history.db: entity not found"
        );
    }
}
