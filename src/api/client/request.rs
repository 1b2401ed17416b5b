//! Request plumbing shared by every call: service URLs (configured or from
//! the catalog), pagination, the retry loop, the deadline, and one attempt
//! with its authorization, classification and report to the observer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::Method;
use serde_json::Value;

use super::{CloudClient, MAX_RETRY_AFTER};
use crate::api::auth::{path_and_query, path_of};
use crate::api::catalog;
use crate::api::decode::{DecodeError, Page};
use crate::api::error::{retry_after, ApiError, ErrorClass};
use crate::api::observe::CallRecord;
use crate::bounded;
use crate::http::{read_body, BodyError};
use crate::lease::Gate;

/// Page size for list calls.
pub(super) const PAGE_SIZE: usize = 100;
/// Upper bound on pages followed, against a server that never stops.
pub(super) const MAX_PAGES: usize = 10_000;

/// URLs of services whose base comes from the catalog are built as
/// `catalog://SERVICE/v2/…` and resolved at each attempt, once a token (and
/// with it the catalog) is at hand.
const CATALOG_SCHEME: &str = "catalog";

/// Stands for the project ID in URLs built before Keystone named it (a
/// project given by name); replaced at each attempt, once a token is at hand.
const PROJECT_FROM_TOKEN: &str = "project-id-from-keystone";

/// The service a URL belongs to.
#[derive(Clone, Copy)]
pub(super) enum Service {
    Volume,
    Backup,
    ServerBackup,
    /// CBR (`/v3`).
    Cbr,
    /// ECS (`/v1`) and Nova (`/v2.1`).
    Compute,
}

impl Service {
    const ALL: [Service; 5] = [
        Service::Volume,
        Service::Backup,
        Service::ServerBackup,
        Service::Cbr,
        Service::Compute,
    ];

    /// The name in a [`CATALOG_SCHEME`] URL and the policy file.
    fn name(self) -> &'static str {
        match self {
            Service::Volume => "volume",
            Service::Backup => "backup",
            Service::ServerBackup => "server_backup",
            Service::Cbr => "cbr",
            Service::Compute => "compute",
        }
    }

    fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Volume => catalog::VOLUME_TYPES,
            Service::Backup => catalog::BACKUP_TYPES,
            Service::ServerBackup => catalog::SERVER_BACKUP_TYPES,
            Service::Cbr => catalog::CBR_TYPES,
            Service::Compute => catalog::COMPUTE_TYPES,
        }
    }
}

impl CloudClient {
    pub(super) fn url(&self, service: Service, version: &str, tail: &str) -> String {
        let base = match service {
            Service::Volume => &self.inner.volume_base,
            Service::Backup => &self.inner.backup_base,
            Service::ServerBackup => &self.inner.server_backup_base,
            Service::Cbr => &self.inner.cbr_base,
            Service::Compute => &self.inner.compute_base,
        };
        let project = self.inner.tokens.project_id();
        let project = project.as_deref().unwrap_or(PROJECT_FROM_TOKEN);
        match base {
            Some(base) => format!("{base}/{version}/{project}/{tail}"),
            None => format!(
                "{CATALOG_SCHEME}://{}/{version}/{project}/{tail}",
                service.name()
            ),
        }
    }

    /// The URL with the project ID of the current token in place of
    /// [`PROJECT_FROM_TOKEN`], and a `catalog://SERVICE/…` base replaced by
    /// the service's base from the token's catalog.
    pub(super) async fn resolve(&self, url: &str) -> Result<String, ApiError> {
        let url = if url.contains(PROJECT_FROM_TOKEN) {
            match self.inner.tokens.project_id().filter(|p| !p.is_empty()) {
                Some(project_id) => url.replace(PROJECT_FROM_TOKEN, &project_id),
                None => url.to_string(),
            }
        } else {
            url.to_string()
        };
        // Most URLs have a configured base: no catalog to consult.
        let Some(rest) = url
            .strip_prefix(CATALOG_SCHEME)
            .and_then(|r| r.strip_prefix("://"))
        else {
            return Ok(url);
        };
        let found = Service::ALL.into_iter().find_map(|service| {
            rest.strip_prefix(service.name())
                .and_then(|r| r.strip_prefix('/'))
                .map(|tail| (service, tail))
        });
        let Some((service, tail)) = found else {
            return Ok(url);
        };
        let project_id = self.inner.tokens.project_id().unwrap_or_default();
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
    pub(super) async fn list_all<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        self.list_up_to(url, filters, None, decode).await
    }

    /// [`Self::list_all`], keeping only the items `keep` accepts: clouds
    /// apply list filters loosely (a name as a prefix, an unknown filter
    /// ignored), so callers test again what they asked for.
    pub(super) async fn list_matching<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, ApiError> {
        let found = self.list_all(url, filters, decode).await?;
        Ok(found.into_iter().filter(|item| keep(item)).collect())
    }

