//! Opening the history the policy file names: the SQLite file in
//! `state_dir`, or the PostgreSQL database of `history.postgres` with the
//! leader lease its agents share.

use std::sync::Arc;

use crate::api::ClientSettings;
use crate::config::{Config, HistoryStore, PostgresHistory};
use crate::daemon::lease::{step_down, Holding};
use crate::lease::{Lease, LeaseSettings};
use crate::metrics::{Heartbeat, Metrics};
use crate::store::{PgConfig, Store, StoreError};

/// An open history, and the lease when it is shared.
pub struct History {
    pub store: Arc<Store>,
    /// Set for a PostgreSQL history: only its holder may act.
    pub lease: Option<Arc<Lease>>,
}

/// The connection settings of `history.postgres`, its URL read now.
pub fn pg_config(pg: &PostgresHistory) -> Result<PgConfig, StoreError> {
    let url = pg
        .url
        .read()
        .map_err(|e| StoreError::PgConfig(format!("the connection URL: {e}")))?;
    Ok(PgConfig {
        url: url.expose().to_string(),
        ca_file: pg.ca_file.clone(),
    })
}

/// Opens the history for a command that drives jobs (`role`: `run`,
/// `trigger`, …): SQLite under its writer lock; PostgreSQL with this
/// agent's place in the election (see [`crate::lease`]).
pub fn open_writer(config: &Config, role: &str) -> Result<History, StoreError> {
    match &config.history {
        HistoryStore::Sqlite => Ok(History {
            store: Arc::new(Store::open_writer(&config.history_path(), role)?),
            lease: None,
        }),
        HistoryStore::Postgres(pg) => {
            let connection = pg_config(pg)?;
            let store = Arc::new(Store::open_postgres(&connection)?);
            let settings = LeaseSettings::for_this_agent(pg.lease_ttl, config);
            let lease = Arc::new(Lease::connect(&connection, settings)?);
            Ok(History {
                store,
                lease: Some(lease),
            })
        }
    }
}

/// Opens the history for reading (`history`, `report`, …).
pub fn open_reader(config: &Config) -> Result<Store, StoreError> {
    match &config.history {
        HistoryStore::Sqlite => Store::open_read_only(&config.history_path()),
        HistoryStore::Postgres(pg) => Store::open_postgres(&pg_config(pg)?),
    }
}

/// Opens the history for reading if there is one yet (`None`: no SQLite
/// file, so the agent has not run).
pub fn open_existing_reader(config: &Config) -> Result<Option<Store>, StoreError> {
    match &config.history {
        HistoryStore::Sqlite if !config.history_path().exists() => Ok(None),
        _ => open_reader(config).map(Some),
    }
}

/// Where the open history `store` of `config` is, for messages: from the
/// store, without reading the URL's secret again.
pub fn describe(config: &Config, store: &Store) -> String {
    match store.describe_postgres() {
        Some(described) => described.to_string(),
        None => config.history_path().display().to_string(),
    }
}

/// The history of a one-shot command that drives jobs (`trigger`,
/// `prune`, `restore`), and on a shared history the lease it holds
/// meanwhile, renewed, so that no agent acts beside it.
pub struct CommandHistory {
    pub store: Arc<Store>,
    /// The API client settings, gated by the lease when there is one.
    pub settings: ClientSettings,
    held: Option<(Arc<Lease>, Holding)>,
}

/// Opens the history for `role`; on PostgreSQL takes the lease, or refuses
/// while an agent holds it.
pub async fn open_for_command(config: &Config, role: &str) -> Result<CommandHistory, StoreError> {
    let history = open_writer(config, role)?;
    let mut settings = ClientSettings::default();
    let Some(lease) = history.lease else {
        return Ok(CommandHistory {
            store: history.store,
            settings,
            held: None,
        });
    };
    let Some(epoch) = lease.try_acquire()? else {
        let holder = lease.holder()?;
        return Err(StoreError::Led {
            holder: holder
                .as_ref()
                .map_or("another agent".into(), |h| h.holder.clone()),
            epoch: holder.map_or(0, |h| h.epoch),
        });
    };
    history.store.set_epoch(epoch);
    settings.gate = Some(lease.held());
    let holding = Holding::start(&lease, &Metrics::new(), &Arc::new(Heartbeat::new()));
    Ok(CommandHistory {
        store: history.store,
        settings,
        held: Some((lease, holding)),
    })
}

impl CommandHistory {
    /// Gives the lease back, if one was taken.
    pub async fn finish(self) {
        if let Some((lease, holding)) = self.held {
            holding.stop();
            step_down(&lease).await;
        }
    }
}
