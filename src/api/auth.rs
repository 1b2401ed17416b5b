//! Tokens: a static token read from a file or the environment, or a
//! Keystone v3 password token scoped to the project (by ID, or by name and
//! domain, learning the ID from the token), renewed before it expires and
//! once after a 401, with the service catalog that came with it. With AK/SK
//! there is no token: each request is signed instead.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Mutex;

use super::catalog::Catalog;
use super::decode;
use super::error::{ApiError, ErrorClass};
use super::fault::FaultBody;
use super::observe::{CallObserver, CallRecord, ProjectScoped};
use super::sign;
use super::types::parse_api_time;
use crate::config::secret::{Secret, SecretSource};
use crate::config::{AuthConfig, Domain, Project};
use crate::http::{read_body, BodyError};

/// Renew a Keystone token when less than this is left of its life.
const RENEW_BEFORE: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Provides the `X-Auth-Token` value for a cloud.
pub struct TokenSource {
    /// The cloud's name, for the history.
    cloud: String,
    config: AuthConfig,
    project: Project,
    /// The project ID: configured, or from the last token scoped by name.
    project_id: std::sync::Mutex<Option<String>>,
    /// Ask Keystone for the service catalog (some endpoint is not given).
    want_catalog: bool,
    cached: Mutex<Option<Cached>>,
    /// AK/SK auth: the keys as last read (again after a 401).
    keys: Mutex<Option<(Secret, Secret)>>,
}

struct Cached {
    token: Secret,
    /// The catalog of the token answer (empty for static tokens).
    catalog: std::sync::Arc<Catalog>,
    /// `None` for static tokens: valid until the server says otherwise.
    expires_at: Option<DateTime<Utc>>,
}

impl TokenSource {
    pub fn new(cloud: &str, config: AuthConfig, project: Project, want_catalog: bool) -> Self {
        Self {
            cloud: cloud.to_string(),
            config,
            project_id: std::sync::Mutex::new(project.id().map(str::to_string)),
            project,
            want_catalog,
            cached: Mutex::new(None),
            keys: Mutex::new(None),
        }
    }

