//! vbs-agent: a scheduled backup-policy agent for cloud block volumes.
//!
//! Layout, one line per module: what it owns, and what it must not know.
//! - [`config`]: the policy file, its validation and secret references;
//!   knows nothing of HTTP or SQLite.
//! - [`kind`]: what a policy makes, one type from the policy file to the history.
//! - [`schedule`]: when a policy's slots fall (cron in a time zone).
//! - [`naming`]: the deterministic names of what the agent creates.
//! - [`api`]: the typed cloud client (auth, retries, error classes);
//!   knows nothing of policies or SQLite.
//! - [`http`]: what every outgoing HTTP client shares (no redirects, bounded bodies).
//! - [`store`]: the SQLite history and its migrations; knows nothing of HTTP.
//! - [`engine`]: runs and jobs through their persisted phases; knows
//!   nothing of cron or the command line.
//! - [`audit`]: RPO compliance judged from the history; knows nothing of HTTP.
//! - [`notifier`]: operator alerts (webhook, command) on job outcomes and RPO breaches.
//! - [`metrics`]: Prometheus series and the health check.
//! - [`daemon`]: the service loop: timers, firings, reloads, the RPO watch, systemd.
//! - [`cli`]: the subcommands and their output; the only module that prints.
//! - [`bounded`]: bounds on outside text the agent stores and logs.

pub mod api;
pub mod audit;
pub mod bounded;
pub mod cli;
pub mod config;
pub mod coverage;
pub mod daemon;
pub mod engine;
pub mod history_store;
pub mod http;
pub mod kind;
pub mod lease;
pub mod metrics;
pub mod naming;
pub mod notifier;
pub mod schedule;
pub mod selection;
pub mod store;
#[cfg(test)]
mod test_fixtures;
