//! What every outgoing HTTP client of the agent shares (the cloud's APIs,
//! Keystone, webhooks): redirects are never followed and no `Referer` is
//! sent, because a redirect to another host would carry the token, the
//! signature, the Keystone password or the webhook URL's secret along; and
//! an answer's body is read only up to a bound.

use url::Url;

/// Largest answer body the agent reads. A Cinder list page of 100 backups
/// is a few hundred KiB; a body near this bound is no answer to trust.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// [`MAX_BODY_BYTES`] as operators read it in messages.
pub const MAX_BODY_TEXT: &str = "16 MiB";

/// A client builder with redirects off, no `Referer` and the agent's
/// `User-Agent`.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("vbs-agent/", env!("CARGO_PKG_VERSION")))
}

/// Where a 3xx answer points, relative `Location`s resolved against the
/// request, without query or fragment (which may hold someone's secret);
/// `None` for other answers and for a 3xx without a usable `Location`.
pub fn redirect_target(resp: &reqwest::Response) -> Option<Url> {
    if !resp.status().is_redirection() {
        return None;
    }
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)?
        .to_str()
        .ok()?;
    let mut target = resp.url().join(location).ok()?;
    target.set_query(None);
    target.set_fragment(None);
    Some(target)
}

/// `scheme://host[:port]` of a URL: webhook URLs often carry a token in
/// their path or query, which must not reach the logs or the history.
pub fn origin_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the answer's body is {0} bytes, more than the {MAX_BODY_TEXT} the agent reads; not read"
    )]
    Declared(u64),
    #[error(
        "the answer's body is longer than the {MAX_BODY_TEXT} the agent reads; reading stopped there"
    )]
    Longer,
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// The body as text (invalid UTF-8 replaced), read chunk by chunk and
/// given up at [`MAX_BODY_BYTES`], so a huge answer never sits in memory
/// whole.
pub async fn read_body(mut resp: reqwest::Response) -> Result<String, BodyError> {
    if let Some(declared) = resp.content_length() {
        if declared > MAX_BODY_BYTES as u64 {
            return Err(BodyError::Declared(declared));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::Longer);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8(body)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}
