//! vbs-agent: a scheduled backup-policy agent for cloud block volumes.

pub mod api;
pub mod audit;
pub mod bounded;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod http;
pub mod kind;
pub mod metrics;
pub mod naming;
pub mod notifier;
pub mod notify;
pub mod rpo_watch;
pub mod schedule;
pub mod scheduler;
pub mod store;
#[cfg(test)]
mod test_fixtures;
