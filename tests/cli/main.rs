//! The commands as a user runs them: the `vbs-agent` binary, its output,
//! exit codes and history reports.

#[path = "../helper/mod.rs"]
mod helper;

mod audit;
mod cbr;
mod cli;
mod config_errors;
mod golden;
mod hostile_text;
mod remote_queries;
mod restore;
mod selection;
mod service_cli;
mod trigger_terminal;
