//! vbs-agent: a scheduled backup-policy agent for cloud block volumes.

pub mod api;
pub mod config;
pub mod naming;
pub mod schedule;
pub mod store;
