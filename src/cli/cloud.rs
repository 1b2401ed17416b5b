//! The cloud a remote-query command talks to, named by `--cloud`.

use std::path::Path;
use std::process::ExitCode;

use super::{load_config, EXIT_INVALID};
use crate::api::{ClientSettings, CloudClient};

/// A client for cloud `name` of the policy file at `path`, or the exit code
/// after saying what is wrong (an invalid file, an unknown cloud).
pub fn client(path: &Path, name: &str) -> anyhow::Result<Result<CloudClient, ExitCode>> {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return Ok(Err(code)),
    };
    let Some(cloud) = config.clouds.get(name) else {
        let known: Vec<&str> = config.clouds.keys().map(String::as_str).collect();
        errln!(
            "error: no cloud `{name}` in {} (clouds: {})",
            path.display(),
            known.join(", ")
        );
        return Ok(Err(ExitCode::from(EXIT_INVALID)));
    };
    Ok(Ok(CloudClient::new(cloud, ClientSettings::default())?))
}
