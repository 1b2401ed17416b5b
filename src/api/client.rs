//! The typed client for one cloud: snapshots (EVS/Cinder), backups
//! (VBS/Cinder), with authentication, retries and pagination.
//!
//! Retrying is per HTTP call and bounded (a small budget with exponential
//! backoff and jitter, honouring `Retry-After` up to [`MAX_RETRY_AFTER`]);
//! polling a resource until it settles is the engine's business. A create
//! call whose outcome is unknown (the request may have reached the server)
//! is never repeated here. A client bound to a job's [`Deadline`] ends
//! every attempt and every retry wait by it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde_json::{json, Value};

use super::auth::{path_of, TokenSource};
use super::catalog;
use super::deadline::Deadline;
use super::decode::{self, DecodeError, Page};
use super::error::{retry_after, ApiError, ErrorClass};
use super::limit::RateLimiter;
use super::observe::{CallObserver, CallRecord, TraceObserver};
use super::types::{Backup, BackupSummary, Share, Snapshot};
use crate::bounded;
use crate::config::{ApiVersion, Cloud};
use crate::http::{read_body, BodyError};

mod csbs;
pub use csbs::MAX_CHECKPOINT_DELETIONS;

/// Page size for list calls.
const PAGE_SIZE: usize = 100;
/// Upper bound on pages followed, against a server that never stops.
const MAX_PAGES: usize = 10_000;
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
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry_min_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(30),
            max_retries: 4,
        }
    }
}

/// What to snapshot.
#[derive(Debug, Clone)]
pub struct NewSnapshot<'a> {
    pub volume_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub force: bool,
}

/// What to back up.
#[derive(Debug, Clone)]
pub struct NewBackup<'a> {
    pub volume_id: &'a str,
    pub snapshot_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub force: bool,
    /// Ask for an incremental backup (Cinder refuses it without an earlier
    /// available backup; VBS decides by itself and ignores it).
    pub incremental: bool,
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
    tokens: TokenSource,
    settings: ClientSettings,
    limiter: Option<RateLimiter>,
    /// CSBS base URL; `None`: from the service catalog.
    server_backup_base: Option<String>,
    /// CSBS checkpoint deletions in flight (see [`MAX_CHECKPOINT_DELETIONS`]).
    checkpoint_deletions: Arc<tokio::sync::Semaphore>,
}

#[derive(Clone, Copy)]
enum Service {
    Volume,
    Backup,
    ServerBackup,
}

impl Service {
    /// The name in a [`CATALOG_SCHEME`] URL and the policy file.
    fn name(self) -> &'static str {
        match self {
            Service::Volume => "volume",
            Service::Backup => "backup",
            Service::ServerBackup => "server_backup",
        }
    }

    fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Volume => catalog::VOLUME_TYPES,
            Service::Backup => catalog::BACKUP_TYPES,
            Service::ServerBackup => catalog::SERVER_BACKUP_TYPES,
        }
    }
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

/// URLs of services whose base comes from the catalog are built as
/// `catalog://SERVICE/v2/…` and resolved at each attempt, once a token (and
/// with it the catalog) is at hand.
const CATALOG_SCHEME: &str = "catalog";

