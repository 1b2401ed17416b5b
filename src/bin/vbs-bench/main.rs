//! `vbs-bench`: the agent's benchmarks. Each subcommand prints one JSON
//! result per line and a Markdown table for `BENCHMARKS.md`.

mod fleet;
mod fleet_file;
mod history;
mod polling;
mod process;
mod report;
mod scheduler;
mod selection;
mod side_by_side;
mod simulator;
mod startup;
mod yaml_bomb;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "vbs-bench", version, about)]
struct Args {
    /// Also rewrite this benchmark's section of this file (`BENCHMARKS.md`).
    #[arg(long, global = true, value_name = "FILE")]
    write: Option<PathBuf>,
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// API GETs per backup and detection delay of the agent's polling
    /// against fixed 2 s and 10 s loops, on a simulated clock.
    Polling(polling::Args),
    /// 10,000 volumes in 100 policies firing in the same minute; then limits.
    Fleet(fleet::Args),
    /// Fire lateness with 1,000 cron jobs registered, and the idle daemon's CPU.
    Scheduler(scheduler::Args),
    /// Selectors on 10,000 volumes: calls, CPU and wall time of one
    /// resolution, its sharing in a minute, and `coverage`.
    Selection(selection::Args),
    /// `check` and daemon READY on a 10,000-volume policy file.
    Startup(startup::Args),
    /// Audit commands on 1,000,000 jobs and 10,000,000 events, event insert rate, bytes per job.
    History(history::Args),
    /// The same volumes backed up by `vbs-agent trigger`, an `openstack`
    /// CLI shell loop and an openstacksdk script: CPU, wall time, API calls.
    SideBySide(side_by_side::Args),
    /// The daemon's memory when a SIGHUP reloads an alias bomb, and `check` on it.
    YamlBomb(yaml_bomb::Args),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let command = command_without_write(std::env::args().skip(1));
    let (name, result) = match &args.bench {
        Bench::Polling(a) => ("polling", polling::run(a)),
        Bench::Fleet(a) => (a.section(), fleet::run(a)),
        Bench::Scheduler(a) => ("scheduler", scheduler::run(a)),
        Bench::Selection(a) => ("selection", selection::run(a)),
        Bench::Startup(a) => ("startup", startup::run(a)),
        Bench::History(a) => ("history", history::run(a)),
        Bench::SideBySide(a) => ("side-by-side", side_by_side::run(a)),
        Bench::YamlBomb(a) => ("yaml-bomb", yaml_bomb::run(a)),
    };
    let result = result.and_then(|table| {
        println!("\n{table}");
        match &args.write {
            Some(path) => {
                report::write_section(path, name, &format!("vbs-bench {command}"), &table)
            }
            None => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vbs-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line as given, less `--write FILE`, for the provenance line.
fn command_without_write(args: impl Iterator<Item = String>) -> String {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if a == "--write" {
            skip_value = true;
        } else if !a.starts_with("--write=") {
            kept.push(a);
        }
    }
    kept.join(" ")
}
