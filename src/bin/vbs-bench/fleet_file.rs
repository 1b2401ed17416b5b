//! Policy files of any size, for the benchmarks that need many policies or
//! volumes. The cloud is a loopback address with a token from the
//! environment, so nothing is ever sent anywhere else.

use std::fmt::Write;

/// Environment variable the generated cloud reads its token from.
pub const TOKEN_ENV: &str = "VBS_BENCH_TOKEN";

/// The project of the generated cloud.
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";

/// Agent-wide limits of a generated file.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_concurrent_jobs: usize,
    /// The cloud's `rate_limit`, e.g. `100/s`.
    pub rate_limit: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_jobs: 64,
            rate_limit: None,
        }
    }
}

/// A policy file with `policies` policies of `volumes_each` volumes, each
/// firing on `schedule(i)` (a six-field cron expression) for policy `i`.
pub fn policy_file(
    state_dir: &str,
    endpoint: &str,
    policies: usize,
    volumes_each: usize,
    schedule: impl Fn(usize) -> String,
) -> String {
    policy_file_with(
        state_dir,
        endpoint,
        &Limits::default(),
        policies,
        volumes_each,
        schedule,
    )
}

/// [`policy_file`] with explicit limits.
pub fn policy_file_with(
    state_dir: &str,
    endpoint: &str,
    limits: &Limits,
    policies: usize,
    volumes_each: usize,
    schedule: impl Fn(usize) -> String,
) -> String {
    let rate = limits
        .rate_limit
        .as_ref()
        .map(|r| format!("    rate_limit: {r}\n"))
        .unwrap_or_default();
    let mut y = format!(
        "state_dir: {state_dir}\nmax_concurrent_jobs: {}\n\
         defaults:\n  timezone: Europe/Berlin\n\
         clouds:\n  bench:\n    project_id: {PROJECT}\n\
         \x20   endpoints: {{ volume: {endpoint}, backup: {endpoint} }}\n{rate}\
         \x20   auth: {{ type: token, token_env: {TOKEN_ENV} }}\n\
         policies:\n",
        limits.max_concurrent_jobs
    );
    for p in 0..policies {
        let _ = write!(
            y,
            "  - name: bench-{p:04}\n    kind: backup\n    cloud: bench\n    schedule: \"{}\"\n    volumes:\n",
            schedule(p)
        );
        for v in 0..volumes_each {
            let _ = writeln!(y, "      - {}", volume_id(p * volumes_each + v));
        }
    }
    y
}

/// The `n`th volume id: a valid lower-case UUID.
pub fn volume_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_file_is_a_valid_policy_file() {
        let text = policy_file("/tmp/x", "http://127.0.0.1:9", 3, 4, |i| {
            format!("{i} * * * * *")
        });
        let config = vbs_agent::config::parse(&text, std::path::Path::new("gen.yaml")).unwrap();
        assert_eq!(config.policies.len(), 3);
        assert!(config.policies.iter().all(|p| p.targets().len() == 4));
        assert_eq!(config.policies[2].targets()[3], volume_id(11));
    }
}
