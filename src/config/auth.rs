//! A cloud's `auth` block: the fields each auth type takes, and the three
//! ways to give each of its secrets.

use std::path::Path;

use super::checks::{self, UrlRole};
use super::model::AuthConfig;
use super::path::FieldPath;
use super::raw::RawAuth;
use super::report::Report;
use super::secret::SecretSource;
use super::validate::{ok_or_report, required, resolve};

const PASSWORD_FIELDS: &[&str] = &[
    "type",
    "auth_url",
    "user",
    "user_domain",
    "password_file",
    "password_env",
    "password_credential",
];
const TOKEN_FIELDS: &[&str] = &[
    "type",
    "auth_url",
    "token_file",
    "token_env",
    "token_credential",
];
const AKSK_FIELDS: &[&str] = &[
    "type",
    "access_key_file",
    "access_key_env",
    "access_key_credential",
    "secret_key_file",
    "secret_key_env",
    "secret_key_credential",
];

/// The `auth` block written inline, checked for its type.
pub(super) fn auth(
    raw: &RawAuth,
    path: &FieldPath,
    allow_http: bool,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<AuthConfig> {
    let kind = required(&raw.kind, path, "type", "password, token or aksk", report)?;
    let fields: [(&str, &Option<String>); 15] = [
        ("auth_url", &raw.auth_url),
        ("user", &raw.user),
        ("user_domain", &raw.user_domain),
        ("password_file", &raw.password_file),
        ("password_env", &raw.password_env),
        ("password_credential", &raw.password_credential),
        ("token_file", &raw.token_file),
        ("token_env", &raw.token_env),
        ("token_credential", &raw.token_credential),
        ("access_key_file", &raw.access_key_file),
        ("access_key_env", &raw.access_key_env),
        ("access_key_credential", &raw.access_key_credential),
        ("secret_key_file", &raw.secret_key_file),
        ("secret_key_env", &raw.secret_key_env),
        ("secret_key_credential", &raw.secret_key_credential),
    ];
    let allowed = match kind {
        "password" => PASSWORD_FIELDS,
        "token" => TOKEN_FIELDS,
        "aksk" => AKSK_FIELDS,
        other => {
            report.value(
                &path.key("type"),
                format!("unknown auth type \"{other}\" (supported: password, token, aksk)"),
            );
            return None;
        }
    };
    for (field, value) in fields {
        if value.is_some() && !allowed.contains(&field) {
            report.key(
                &path.key(field),
                format!(
                    "`{field}` does not apply to auth type {kind} (fields for {kind}: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
    // Each secret is given by one of `{what}_file`, `{what}_env` and
    // `{what}_credential`.
    let given = |field: String| {
        fields
            .iter()
            .find(|(f, _)| *f == field)
            .map_or(&None, |(_, v)| *v)
    };
    let mut secret = |what: &str| {
        secret(
            SecretFields {
                needed_by: &format!("{kind} auth"),
                what,
                file: given(format!("{what}_file")),
                env: given(format!("{what}_env")),
                credential: given(format!("{what}_credential")),
            },
            path,
            base_dir,
            report,
        )
    };
    match kind {
        "password" => {
            let password = secret("password");
            let auth_url = required(
                &raw.auth_url,
                path,
                "auth_url",
                "the Keystone v3 URL, such as https://iam.eu-de.example.com/v3",
                report,
            )
            .and_then(|u| {
                ok_or_report(
                    checks::url(u, UrlRole::Identity, allow_http),
                    &path.key("auth_url"),
                    report,
                )
            });
            let user = required(&raw.user, path, "user", "the user name", report);
            let user_domain = required(
                &raw.user_domain,
                path,
                "user_domain",
                "the user's domain name",
                report,
            );
            Some(AuthConfig::Password {
                auth_url: auth_url?,
                user: user?.to_string(),
                user_domain: user_domain?.to_string(),
                password: password?,
            })
        }
        "aksk" => {
            let access_key = secret("access_key");
            let secret_key = secret("secret_key");
            Some(AuthConfig::AkSk {
                access_key: access_key?,
                secret_key: secret_key?,
            })
        }
        _ => {
            let token = secret("token");
            let auth_url = match raw.auth_url.as_deref() {
                None => Some(None),
                Some(u) => ok_or_report(
                    checks::url(u, UrlRole::Identity, allow_http),
                    &path.key("auth_url"),
                    report,
                )
                .map(Some),
            };
            Some(AuthConfig::Token {
                token: token?,
                auth_url: auth_url?,
            })
        }
    }
}

/// The three ways to give one secret.
pub(super) struct SecretFields<'r> {
    /// What needs the secret, for messages: `password auth`.
    pub(super) needed_by: &'r str,
    /// The field prefix: `password`, `token`, `access_key`, `secret_key`.
    pub(super) what: &'r str,
    pub(super) file: &'r Option<String>,
    pub(super) env: &'r Option<String>,
    pub(super) credential: &'r Option<String>,
}

/// Exactly one of `{what}_file`, `{what}_env` and `{what}_credential`.
pub(super) fn secret(
    fields: SecretFields<'_>,
    path: &FieldPath,
    base_dir: &Path,
    report: &mut Report<'_>,
) -> Option<SecretSource> {
    let what = fields.what;
    let spoken = what.replace('_', " ");
    let file_field = format!("{what}_file");
    let env_field = format!("{what}_env");
    let credential_field = format!("{what}_credential");
    let given: Vec<&str> = [
        (fields.file, file_field.as_str()),
        (fields.env, env_field.as_str()),
        (fields.credential, credential_field.as_str()),
    ]
    .iter()
    .filter(|(v, _)| v.is_some())
    .map(|(_, f)| *f)
    .collect();
    if given.len() > 1 {
        report.key(
            &path.key(given[1]),
            format!("set either {} or {}, not both", given[0], given[1]),
        );
        return None;
    }
    match (
        fields.file.as_deref(),
        fields.env.as_deref(),
        fields.credential.as_deref(),
    ) {
        (None, None, None) => {
            report.missing(
                path,
                &file_field,
                format!(
                    "{} needs {file_field} (a file holding the {spoken}), {env_field} (an environment variable) or {credential_field} (a systemd credential name)",
                    fields.needed_by
                ),
            );
            None
        }
        (Some(""), _, _) => {
            report.value(
                &path.key(&file_field),
                format!("{file_field} is empty; give the path of a file holding the {spoken}"),
            );
            None
        }
        (Some(file), _, _) => Some(SecretSource::File(resolve(base_dir, file))),
        (_, Some(env), _) => {
            ok_or_report(checks::env_var(env), &path.key(&env_field), report).map(SecretSource::Env)
        }
        (_, _, Some(name)) => ok_or_report(
            checks::credential_name(name),
            &path.key(&credential_field),
            report,
        )
        .map(|()| SecretSource::Credential(name.to_string())),
    }
}
