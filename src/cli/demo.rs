//! `vbs-agent demo`: the whole agent against the built-in simulator on
//! 127.0.0.1, with Keystone password auth, a policy every few seconds over
//! several volumes (one of which the simulated cloud fails), then the history.
//! The simulator is the default `sim` feature: an agent built without it
//! (`--no-default-features`, as a production package may be) says so.

#[cfg(feature = "sim")]
mod simulated;

#[cfg(feature = "sim")]
pub use simulated::run;

/// Without the simulator there is nothing to run the agent against.
#[cfg(not(feature = "sim"))]
pub async fn run(
    _seconds: u64,
    _state_dir: Option<std::path::PathBuf>,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!(
        "this vbs-agent was built without the simulator (cargo feature `sim`), so it has no demo"
    )
}

#[cfg(all(test, not(feature = "sim")))]
mod tests {
    #[tokio::test]
    async fn a_build_without_the_simulator_says_so() {
        let err = super::run(1, None).await.unwrap_err();
        assert!(err.to_string().contains("without the simulator"), "{err}");
    }
}
