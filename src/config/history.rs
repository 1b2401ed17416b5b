//! `history:`: the history in SQLite (the default, nothing to say) or in a
//! PostgreSQL database shared by an HA pair, with its leader lease.

use std::path::Path;

use super::auth::{secret, SecretFields};
use super::bounds::{MAX_LEASE_TTL, MIN_LEASE_TTL};
use super::checks;
use super::model::{HistoryStore, PostgresHistory, DEFAULT_LEASE_TTL};
use super::path::FieldPath;
use super::raw::RawHistory;
use super::report::Report;
use super::validate::resolve;

/// The validated `history` section; `None` when something was reported.
pub(super) fn history(
    raw: Option<&RawHistory>,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<HistoryStore> {
    let Some(pg) = raw.and_then(|h| h.postgres.as_ref()) else {
        return Some(HistoryStore::Sqlite);
    };
    let path = FieldPath::root().key("history").key("postgres");
    let url = secret(
        SecretFields {
            needed_by: "a PostgreSQL history",
            what: "url",
            file: &pg.url_file,
            env: &pg.url_env,
            credential: &pg.url_credential,
        },
        &path,
        base_dir,
        report,
    );
    let lease_ttl = match pg.lease_ttl.as_deref() {
        None => Some(DEFAULT_LEASE_TTL),
        Some(text) => match checks::duration(text, MAX_LEASE_TTL) {
            Ok(d) if d < MIN_LEASE_TTL => {
                report.value(
                    &path.key("lease_ttl"),
                    format!(
                        "lease_ttl {text} is too short: the leader renews every third of it, \
                         and each renewal is a round trip to the database; use at least {}s",
                        MIN_LEASE_TTL.as_secs()
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                report.value(&path.key("lease_ttl"), message);
                None
            }
        },
    };
    let ca_file = match pg.ca_file.as_deref() {
        Some("") => {
            report.value(
                &path.key("ca_file"),
                "ca_file is empty; give the path of a PEM file with the server's CA",
            );
            return None;
        }
        other => other.map(|f| resolve(base_dir, f)),
    };
    Some(HistoryStore::Postgres(PostgresHistory {
        url: url?,
        ca_file,
        lease_ttl: lease_ttl?,
    }))
}
