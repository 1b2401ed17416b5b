//! The cloud part of `vbs-agent check`: where each cloud's settings came
//! from, how it authenticates, where each secret is read from (never the
//! secret itself), and secret files others can read.

use crate::config::secret::SecretSource;
use crate::config::{AuthConfig, BackupService, Cloud, Project};

/// Prints one cloud.
pub(super) fn show(cloud: &Cloud) {
    outln!();
    outln!(
        "cloud {} (project {}, from {})",
        cloud.name,
        cloud.project,
        cloud.origin
    );
    if let Project::Name { .. } = cloud.project {
        outln!(
            "  project ID: from Keystone, which scopes the token by name and domain; \
             each ID it gives is recorded in the history (table cloud_projects)"
        );
    }
    let secrets: Vec<(&str, &SecretSource)> = match &cloud.auth {
        AuthConfig::Token { token, auth_url } => {
            match auth_url {
                Some(url) => outln!("  auth: token, service catalog from {url}"),
                None => outln!("  auth: token"),
            }
            vec![("token", token)]
        }
        AuthConfig::Password {
            auth_url,
            user,
            user_domain,
            password,
        } => {
            outln!("  auth: password, user {user} in domain {user_domain} at {auth_url}");
            vec![("password", password)]
        }
        AuthConfig::AkSk {
            access_key,
            secret_key,
        } => {
            outln!("  auth: aksk (SDK-HMAC-SHA256 signed requests)");
            vec![("access key", access_key), ("secret key", secret_key)]
        }
    };
    for (what, source) in &secrets {
        outln!("  {what} from {source}");
    }
    let catalog = format!(
        "from the Keystone catalog (region {}, interface {})",
        cloud.region.as_deref().unwrap_or("any"),
        cloud.interface
    );
    let endpoint = |url: &Option<url::Url>| url.as_ref().map_or(catalog.clone(), |u| u.to_string());
    outln!("  volume endpoint: {}", endpoint(&cloud.endpoints.volume));
    outln!("  backup endpoint: {}", endpoint(&cloud.endpoints.backup));
    match cloud.backup_service {
        BackupService::Vbs => {}
        BackupService::Cbr => outln!(
            "  backup service: cbr (volume backups in CBR disk vaults), endpoint {}",
            endpoint(&cloud.endpoints.cbr)
        ),
        BackupService::Auto => outln!(
            "  backup service: auto (CBR if the catalog lists cbr but not vbs, decided at each run), CBR endpoint {}",
            endpoint(&cloud.endpoints.cbr)
        ),
    }
    if let Some(ca) = &cloud.cacert {
        outln!("  extra CA certificates: {}", ca.display());
        if let Err(problem) = crate::api::ca_bundle(ca) {
            outln!("  warning: {problem}");
        }
    }
    for (_, source) in &secrets {
        if let Some(warning) = source.exposure() {
            outln!("  warning: {warning}");
        }
    }
}