/// Stands for the project ID in URLs built before Keystone named it (a
/// project given by name); replaced at each attempt, once a token is at hand.
const PROJECT_FROM_TOKEN: &str = "project-id-from-keystone";

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
            || (cloud.endpoints.server_backup.is_none() && cloud.auth.has_catalog());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                cloud: cloud.name.clone(),
                volume_base: base(&cloud.endpoints.volume),
                backup_base: base(&cloud.endpoints.backup),
                region: cloud.region.clone(),
                interface: cloud.interface.clone(),
                snapshot_api: cloud.snapshot_api,
                tokens: TokenSource::new(
                    &cloud.name,
                    cloud.auth.clone(),
                    cloud.project.clone(),
                    want_catalog,
                ),
                settings,
                limiter: cloud.rate_limit.map(|r| RateLimiter::new(r.interval())),
                server_backup_base: base(&cloud.endpoints.server_backup),
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

    /// `POST /{v}/{project}/snapshots` (v2 unless the cloud says v3).
    pub async fn create_snapshot(&self, s: &NewSnapshot<'_>) -> Result<Snapshot, ApiError> {
        let body = json!({"snapshot": {
            "volume_id": s.volume_id, "name": s.name, "description": s.description,
            "force": s.force, "metadata": {"created_by": "vbs-agent"}}});
        let url = self.url(
            Service::Volume,
            self.inner.snapshot_api.segment(),
            "snapshots",
        );
        self.call(Method::POST, url, Some(body), decode::snapshot)
            .await
    }

    /// `GET /{v}/{project}/snapshots/{id}`.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, ApiError> {
        let url = self.url(
            Service::Volume,
            self.inner.snapshot_api.segment(),
            &format!("snapshots/{id}"),
        );
        self.call(Method::GET, url, None, |body| {
            decode::about("snapshot", id, decode::snapshot(body))
        })
        .await
    }

    /// `DELETE /{v}/{project}/snapshots/{id}` (202; the snapshot goes
    /// `deleting`, then disappears).
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), ApiError> {
        let url = self.url(
            Service::Volume,
            self.inner.snapshot_api.segment(),
            &format!("snapshots/{id}"),
        );
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Snapshots of `volume_id` named exactly `name`, across all pages.
    pub async fn find_snapshots(
        &self,
        name: &str,
        volume_id: &str,
    ) -> Result<Vec<Snapshot>, ApiError> {
        let url = self.url(
            Service::Volume,
            self.inner.snapshot_api.segment(),
            "snapshots/detail",
        );
        let found = self
            .list_all(
                url,
                &[("name", name), ("volume_id", volume_id)],
                decode::snapshots,
            )
            .await?;
        Ok(found
            .into_iter()
            .filter(|s| {
                s.name.as_deref() == Some(name)
                    && s.volume_id.as_deref().is_none_or(|v| v == volume_id)
            })
            .collect())
    }

    /// Shares `backup_id` with each project
    /// (`POST /v2/{project}/os-vendor-backup-sharing`).
    pub async fn share_backup(
        &self,
        backup_id: &str,
        to: &[String],
    ) -> Result<Vec<Share>, ApiError> {
        let url = self.url(Service::Backup, "v2", "os-vendor-backup-sharing");
        let body = json!({"shared": {"backup_id": backup_id, "to_project_ids": to}});
        self.call(Method::POST, url, Some(body), decode::shares)
            .await
    }

    /// Backup shares matching `filters`
    /// (`GET /v2/{project}/os-vendor-backup-sharing/detail`). With `limit`
    /// or `offset` among the filters, that one page; otherwise every page.
    pub async fn shares(&self, filters: &[(&str, &str)]) -> Result<Vec<Share>, ApiError> {
        let url = self.url(Service::Backup, "v2", "os-vendor-backup-sharing/detail");
        if filters.iter().any(|(k, _)| *k == "limit" || *k == "offset") {
            return self
                .call(Method::GET, with_query(&url, filters), None, decode::shares)
                .await;
        }
        let limit = PAGE_SIZE.to_string();
        let mut all = Vec::new();
        for page_no in 0..MAX_PAGES {
            let offset = (page_no * PAGE_SIZE).to_string();
            let mut query = filters.to_vec();
            query.extend([("limit", limit.as_str()), ("offset", offset.as_str())]);
            let page = self
                .call(Method::GET, with_query(&url, &query), None, decode::shares)
                .await?;
            let last = page.len() < PAGE_SIZE;
            all.extend(page);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Every snapshot of `volume_id` with its details, across all pages.
    pub async fn snapshots_of_volume(&self, volume_id: &str) -> Result<Vec<Snapshot>, ApiError> {
        let url = self.url(
            Service::Volume,
            self.inner.snapshot_api.segment(),
            "snapshots/detail",
        );
        self.list_all(url, &[("volume_id", volume_id)], decode::snapshots)
            .await
    }

    /// `POST /v3/{project}/backups` with both volume and snapshot.
    pub async fn create_backup(&self, b: &NewBackup<'_>) -> Result<BackupSummary, ApiError> {
        let mut backup = json!({
            "volume_id": b.volume_id, "snapshot_id": b.snapshot_id, "name": b.name,
            "description": b.description, "force": b.force});
        if b.incremental {
            backup["incremental"] = Value::Bool(true);
        }
        let url = self.url(Service::Backup, "v3", "backups");
        self.call(
            Method::POST,
            url,
            Some(json!({ "backup": backup })),
            decode::backup_created,
        )
        .await
    }

    /// `GET /v3/{project}/backups/{id}`.
    pub async fn backup(&self, id: &str) -> Result<Backup, ApiError> {
        let url = self.url(Service::Backup, "v3", &format!("backups/{id}"));
        self.call(Method::GET, url, None, |body| {
            decode::about("backup", id, decode::backup(body))
        })
        .await
    }

    /// `DELETE /v3/{project}/backups/{id}` (202; the backup goes `deleting`,
    /// then disappears).
    pub async fn delete_backup(&self, id: &str) -> Result<(), ApiError> {
        let url = self.url(Service::Backup, "v3", &format!("backups/{id}"));
        self.call(Method::DELETE, url, None, |_| Ok(())).await
    }

    /// Every backup of `volume_id` with its details
    /// (`GET /v2/{project}/backups/detail?volume_id=…`), across all pages.
    pub async fn backups_of_volume(&self, volume_id: &str) -> Result<Vec<Backup>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups/detail");
        self.list_all(url, &[("volume_id", volume_id)], decode::backups)
            .await
    }

    /// Backups of `volume_id` named exactly `name`, from the summary list
    /// (`GET /v2/{project}/backups?name=…&volume_id=…`), across all pages.
    pub async fn find_backups(
        &self,
        name: &str,
        volume_id: &str,
    ) -> Result<Vec<BackupSummary>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups");
        let found = self
            .list_all(
                url,
                &[("name", name), ("volume_id", volume_id)],
                decode::backup_summaries,
            )
            .await?;
        Ok(found
            .into_iter()
            .filter(|b| b.name.as_deref() == Some(name))
            .collect())
    }

    /// The backup summary list (`GET /v2/{project}/backups`) with the
    /// vendor's filters (`name`, `status`, `volume_id`, as the cloud matches
    /// them), following `backups_links` across every page; at most `max`
    /// backups when given.
    pub async fn backup_summaries(
        &self,
        filters: &[(&str, &str)],
        max: Option<usize>,
    ) -> Result<Vec<BackupSummary>, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups");
        self.list_up_to(url, filters, max, decode::backup_summaries)
            .await
    }

    /// Whether `volume_id` has at least one `available` backup (the parent an
    /// incremental backup needs).
    pub async fn has_available_backup(&self, volume_id: &str) -> Result<bool, ApiError> {
        let url = self.url(Service::Backup, "v2", "backups");
        let url = with_query(
            &url,
            &[
                ("volume_id", volume_id),
                ("status", "available"),
                ("limit", "1"),
            ],
        );
        let page = self
            .call(Method::GET, url, None, decode::backup_summaries)
            .await?;
        Ok(!page.items.is_empty())
    }

    fn url(&self, service: Service, version: &str, tail: &str) -> String {
        let base = match service {
            Service::Volume => &self.inner.volume_base,
            Service::Backup => &self.inner.backup_base,
            Service::ServerBackup => &self.inner.server_backup_base,
        };
        let base = base
            .clone()
            .unwrap_or_else(|| format!("{CATALOG_SCHEME}://{}", service.name()));
        let project = self.inner.tokens.project_id();
        let project = project.as_deref().unwrap_or(PROJECT_FROM_TOKEN);
        format!("{base}/{version}/{project}/{tail}")
    }

    /// The URL with the project ID of the current token in place of
    /// [`PROJECT_FROM_TOKEN`], and a `catalog://SERVICE/…` base replaced by
    /// the service's base from the token's catalog.
    async fn resolve(&self, url: &str) -> Result<String, ApiError> {
        let project_id = self.inner.tokens.project_id().unwrap_or_default();
        let url = if project_id.is_empty() {
            url.to_string()
        } else {
            url.replace(PROJECT_FROM_TOKEN, &project_id)
        };
        let url = url.as_str();
        let found = [Service::Volume, Service::Backup, Service::ServerBackup]
            .into_iter()
            .find_map(|service| {
                let prefix = format!("{CATALOG_SCHEME}://{}/", service.name());
                url.strip_prefix(&prefix).map(|tail| (service, tail))
            });
        let Some((service, tail)) = found else {
            return Ok(url.to_string());
        };
        let name = service.name();
        let inner = &self.inner;
        let catalog = inner.tokens.catalog().await;
        let types = service.catalog_types();
        let base = catalog
            .base_url(types, inner.region.as_deref(), &inner.interface, &project_id)
            .ok_or_else(|| {
                ApiError::unsendable(
                    format!("find the {name} endpoint"),
                    format!(
                        "the Keystone service catalog has no {name} endpoint (types {}) on interface {} in {}; \
                         set clouds.{}.endpoints.{name}, or fix region/interface",
                        types.join(", "),
                        inner.interface,
                        inner
                            .region
                            .as_deref()
                            .map_or_else(|| "any region".to_string(), |r| format!("region {r}")),
                        inner.cloud,
                    ),
                )
            })?;
        Ok(format!("{base}/{tail}"))
    }

    /// Follows pages by rebuilding each next URL from its `marker`.
    async fn list_all<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        self.list_up_to(url, filters, None, decode).await
    }

    /// [`Self::list_all`], stopping once `max` items are in (pages are then
    /// no larger than `max`).
    async fn list_up_to<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        max: Option<usize>,
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        let max = max.unwrap_or(usize::MAX);
        let limit = PAGE_SIZE.min(max).to_string();
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            if items.len() >= max {
                break;
            }
            let mut query = filters.to_vec();
            query.push(("limit", &limit));
            if let Some(m) = &marker {
                query.push(("marker", m));
            }
            let page = self
                .call(Method::GET, with_query(&url, &query), None, decode)
                .await?;
            items.extend(page.items);
            match page.next_marker {
                Some(m) if seen.insert(m.clone()) => marker = Some(m),
                _ => break,
            }
        }
        items.truncate(max);
        Ok(items)
    }

    /// One logical call: attempts with retries where safe.
    async fn call<T>(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        decode: impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        let s = &self.inner.settings;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(s.retry_min_delay)
            .with_max_delay(s.retry_max_delay)
            .with_max_times(s.max_retries)
            .with_jitter();
        let idempotent = method != Method::POST;
        (|| self.bounded_attempt(&method, &url, body.as_ref(), &decode))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &ApiError| {
                matches!(e.class, ErrorClass::Retryable | ErrorClass::BadAnswer)
                    && (idempotent || e.not_processed)
            })
            .adjust(|e: &ApiError, backoff: Option<Duration>| self.next_wait(e, backoff?))
            .await
    }

    /// The wait before trying again: the backoff's, or the server's
    /// `Retry-After` (at most [`MAX_RETRY_AFTER`]) when longer; `None`, to
    /// give up now, when the next try could not start before the deadline.
    fn next_wait(&self, e: &ApiError, backoff: Duration) -> Option<Duration> {
        let wait = e
            .retry_after
            .map_or(backoff, |ra| ra.min(MAX_RETRY_AFTER).max(backoff));
        let now = tokio::time::Instant::now();
        match &self.deadline {
            Some(deadline) if !deadline.allows_wait(now, wait) => None,
            _ => Some(wait),
        }
    }

    /// One attempt; on a 401, one fresh token and one more attempt. Cut off
    /// at the deadline when the client has one (the token, a rate-limit slot
    /// and the whole answer body included).
    async fn bounded_attempt<T>(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        decode: &impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        let attempt = async {
            match self.attempt(method, url, body, decode).await {
                Err(e) if e.class == ErrorClass::Auth && e.status == Some(401) => {
                    self.inner.tokens.invalidate().await;
                    self.attempt(method, url, body, decode).await
                }
                other => other,
            }
        };
        let Some(deadline) = &self.deadline else {
            return attempt.await;
        };
        let started = tokio::time::Instant::now();
        match tokio::time::timeout_at(deadline.for_call(started), attempt).await {
            Ok(result) => result,
            Err(_) => Err(self.cut_off(method, url, started.elapsed())),
        }
    }

    /// The error of an attempt the deadline ended, reported like any other.
    fn cut_off(&self, method: &Method, url: &str, latency: Duration) -> ApiError {
        let path = path_of(url);
        let error = ApiError::cut_off(format!("{method} {path}"));
        self.observer.on_call(&CallRecord {
            method: method.as_str(),
            path: &path,
            status: None,
            latency,
            class: error.class.as_str(),
            message: Some(&error.message),
        });
        error
    }

    async fn attempt<T>(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        decode: &impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        let inner = &self.inner;
        if let Some(limiter) = &inner.limiter {
            limiter.acquire().await;
        }
        // Serializing a `Value` cannot fail.
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        // Signing (AK/SK) needs the final URL, so the catalog is consulted
        // first; with password auth the catalog comes with the token.
        if url.starts_with(CATALOG_SCHEME) || url.contains(PROJECT_FROM_TOKEN) {
            inner
                .tokens
                .token(&inner.http, self.observer.as_ref())
                .await?;
        }
        let resolved = self.resolve(url).await?;
        let url = resolved.as_str();
        let parsed = url::Url::parse(url).map_err(|e| {
            ApiError::unsendable(format!("{method} {url}"), format!("bad URL: {e}"))
        })?;
        let mut req = inner
            .http
            .request(method.clone(), parsed.clone())
            .header("Accept", "application/json");
        if body.is_some() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone());
        }
        req = inner
            .tokens
            .authorize(
                &inner.http,
                self.observer.as_ref(),
                req,
                method.as_str(),
                &parsed,
                &bytes,
            )
            .await?;
        let path = path_of(url);
        let call = format!("{method} {path}");
        let started = Instant::now();
        let (status, result) = match req.send().await {
            Err(e) => (None, Err(ApiError::transport(&call, &e))),
            Ok(resp) if resp.status().is_redirection() => (
                Some(resp.status().as_u16()),
                Err(ApiError::redirected(
                    &call,
                    "the API",
                    "the endpoint URL",
                    &resp,
                )),
            ),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers());
                let result = match read_body(resp).await {
                    Err(BodyError::Transport(e)) => Err(ApiError::transport(&call, &e)),
                    Err(e) => Err(ApiError::bad_answer(&call, status, e.to_string())),
                    Ok(text) if (200..300).contains(&status) => decode(&text).map_err(|e| {
                        ApiError::bad_answer(&call, status, format!("bad answer: {e}"))
                    }),
                    Ok(text) => Err(ApiError::status(&call, status, &text, retry_after)),
                };
                (Some(status), result)
            }
        };
        // Error pages and decoding errors quote the answer, which may be huge.
        let result = result.map_err(|mut e| {
            e.message = bounded::message_owned(e.message);
            e
        });
        let err = result.as_ref().err();
        self.observer.on_call(&CallRecord {
            method: method.as_str(),
            path: &path,
            status,
            latency: started.elapsed(),
            class: err.map_or("ok", |e| e.class.as_str()),
            message: err.map(|e| e.message.as_str()),
        });
        result
    }
}

fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}
