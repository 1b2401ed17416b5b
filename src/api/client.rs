//! The typed client for one cloud: snapshots and volumes (EVS/Cinder),
//! backups and restores (VBS/Cinder), sharing and CSBS server backups, the
//! inventory selectors choose from (volumes and servers by metadata or
//! tag), with authentication,
//! retries and pagination. Each kind of call has its own file; the request
//! plumbing they share is in [`request`].
//!
//! Retrying is per HTTP call and bounded (a small budget with exponential
//! backoff and jitter, honouring `Retry-After` up to [`MAX_RETRY_AFTER`]);
//! polling a resource until it settles is the engine's business. A create
//! call whose outcome is unknown (the request may have reached the server)
//! is never repeated here. A client bound to a job's [`Deadline`] ends
//! every attempt and every retry wait by it.

use std::sync::Arc;
use std::time::Duration;

use super::auth::TokenSource;
use super::deadline::Deadline;
use super::error::ApiError;
use super::limit::RateLimiter;
use super::observe::{CallObserver, TraceObserver};
use crate::config::{ApiVersion, Cloud, RestoreApi, SelectBy};

mod backups;
mod cbr;
mod csbs;
mod inventory;
mod request;
mod restores;
mod sharing;
mod snapshots;
mod volumes;
pub use backups::NewBackup;
pub use cbr::{NewCheckpoint, NewDiskFromBackup, DISK, SERVER};
pub use csbs::MAX_CHECKPOINT_DELETIONS;
pub use snapshots::NewSnapshot;
pub use volumes::NewVolume;

/// Longest `Retry-After` the client waits for within one call (and never
/// past the deadline of a bound client).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Timeouts and the per-call retry budget.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// First backoff delay.
    pub retry_min_delay: Duration,
    /// Largest backoff delay.
    pub retry_max_delay: Duration,
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// Asked right before every call that may change something (any
    /// method but GET): an HA agent's leader lease. A call it refuses is
    /// held: sent if the lease is renewed late under the same epoch, else
    /// never sent and never returning; the daemon stops the job's task as
    /// it steps down, and the next leader continues the job.
    pub gate: Option<Arc<dyn crate::lease::Gate>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry_min_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(30),
            max_retries: 4,
            gate: None,
        }
    }
}

/// A client for one cloud. Cheap to clone.
#[derive(Clone)]
pub struct CloudClient {
    inner: Arc<Inner>,
    observer: Arc<dyn CallObserver>,
    /// When every call must have ended (a job's); none for other callers,
    /// which have the request timeout and retry budget only.
    deadline: Option<Deadline>,
}

struct Inner {
    http: reqwest::Client,
    /// Cloud name, for messages.
    cloud: String,
    /// `None`: from the service catalog.
    volume_base: Option<String>,
    backup_base: Option<String>,
    region: Option<String>,
    interface: String,
    snapshot_api: ApiVersion,
    restore_api: RestoreApi,
    select_by: SelectBy,
    tokens: TokenSource,
    settings: ClientSettings,
    limiter: Option<RateLimiter>,
    /// CSBS base URL; `None`: from the service catalog.
    server_backup_base: Option<String>,
    /// CBR base URL; `None`: from the service catalog.
    cbr_base: Option<String>,
    /// Which service backs volumes up (`auto` is decided from the catalog).
    backup_service: crate::config::BackupService,
    /// ECS/Nova base URL; `None`: from the service catalog.
    compute_base: Option<String>,
    /// CSBS checkpoint deletions in flight (see [`MAX_CHECKPOINT_DELETIONS`]).
    checkpoint_deletions: Arc<tokio::sync::Semaphore>,
}

/// The certificates of a `cacert` PEM file, or why there are none.
pub fn ca_bundle(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read cacert {}: {e}", path.display()))?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            format!(
                "cacert {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            )
        })
}

impl CloudClient {
    /// Builds a client; TLS certificates are always verified, against the
    /// built-in roots and the cloud's `cacert`, and redirects are never
    /// followed (see [`crate::http`]).
    pub fn new(cloud: &Cloud, settings: ClientSettings) -> Result<Self, ApiError> {
        let setup_error = |message: String| ApiError::unsendable("build HTTP client", message);
        let mut builder = crate::http::client_builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout);
        if let Some(path) = &cloud.cacert {
            for cert in ca_bundle(path).map_err(setup_error)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| setup_error(e.to_string()))?;
        let base = |u: &Option<url::Url>| {
            u.as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_string())
        };
        let want_catalog = cloud.endpoints.volume.is_none()
            || cloud.endpoints.backup.is_none()
            || (cloud.endpoints.server_backup.is_none() && cloud.auth.has_catalog())
            || (cloud.endpoints.cbr.is_none() && cloud.auth.has_catalog())
            || (cloud.endpoints.compute.is_none() && cloud.auth.has_catalog());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                cloud: cloud.name.clone(),
                volume_base: base(&cloud.endpoints.volume),
                backup_base: base(&cloud.endpoints.backup),
                region: cloud.region.clone(),
                interface: cloud.interface.clone(),
                snapshot_api: cloud.snapshot_api,
                restore_api: cloud.restore_api,
                select_by: cloud.select_by,
                backup_service: cloud.backup_service,
                tokens: TokenSource::new(
                    &cloud.name,
                    cloud.auth.clone(),
                    cloud.project.clone(),
                    want_catalog,
                ),
                settings,
                limiter: cloud.rate_limit.map(|r| RateLimiter::new(r.interval())),
                server_backup_base: base(&cloud.endpoints.server_backup),
                cbr_base: base(&cloud.endpoints.cbr),
                compute_base: base(&cloud.endpoints.compute),
                checkpoint_deletions: Arc::new(tokio::sync::Semaphore::new(
                    MAX_CHECKPOINT_DELETIONS,
                )),
            }),
            observer: Arc::new(TraceObserver),
            deadline: None,
        })
    }

    /// The same client, reporting every attempt to `observer`.
    pub fn with_observer(&self, observer: Arc<dyn CallObserver>) -> Self {
        Self {
            observer,
            ..self.clone()
        }
    }

    /// The same client, ending every call by `deadline`.
    pub fn until(&self, deadline: Deadline) -> Self {
        Self {
            deadline: Some(deadline),
            ..self.clone()
        }
    }
}
