//! Subcommands and their output. One file per command.

/// `print!` that ends the program quietly when stdout is closed
/// (`vbs-agent history | head`) instead of panicking.
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::emit(format_args!($($t)*)) };
}

/// `println!` with the same behaviour as [`out!`].
macro_rules! outln {
    () => { $crate::cli::emit(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::emit(format_args!("{}\n", format_args!($($t)*))) };
}

mod check;
mod checkpoint_item;
mod demo;
mod history;
mod prune;
mod run;
mod shares;
mod table;
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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy file and show each policy's next fire times (exit 2 when invalid).
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
    /// Show the most recent jobs from the history.
    History {
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
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Try the agent against a built-in simulator: policies every few seconds, then the history.
    Demo {
        /// How long to let the agent run.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Keep the history here instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Server backups (CSBS checkpoint items) of a cloud.
    #[command(subcommand)]
    CheckpointItem(checkpoint_item::CheckpointItemCommand),
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Sets up `tracing` on stderr; `RUST_LOG` overrides the level.
pub fn init_logging(_cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Runs a parsed command and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Check { config } => check::run(&config),
        Command::Run { config } => run::run(&config).await,
        Command::Trigger { config, policy } => trigger::run(&config, &policy).await,
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
        Command::History { config, db, limit } => {
            history::run(config.as_deref(), db.as_deref(), limit)
        }
        Command::Demo { seconds, state_dir } => demo::run(seconds, state_dir).await,
        Command::CheckpointItem(command) => checkpoint_item::run(&command).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Writes to stdout; a closed pipe ends the program with success.
pub(crate) fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write output: {e}");
        std::process::exit(1);
    }
}

/// Loads the policy file, printing every error and returning exit code 2
/// when it is invalid.
fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(EXIT_INVALID)
    })
}

/// A client for cloud `name` of the policy file, or the exit code (2) after
/// saying what is wrong: an invalid file or no such cloud.
fn cloud_client(
    path: &Path,
    name: &str,
) -> anyhow::Result<Result<crate::api::CloudClient, ExitCode>> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    let Some(cloud) = config.clouds.get(name) else {
        let known: Vec<&str> = config.clouds.keys().map(String::as_str).collect();
        eprintln!(
            "error: no cloud `{name}` in {} (clouds: {})",
            path.display(),
            known.join(", ")
        );
        return Ok(Err(ExitCode::from(EXIT_INVALID)));
    };
    Ok(Ok(crate::api::CloudClient::new(
        cloud,
        crate::api::ClientSettings::default(),
    )?))
}