    /// [`Self::list_all`], stopping once `max` items are in (pages are then
    /// no larger than `max`).
    pub(super) async fn list_up_to<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        max: Option<usize>,
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        self.list_paged(url, filters, max, PAGE_SIZE, decode).await
    }

    /// The paging loop of every marker-paged list: pages of `page_size`
    /// (the `limit`), each starting after the page's `next_marker`, until
    /// there is none, it repeats or `max` items are in. A short page does
    /// not end the list by itself: a cloud whose page cap is below the
    /// `limit` asked for sends full pages of its own size, with next links.
    pub(super) async fn list_paged<T>(
        &self,
        url: String,
        filters: &[(&str, &str)],
        max: Option<usize>,
        page_size: usize,
        decode: fn(&str) -> Result<Page<T>, DecodeError>,
    ) -> Result<Vec<T>, ApiError> {
        let max = max.unwrap_or(usize::MAX);
        let limit = page_size.min(max).to_string();
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

    /// One logical call: attempts with retries where safe. A POST is not
    /// repeated unless the server certainly did not act on it (it may
    /// create something); see [`Self::call_reading`] for one that only reads.
    pub(super) async fn call<T>(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        decode: impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        let idempotent = method != Method::POST;
        self.call_retrying(method, url, body, idempotent, decode)
            .await
    }

    /// A POST that only reads (a tag filter `action`), retried on transient
    /// errors like a GET: sending it twice changes nothing.
    pub(super) async fn call_reading<T>(
        &self,
        url: String,
        body: Value,
        decode: impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        self.call_retrying(Method::POST, url, Some(body), true, decode)
            .await
    }

    /// Attempts with backoff; errors of a call that is not `idempotent` are
    /// retried only when the server certainly did not act on it.
    async fn call_retrying<T>(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        idempotent: bool,
        decode: impl Fn(&str) -> Result<T, DecodeError>,
    ) -> Result<T, ApiError> {
        let s = &self.inner.settings;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(s.retry_min_delay)
            .with_max_delay(s.retry_max_delay)
            .with_max_times(s.max_retries)
            .with_jitter();
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
        let path = path_and_query(&parsed);
        // What the call was, for error messages only.
        let call = || format!("{method} {path}");
        if *method != Method::GET {
            if let Some(gate) = &inner.settings.gate {
                through_gate(gate.as_ref(), &call()).await;
            }
        }
        let started = Instant::now();
        let (status, result) = match req.send().await {
            Err(e) => (None, Err(ApiError::transport(&call(), &e))),
            Ok(resp) if resp.status().is_redirection() => (
                Some(resp.status().as_u16()),
                Err(ApiError::redirected(
                    &call(),
                    "the API",
                    "the endpoint URL",
                    &resp,
                )),
            ),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = retry_after(resp.headers());
                let result = match read_body(resp).await {
                    Err(BodyError::Transport(e)) => Err(ApiError::transport(&call(), &e)),
                    Err(e) => Err(ApiError::bad_answer(&call(), status, e.to_string())),
                    Ok(text) if (200..300).contains(&status) => decode(&text).map_err(|e| {
                        ApiError::bad_answer(&call(), status, format!("bad answer: {e}"))
                    }),
                    Ok(text) => Err(ApiError::status(&call(), status, &text, retry_after)),
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

/// How often a call held at a closed gate looks at it again.
const GATE_LOOK_EVERY: Duration = Duration::from_millis(100);

/// Returns when a mutating call may be sent: at once while the leader
/// lease lasts. Past its deadline the call is held, and sent after all
/// only if the gate opens again under the same epoch (a renewal that was
/// under way got through late: the lease was never lost, nobody else
/// led). Otherwise it never returns: the daemon stops the job's task as
/// it steps down, and the next leader continues the job.
async fn through_gate(gate: &dyn Gate, call: &str) {
    if gate.permits() {
        return;
    }
    let epoch = gate.epoch();
    tracing::warn!(
        call = %call,
        ?gate,
        "held, not sent: this agent's leader lease ran out; sent only if a renewal under way still gets through, else the next leader continues the job"
    );
    loop {
        tokio::time::sleep(GATE_LOOK_EVERY).await;
        // `permits` first: a lease taken anew stores its epoch before its
        // deadline, so a gate seen open under a new epoch is seen as such.
        let open = gate.permits();
        if gate.epoch() != epoch {
            std::future::pending::<()>().await;
        }
        if open {
            tracing::info!(call = %call, "the leader lease was renewed late: sent after all");
            return;
        }
    }
}

pub(super) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            u.query_pairs_mut().extend_pairs(pairs);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A gate the test opens and closes, under an epoch it sets.
    #[derive(Debug)]
    struct FakeGate(Mutex<(bool, i64)>);

    impl FakeGate {
        fn set(&self, open: bool, epoch: i64) {
            *self.0.lock().unwrap() = (open, epoch);
        }
    }

    impl Gate for FakeGate {
        fn permits(&self) -> bool {
            self.0.lock().unwrap().0
        }

        fn epoch(&self) -> i64 {
            self.0.lock().unwrap().1
        }
    }

    /// Whether the call gets through the gate within an hour (paused
    /// clock), `change` applied a second after it was held.
    async fn through_within_an_hour(start: (bool, i64), change: (bool, i64)) -> bool {
        let gate = std::sync::Arc::new(FakeGate(Mutex::new(start)));
        let changer = std::sync::Arc::clone(&gate);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            changer.set(change.0, change.1);
        });
        tokio::time::timeout(
            Duration::from_secs(3600),
            through_gate(gate.as_ref(), "POST /x"),
        )
        .await
        .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_gate_lets_the_call_through() {
        assert!(through_within_an_hour((true, 3), (true, 3)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_opened_again_under_the_same_epoch_lets_the_held_call_through() {
        assert!(through_within_an_hour((false, 3), (true, 3)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_that_stays_closed_never_lets_the_call_through() {
        assert!(!through_within_an_hour((false, 3), (false, 3)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_opened_under_another_epoch_never_lets_the_held_call_through() {
        assert!(!through_within_an_hour((false, 3), (true, 4)).await);
        assert!(!through_within_an_hour((false, 3), (false, 0)).await);
    }
}
