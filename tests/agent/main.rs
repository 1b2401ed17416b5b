//! The agent end to end against the simulator: the daemon and the engine
//! scheduling, retrying, pruning and surviving kills, for every policy kind.

#[path = "../helper/mod.rs"]
mod helper;

mod closed_output;
mod crash_loop;
mod db_blip;
mod db_outage;
mod deadlines;
mod e2e_sim;
mod failover;
mod fault_storm;
mod follower_watchdog;
mod history_guard;
mod metrics_endpoint;
mod notifications;
mod partition;
mod proxy;
mod reload;
mod restores;
mod retention;
mod rpo_watch;
mod scheduling;
mod selection;
mod server_policy;
mod sharing;
mod snapshot_policy;
