//! The simulated cloud the benchmarks run against.

use std::time::Duration;

use vbs_sim::{self as sim, SimConfig, SimHandle};

/// Starts `config` on 127.0.0.1, every snapshot, backup and delete taking
/// `work`, so that each benchmark's clouds are equally slow.
pub async fn start(config: SimConfig, work: Duration) -> Result<SimHandle, String> {
    let config = SimConfig {
        snapshot_duration: work,
        backup_duration: work,
        delete_duration: work,
        ..config
    };
    sim::start(config, "127.0.0.1:0".parse().map_err(|_| "address")?)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))
}
