//! Running the `vbs-agent` binary from a test, and the daemon in-process.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vbs_agent::api::ClientSettings;
use vbs_agent::config::Config;
use vbs_agent::daemon::DaemonError;

/// `vbs-agent ARGS`, logging at `warn`, ready to be adjusted and run.
pub fn command<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vbs-agent"));
    cmd.args(args).env("RUST_LOG", "warn");
    cmd
}

/// Runs `vbs-agent ARGS` (warnings only on stderr).
pub fn agent(args: &[&str]) -> Output {
    command(args).output().expect("vbs-agent runs")
}

/// Runs `cmd` off the async runtime, so an in-process simulator or daemon
/// keeps serving meanwhile.
pub async fn output_async(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("vbs-agent runs"))
        .await
        .expect("the agent's thread joins")
}

/// [`agent`] off the async runtime.
pub async fn agent_async<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    output_async(command(args)).await
}

/// [`agent_async`] with extra environment variables.
pub async fn agent_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command(args);
    cmd.envs(env.iter().copied());
    output_async(cmd).await
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts `vbs-agent run --config POLICY`, its log appended to `log`.
pub fn spawn_agent(policy: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    command(["run", "--config"])
        .arg(policy)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agent starts")
}

/// Sends `sig` (`-KILL`, `-TERM`) to the agent.
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The daemon running in-process until [`Daemon::stop`].
pub struct Daemon {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), DaemonError>>,
}

impl Daemon {
    /// The daemon as `vbs-agent run` starts it (default client settings).
    pub fn start(config: Config) -> Self {
        Self::start_with(config, ClientSettings::default())
    }

    /// The daemon with these client settings (short retries).
    pub fn start_with(config: Config, settings: ClientSettings) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(vbs_agent::daemon::serve(
            config,
            async {
                let _ = stopped.await;
            },
            None,
            settings,
        ));
        Self { stop, task }
    }

    /// Stops the daemon (jobs in flight finish within the shutdown grace)
    /// and asserts that it ended cleanly.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}