    /// Adds the credentials to a request: `X-Auth-Token`, or for AK/SK the
    /// `SDK-HMAC-SHA256` signature over method, URL, the signed headers
    /// (`Host`, `X-Project-Id`, `X-Sdk-Date`) and `body`.
    pub async fn authorize(
        &self,
        http: &reqwest::Client,
        observer: &dyn CallObserver,
        req: reqwest::RequestBuilder,
        method: &str,
        url: &url::Url,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, ApiError> {
        let AuthConfig::AkSk {
            access_key,
            secret_key,
        } = &self.config
        else {
            let token = self.token(http, observer).await?;
            return Ok(req.header("X-Auth-Token", token.expose()));
        };
        let (access_key, secret_key) = {
            let mut keys = self.keys.lock().await;
            match keys.as_ref() {
                Some(k) => k.clone(),
                None => {
                    let read = (read_secret(access_key)?, read_secret(secret_key)?);
                    *keys = Some(read.clone());
                    read
                }
            }
        };
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let date = sign::date(Utc::now());
        let headers = [
            ("host".to_string(), host),
            ("x-project-id".to_string(), self.aksk_project_id()),
            ("x-sdk-date".to_string(), date.clone()),
        ];
        let canonical = sign::canonical_request(&sign::SignedRequest {
            method,
            path: url.path(),
            query: url.query().unwrap_or(""),
            headers: &headers,
            body,
        });
        let signature = sign::signature(secret_key.expose(), &date, &canonical);
        let authorization = sign::authorization(
            access_key.expose(),
            &sign::signed_headers(&headers),
            &signature,
        );
        Ok(req
            .header(sign::DATE_HEADER, date)
            .header("X-Project-Id", self.aksk_project_id())
            .header("Authorization", authorization))
    }

    /// The project ID: the configured one, or for a project given by name
    /// the one Keystone scoped the last token to (`None` before the first).
    pub fn project_id(&self) -> Option<String> {
        self.project_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// AK/SK clouds are given by ID (the configuration refuses a name).
    fn aksk_project_id(&self) -> String {
        self.project_id().unwrap_or_default()
    }

    /// The service catalog of the current token (empty until one was
    /// obtained, and for static tokens).
    pub async fn catalog(&self) -> std::sync::Arc<Catalog> {
        self.cached
            .lock()
            .await
            .as_ref()
            .map(|c| std::sync::Arc::clone(&c.catalog))
            .unwrap_or_default()
    }

    /// A token valid for a while yet, obtaining a new one when needed.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        observer: &dyn CallObserver,
    ) -> Result<Secret, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expires_at
                .is_none_or(|exp| Utc::now() + RENEW_BEFORE < exp);
            if fresh {
                return Ok(c.token.clone());
            }
        }
        let new = self.obtain(http, observer).await?;
        let token = new.token.clone();
        *cached = Some(new);
        Ok(token)
    }

    /// Forgets the cached token (or AK/SK pair) after the server refused it (401).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
        *self.keys.lock().await = None;
    }

    async fn obtain(
        &self,
        http: &reqwest::Client,
        observer: &dyn CallObserver,
    ) -> Result<Cached, ApiError> {
        match &self.config {
            AuthConfig::Token { token, auth_url } => {
                let token = read_secret(token)?;
                let catalog = match auth_url {
                    Some(auth_url) if self.want_catalog => {
                        let url =
                            format!("{}/auth/catalog", auth_url.as_str().trim_end_matches('/'));
                        let started = Instant::now();
                        let result = token_catalog(http, &url, &token).await;
                        record(observer, "GET", &url, 200, started, &result);
                        result?
                    }
                    _ => Catalog::default(),
                };
                Ok(Cached {
                    token,
                    catalog: std::sync::Arc::new(catalog),
                    expires_at: None,
                })
            }
            AuthConfig::Password {
                auth_url,
                user,
                user_domain,
                password,
            } => {
                let password = read_secret(password)?;
                let url = format!("{}/auth/tokens", auth_url.as_str().trim_end_matches('/'));
                let started = Instant::now();
                let result = self
                    .keystone(http, observer, &url, user, user_domain, &password)
                    .await;
                record(observer, "POST", &url, 201, started, &result);
                result
            }
            AuthConfig::AkSk { .. } => Err(ApiError::unsendable(
                "obtain token",
                "AK/SK credentials sign requests; they give no token",
            )),
        }
    }

    async fn keystone(
        &self,
        http: &reqwest::Client,
        observer: &dyn CallObserver,
        url: &str,
        user: &str,
        domain: &str,
        password: &Secret,
    ) -> Result<Cached, ApiError> {
        let scope = match &self.project {
            Project::Id(id) => json!({"id": id}),
            Project::Name { name, domain } => {
                let domain = match domain {
                    Domain::Name(d) => json!({"name": d}),
                    Domain::Id(d) => json!({"id": d}),
                };
                json!({"name": name, "domain": domain})
            }
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password.expose(), "domain": {"name": domain}}}},
            "scope": {"project": scope}}});
        let call = format!("POST {}", path_of(url));
        let err = |class, status, message| ApiError::answered(&call, class, status, message);
        let mut req = http.post(url);
        if !self.want_catalog {
            req = req.query(&[("nocatalog", "true")]);
        }
        let (status, headers, text) = exchange(&call, req.json(&body)).await?;
        let token = headers
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new);
        if status != 201 && status != 200 {
            let (class, fault) = refusal(status, &text);
            let detail = fault.clone().unwrap_or_else(|| format!("HTTP {status}"));
            let message = match (class, &self.project) {
                (ErrorClass::Auth, Project::Name { name, domain }) => format!(
                    "Keystone refused user `{}` a token for project `{name}` in {domain}: \
                     {detail}; check the project's name and domain (project_domain_name), \
                     that the user has a role in it, and the password",
                    self.user_label()
                ),
                (ErrorClass::Auth, Project::Id(_)) => format!(
                    "Keystone refused the credentials for user `{}`: {detail}",
                    self.user_label()
                ),
                _ if is_server_error(status) => failed("issue a token", status, fault),
                _ => format!("Keystone could not issue a token (HTTP {status}): {detail}"),
            };
            return Err(err(class, Some(status), message));
        }
        let token = token.ok_or_else(|| {
            err(
                ErrorClass::BadAnswer,
                Some(status),
                "Keystone answer lacks the X-Subject-Token header".into(),
            )
        })?;
        let parsed =
            decode::json(&text).map_err(|e| err(ErrorClass::BadAnswer, Some(status), e.0))?;
        let project_id = parsed
            .pointer("/token/project/id")
            .and_then(|v| v.as_str())
            .filter(|id| !id.is_empty());
        match (&self.project, project_id) {
            (Project::Name { name, .. }, None) => {
                return Err(err(
                    ErrorClass::BadAnswer,
                    Some(status),
                    format!("Keystone's token for project `{name}` names no project.id"),
                ))
            }
            (Project::Id(configured), Some(id)) if !id.eq_ignore_ascii_case(configured) => {
                return Err(err(
                    ErrorClass::BadAnswer,
                    Some(status),
                    format!("Keystone scoped the token to project {id}, not {configured}"),
                ))
            }
            _ => {}
        }
        if let Some(id) = project_id {
            self.learn_project(observer, id);
        }
        let expires_at = token_expiry(&parsed);
        // Without an expiry, assume the documented 24 h and renew early.
        let expires_at = expires_at.unwrap_or_else(|| Utc::now() + chrono::TimeDelta::hours(23));
        Ok(Cached {
            token,
            catalog: std::sync::Arc::new(Catalog::from_token_body(&parsed)),
            expires_at: Some(expires_at),
        })
    }

    /// Keeps the project ID of a new token and reports it for the history.
    fn learn_project(&self, observer: &dyn CallObserver, id: &str) {
        let id = id.to_ascii_lowercase();
        *self
            .project_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id.clone());
        let (name, domain) = match &self.project {
            Project::Id(_) => (None, None),
            Project::Name { name, domain } => (Some(name.as_str()), Some(domain.value())),
        };
        observer.on_project(&ProjectScoped {
            cloud: &self.cloud,
            project_id: &id,
            name,
            domain,
        });
    }

    fn user_label(&self) -> &str {
        match &self.config {
            AuthConfig::Password { user, .. } => user,
            AuthConfig::Token { .. } => "token",
            AuthConfig::AkSk { .. } => "access key",
        }
    }
}

