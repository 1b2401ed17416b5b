//! Throwaway PostgreSQL databases on the server `VBS_PG_URL` names (the
//! one `tests/postgres/setup.sh` starts): one per test or benchmark run,
//! dropped when done, so runs never see each other's history.

use super::db::{PgConfig, PgDb};
use super::StoreError;

/// The environment variable naming the test server.
pub const PG_URL_ENV: &str = "VBS_PG_URL";

/// A database created for one test, dropped with it.
pub struct ScratchDatabase {
    admin: PgDb,
    name: String,
    /// How to reach it.
    pub config: PgConfig,
}

impl ScratchDatabase {
    /// A new, empty database on the server of `VBS_PG_URL`; `None` when the
    /// variable is not set (no PostgreSQL to test against).
    pub fn from_env() -> Option<Result<Self, StoreError>> {
        let url = std::env::var(PG_URL_ENV).ok().filter(|u| !u.is_empty())?;
        Some(Self::create(&url))
    }

    /// A new, empty database on the server of `base_url`.
    pub fn create(base_url: &str) -> Result<Self, StoreError> {
        let base = PgConfig {
            url: base_url.to_string(),
            ca_file: None,
        };
        let admin = PgDb::connect(&base, super::db::postgres::STATEMENT_DEADLINE)?;
        let name = format!("vbs_scratch_{}", uuid::Uuid::new_v4().simple());
        admin.with(|c| c.batch(&format!("CREATE DATABASE {name}")))?;
        let mut url = url::Url::parse(base_url)
            .map_err(|e| StoreError::PgConfig(format!("{PG_URL_ENV} does not parse: {e}")))?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            admin,
            name,
            config: PgConfig {
                url: url.to_string(),
                ca_file: None,
            },
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.admin.with(|c| c.batch(&drop)) {
            eprintln!("scratch database {} left behind: {e}", self.name);
        }
    }
}
