//! `metrics_listen`: where the metrics and health endpoints listen.
//!
//! Only loopback addresses are accepted. The endpoints have no
//! authentication and their series name policies and volumes, so a scrape
//! from another host goes through something that adds TLS and
//! authentication (a reverse proxy, or the Prometheus agent on this host).

use std::net::SocketAddr;

use super::path::FieldPath;
use super::report::Report;

/// Parses and checks `metrics_listen`, reporting what to fix.
pub(crate) fn metrics_listen(text: Option<&str>, report: &mut Report<'_>) -> Option<SocketAddr> {
    let text = text?;
    let path = FieldPath::root().key("metrics_listen");
    match check(text) {
        Ok(addr) => Some(addr),
        Err(message) => {
            report.value(&path, message);
            None
        }
    }
}

fn check(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| {
        format!(
            "metrics_listen `{text}` is not an address and port; write 127.0.0.1:9464 or [::1]:9464"
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "metrics_listen {addr} is not a loopback address; the metrics endpoint has no \
             authentication, so it listens on 127.0.0.1 or [::1] only (scrape from elsewhere \
             through a reverse proxy with TLS and authentication)"
        ));
    }
    if addr.port() == 0 {
        return Err(format!(
            "metrics_listen {addr} has port 0; give the fixed port Prometheus scrapes, e.g. 127.0.0.1:9464"
        ));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn loopback_addresses_with_a_port_are_accepted() {
        assert_eq!(
            check("127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(check("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
    }

    #[test]
    fn other_addresses_are_refused_with_what_to_write() {
        let e = check("0.0.0.0:9464").unwrap_err();
        assert!(e.contains("not a loopback address"), "{e}");
        let e = check("localhost").unwrap_err();
        assert!(e.contains("write 127.0.0.1:9464"), "{e}");
        let e = check("127.0.0.1:0").unwrap_err();
        assert!(e.contains("port 0"), "{e}");
    }
}