/// Reports one Keystone call to the observer.
fn record<T>(
    observer: &dyn CallObserver,
    method: &str,
    url: &str,
    ok_status: u16,
    started: Instant,
    result: &Result<T, ApiError>,
) {
    observer.on_call(&CallRecord {
        method,
        path: &path_of(url),
        status: result
            .as_ref()
            .map_or_else(|e| e.status, |_| Some(ok_status)),
        latency: started.elapsed(),
        class: result.as_ref().map_or_else(|e| e.class.as_str(), |_| "ok"),
        message: result.as_ref().err().map(|e| e.message.as_str()),
    });
}

/// The service catalog for a pre-issued token (`GET /v3/auth/catalog`).
async fn token_catalog(
    http: &reqwest::Client,
    url: &str,
    token: &Secret,
) -> Result<Catalog, ApiError> {
    let call = format!("GET {}", path_of(url));
    let err = |class, status, message| ApiError::answered(&call, class, status, message);
    let req = http
        .get(url)
        .header("X-Auth-Token", token.expose())
        .header("Accept", "application/json");
    let (status, _, text) = exchange(&call, req).await?;
    if status != 200 {
        let (class, fault) = refusal(status, &text);
        let what = "list the service catalog for the token";
        let message = if is_server_error(status) {
            failed(what, status, fault)
        } else {
            let detail = fault.unwrap_or_else(|| format!("HTTP {status}"));
            format!("Keystone refused to {what}: {detail}")
        };
        return Err(err(class, Some(status), message));
    }
    let body = decode::json(&text).map_err(|e| err(ErrorClass::BadAnswer, Some(status), e.0))?;
    Ok(Catalog::from_catalog_body(&body))
}

/// A Keystone call that got no answer.
fn unreachable(call: &str, e: &reqwest::Error) -> ApiError {
    let error = ApiError::transport(call, e);
    ApiError::answered(
        call,
        error.class,
        None,
        format!("Keystone unreachable: {}", error.message),
    )
}

