//! `vbs-agent history export`: copies an SQLite history into a PostgreSQL
//! one, so that a team moving its agent to an HA pair keeps its audit
//! trail ([`crate::store::Store::export_to`] does the copying).
//!
//! The target's URL usually holds a password, and a command line is
//! visible to every user of the host (`ps`) and kept in shell histories,
//! so `--to` takes only a URL without one; `--to-env` and `--to-file`
//! carry any URL.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{load_config, table, EXIT_INVALID};
use crate::config::secret::SecretSource;
use crate::config::HistoryStore;
use crate::store::{ExportSummary, PgConfig, Store};

/// Where `history export` copies from and to.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "db"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "to_env", "to_file"])))]
pub struct ExportArgs {
    /// Policy file whose state_dir holds the SQLite history to copy.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The SQLite history database to copy.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// The PostgreSQL database, as a URL without a password (a Unix socket
    /// with peer authentication:
    /// postgres:///vbs?host=/run/postgresql&user=vbs).
    /// A URL with a password is refused: `ps` would show it to every user.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// The environment variable holding the PostgreSQL URL.
    #[arg(long, value_name = "VAR")]
    pub to_env: Option<String>,
    /// The file holding the PostgreSQL URL (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub to_file: Option<PathBuf>,
    /// PEM roots for a server certificate no public root signs.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Rows per transaction.
    #[arg(long, value_name = "N", default_value_t = crate::store::BATCH_ROWS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    pub batch: usize,
}

const HEADER: &[&str] = &["table", "rows", "copied", "already there"];

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let url = match target_url(args) {
        Ok(url) => url,
        Err(message) => {
            errln!("error: {message}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let path = match (&args.db, &args.config) {
        (Some(db), _) => db.clone(),
        (None, Some(config)) => {
            let config = match load_config(config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if let HistoryStore::Postgres(_) = config.history {
                anyhow::bail!(
                    "the policy file names a PostgreSQL history (history.postgres); the \
                     export copies an SQLite one: name its file with --db \
                     (state_dir/history.db)"
                );
            }
            config.history_path()
        }
        (None, None) => anyhow::bail!("give --config FILE or --db FILE"),
    };
    if !path.exists() {
        anyhow::bail!("no history at {}", path.display());
    }
    let source = Store::open_writer(&path, "history export")?;
    let target = Store::open_postgres(&PgConfig {
        url,
        ca_file: args.ca_file.clone(),
    })?;
    let summary = source.export_to(&target, args.batch)?;
    out!(
        "{}",
        render(
            &summary,
            &path.display().to_string(),
            target.describe_postgres().unwrap_or("PostgreSQL")
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// The target's URL from whichever option gave it; `Err` with the message
/// for a usage error.
fn target_url(args: &ExportArgs) -> Result<String, String> {
    let source = match (&args.to, &args.to_env, &args.to_file) {
        (Some(url), _, _) => {
            let config = PgConfig {
                url: url.clone(),
                ca_file: None,
            };
            if config.has_password() {
                return Err(
                    "--to holds a password, which every user of this host can read with ps \
                     while the export runs; pass the URL with --to-env VAR or --to-file FILE"
                        .into(),
                );
            }
            return Ok(url.clone());
        }
        (None, Some(var), _) => SecretSource::Env(var.clone()),
        (None, None, Some(file)) => SecretSource::File(file.clone()),
        (None, None, None) => return Err("give --to, --to-env or --to-file".into()),
    };
    source
        .read()
        .map(|url| url.expose().trim().to_string())
        .map_err(|e| format!("the PostgreSQL URL: {e}"))
}

/// What was copied: a line naming the history and both ends, then rows per
/// table and the total.
fn render(summary: &ExportSummary, from: &str, to: &str) -> String {
    let mut rows: Vec<Vec<String>> = summary
        .tables
        .iter()
        .map(|t| {
            vec![
                t.table.to_string(),
                t.rows.to_string(),
                t.copied.to_string(),
                t.already_there.to_string(),
            ]
        })
        .collect();
    let sum = |f: fn(&crate::store::TableCopy) -> u64| -> String {
        summary.tables.iter().map(f).sum::<u64>().to_string()
    };
    rows.push(vec![
        "total".into(),
        sum(|t| t.rows),
        sum(|t| t.copied),
        sum(|t| t.already_there),
    ]);
    format!(
        "history {} from {from} to {to}\n\n{}",
        summary.history_id,
        table::render(HEADER, &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(url: &str) -> ExportArgs {
        ExportArgs {
            config: None,
            db: Some("history.db".into()),
            to: Some(url.into()),
            to_env: None,
            to_file: None,
            ca_file: None,
            batch: crate::store::BATCH_ROWS,
        }
    }

    #[test]
    fn to_refuses_a_url_with_a_password_and_takes_a_socket_url() {
        let refused = target_url(&to("postgres://vbs:s3cret@db.example.internal/vbs")).unwrap_err();
        assert!(refused.contains("--to holds a password"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");

        let socket = "postgres:///vbs?host=/run/postgresql&user=vbs";
        assert_eq!(target_url(&to(socket)).unwrap(), socket);
        let described = PgConfig {
            url: socket.into(),
            ca_file: None,
        }
        .describe();
        assert_eq!(described, "postgres://vbs@/run/postgresql:5432/vbs");
    }
}
