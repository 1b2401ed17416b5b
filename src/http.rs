//! What every outgoing HTTP client of the agent shares (the cloud's APIs,
//! Keystone, webhooks): redirects are never followed and no `Referer` is
//! sent, because a redirect to another host would carry the token, the
//! signature, the Keystone password or the webhook URL's secret along.

use url::Url;

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
