//! Running the `vbs-agent` binary from a test.

use std::process::Output;

/// Runs `vbs-agent` with `args` (logs at `warn`), off the async runtime so
/// an in-process simulator keeps serving.
pub async fn agent(args: &[&str]) -> Output {
    agent_env(args, &[]).await
}

/// [`agent`] with extra environment variables.
pub async fn agent_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
            .args(&args)
            .env("RUST_LOG", "warn")
            .envs(env)
            .output()
            .expect("vbs-agent runs")
    })
    .await
    .expect("the agent's thread joins")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
