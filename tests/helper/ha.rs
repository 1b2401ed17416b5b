//! Two agents sharing a PostgreSQL history, for the HA tests: a scratch
//! database on the server of `VBS_PG_URL` (skipped, with one line, without
//! it), agents as child processes, and the lease row read directly.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use vbs_agent::store::db::{PgConfig, PgDb};
use vbs_agent::store::scratch::ScratchDatabase;

/// The environment variable the agents read their history URL from.
pub const URL_ENV: &str = "VBS_HA_HISTORY_URL";

/// A scratch database, or `None` (said once) when there is no server.
pub fn scratch() -> Option<ScratchDatabase> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match ScratchDatabase::from_env() {
        Some(db) => Some(db.expect("a scratch database on VBS_PG_URL")),
        None => {
            SAID.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED PostgreSQL tests: VBS_PG_URL is not set; start one with `bash tests/postgres/setup.sh start` and export the VBS_PG_URL it prints"
                );
            });
            None
        }
    }
}

/// The `history:` section for agents reading the URL from [`URL_ENV`].
pub fn history_section(lease_ttl: &str) -> String {
    format!("history:\n  postgres:\n    url_env: {URL_ENV}\n    lease_ttl: {lease_ttl}\n")
}

/// Starts `vbs-agent run` on `policy` with the history at `db`, its log
/// appended to `log`.
pub fn spawn(policy: &Path, db: &PgConfig, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_vbs-agent"))
        .args(["run", "--config"])
        .arg(policy)
        .env("RUST_LOG", "info")
        .env(URL_ENV, &db.url)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agent starts")
}

/// The lease row: holder, epoch, and whether it is live (`None` before
/// the first agent migrated the database or took the lease).
pub fn lease(db: &PgDb) -> Option<(String, i64, bool)> {
    let row = db
        .with(|c| {
            c.query_opt(
                "SELECT holder, epoch, expires_at > now() FROM leader_lease WHERE name = 'leader'",
                &[],
            )
        })
        .ok()
        .flatten()?;
    Some((
        row.get(0).unwrap(),
        row.get(1).unwrap(),
        row.get(2).unwrap(),
    ))
}

/// The pid in a holder name (`host:pid`).
pub fn pid_of(holder: &str) -> u32 {
    holder.rsplit(':').next().unwrap().parse().unwrap()
}
