//! The engine in-process over a policy file, as `trigger` runs it.

use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use vbs_agent::api::ClientSettings;
use vbs_agent::config::Config;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobRecord, Store, Trigger};

use super::{fast, load, World};

/// One engine over a policy file, and the history it writes.
pub struct Setup {
    pub config: Config,
    pub store: Arc<Store>,
    pub engine: Engine,
}

impl Setup {
    /// Over `config`, with these client settings.
    pub fn new(config: Config, settings: ClientSettings) -> Self {
        let store = Arc::new(Store::open(&config.history_path()).unwrap());
        let engine = Engine::new(&config, Arc::clone(&store), settings).unwrap();
        Self {
            config,
            store,
            engine,
        }
    }

    /// Over the world's policy file with these `policies`, with [`fast`] retries.
    pub fn of(world: &World, policies: &str) -> Self {
        Self::new(load(&world.write_config("", "", policies)), fast())
    }

    /// Runs the file's first policy once, now, by hand; returns its jobs.
    pub async fn run_now(&self) -> Vec<JobRecord> {
        self.engine
            .run_policy(
                &self.config.policies[0],
                Utc::now().trunc_subsecs(0),
                Trigger::Manual,
            )
            .await
            .unwrap()
            .jobs
    }

    /// [`Setup::run_now`] for a policy of one target: its job.
    pub async fn run_once(&self) -> JobRecord {
        self.run_now().await.remove(0)
    }
}