/// A Keystone answer whose body could not be read (cut off, or too large).
fn unreadable(call: &str, status: u16, e: BodyError) -> ApiError {
    match e {
        BodyError::Transport(e) => unreachable(call, &e),
        e => ApiError::bad_answer(call, status, e.to_string()),
    }
}

/// Sends a Keystone request and reads its answer: status, headers and body.
/// A 3xx is refused, never followed, or the password would go along.
async fn exchange(
    call: &str,
    req: reqwest::RequestBuilder,
) -> Result<(u16, reqwest::header::HeaderMap, String), ApiError> {
    let resp = req.send().await.map_err(|e| unreachable(call, &e))?;
    if resp.status().is_redirection() {
        return Err(ApiError::redirected(call, "Keystone", "auth_url", &resp));
    }
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = read_body(resp)
        .await
        .map_err(|e| unreadable(call, status, e))?;
    Ok((status, headers, text))
}

/// The class of a refused Keystone call (401: the credentials) and the
/// explanation in its answer, if any.
fn refusal(status: u16, text: &str) -> (ErrorClass, Option<String>) {
    let fault = FaultBody::parse(text);
    let class = if status == 401 {
        ErrorClass::Auth
    } else {
        super::error::classify(status, &fault)
    };
    (class, fault.describe())
}

/// A 5xx: Keystone's own trouble (retried), not a refusal of the request.
fn is_server_error(status: u16) -> bool {
    (500..600).contains(&status)
}

/// The message for a Keystone call that failed on Keystone's side.
fn failed(what: &str, status: u16, detail: Option<String>) -> String {
    let detail = detail.unwrap_or_else(|| "no error details in the answer".into());
    format!("Keystone failed to {what} (HTTP {status}): {detail}")
}

/// `token.expires_at` of a Keystone token answer.
fn token_expiry(body: &serde_json::Value) -> Option<DateTime<Utc>> {
    body.pointer("/token/expires_at")
        .and_then(|x| x.as_str())
        .and_then(parse_api_time)
}

fn read_secret(source: &SecretSource) -> Result<Secret, ApiError> {
    source
        .read()
        .map_err(|e| ApiError::unreadable_credentials(e.to_string()))
}

/// The path part of a URL, for messages and events.
pub(super) fn path_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| path_and_query(&u))
        .unwrap_or_else(|_| url.to_string())
}

/// [`path_of`] for a URL already parsed.
pub(super) fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn keystone_sample_gives_its_expiry() {
        let body = crate::test_fixtures::api_sample("keystone_token_response_project_scope.json");
        let body = decode::json(&body).unwrap();
        let expiry = token_expiry(&body).expect("expires_at");
        assert_eq!(expiry, Utc.with_ymd_and_hms(2017, 6, 3, 2, 19, 49).unwrap());
        assert_eq!(token_expiry(&serde_json::json!({})), None);
    }

    /// Answers every connection on 127.0.0.1 with `status` and an empty
    /// JSON body; the URL to reach it.
    async fn answering(status: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0; 64 * 1024];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                     content-length: 2\r\nconnection: close\r\n\r\n{{}}"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}/v3")
    }

    async fn password_token(status: u16) -> ApiError {
        let password = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(password.path(), "secret").unwrap();
        let auth_url = answering(status).await;
        let source = TokenSource::new(
            "test",
            AuthConfig::Password {
                auth_url: url::Url::parse(&auth_url).unwrap(),
                user: "bot".into(),
                user_domain: "Default".into(),
                password: SecretSource::File(password.path().to_path_buf()),
            },
            Project::Id("0123456789abcdef0123456789abcdef".into()),
            false,
        );
        let http = reqwest::Client::new();
        source
            .token(&http, &super::super::TraceObserver)
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn a_keystone_5xx_is_a_failure_of_keystone_and_a_401_a_refusal() {
        for (status, class, message) in [
            (
                500,
                ErrorClass::Retryable,
                "Keystone failed to issue a token (HTTP 500): no error details in the answer",
            ),
            (
                401,
                ErrorClass::Auth,
                "Keystone refused the credentials for user `bot`: HTTP 401",
            ),
        ] {
            let e = password_token(status).await;
            assert_eq!((e.class, e.message.as_str()), (class, message));
        }
    }
}
