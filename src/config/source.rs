//! Clouds named from outside the policy file, read as the OpenStack and
//! Huawei Cloud clients do: an entry of a standard `clouds.yaml` (with its
//! `secure.yaml`), or the `OS_*` environment variables. Secrets found there
//! are not copied: they become [`SecretSource`]s read again at each use.

use std::path::{Path, PathBuf};

use super::checks::{self, UrlRole};
use super::model::{AuthConfig, CloudOrigin, Domain, Project};
use super::secret::{yaml_value, SecretSource};
use super::yaml_guard;

/// Where environment variables come from: the process, or a map in tests.
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The agent's own environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// What a clouds.yaml entry or the environment says about one cloud.
#[derive(Debug, Default)]
pub(crate) struct Sourced {
    pub(crate) origin: Option<CloudOrigin>,
    auth_type: Option<String>,
    auth_url: Option<String>,
    username: Option<String>,
    user_domain: Option<String>,
    project_id: Option<String>,
    project_name: Option<String>,
    /// `project_domain_*`, else `domain_*` (which the clients apply to both
    /// user and project).
    project_domain: Option<Domain>,
    pub(crate) region: Option<String>,
    pub(crate) interface: Option<String>,
    pub(crate) cacert: Option<PathBuf>,
    password: Option<SecretSource>,
    token: Option<SecretSource>,
    access_key: Option<SecretSource>,
    secret_key: Option<SecretSource>,
}

/// The clouds.yaml files in the order the OpenStack clients try them; the
/// first that exists is used.
pub(crate) fn clouds_yaml_search_path(env: &dyn Env, cwd: &Path) -> Vec<PathBuf> {
    search_path(env, cwd, "OS_CLIENT_CONFIG_FILE", "clouds.yaml")
}

fn search_path(env: &dyn Env, cwd: &Path, override_var: &str, file: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = env.var(override_var) {
        paths.push(PathBuf::from(p));
    }
    paths.push(cwd.join(file));
    let config_home = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(dir) = config_home {
        paths.push(dir.join("openstack").join(file));
    }
    paths.push(Path::new("/etc/openstack").join(file));
    paths
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entry `name` of the first clouds.yaml on the search path, with the
/// same entry of the first secure.yaml that has it merged over it.
pub(crate) fn from_clouds_yaml(name: &str, env: &dyn Env, cwd: &Path) -> Result<Sourced, String> {
    let candidates = clouds_yaml_search_path(env, cwd);
    let Some(file) = candidates.iter().find(|p| p.is_file()).cloned() else {
        return Err(format!(
            "no clouds.yaml found (looked for {}); create one or set OS_CLIENT_CONFIG_FILE",
            list(&candidates)
        ));
    };
    let read = |path: &Path| -> Result<serde_yaml::Value, String> {
        yaml_guard::read(path)
            .map_err(|e| e.to_string())
            .and_then(|text| yaml_guard::value(&text))
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let doc = read(&file)?;
    let Some(clouds) = doc.get("clouds").and_then(|c| c.as_mapping()) else {
        return Err(format!("{} has no `clouds:` mapping", file.display()));
    };
    if clouds.get(name).is_none() {
        let names: Vec<&str> = clouds.keys().filter_map(|k| k.as_str()).collect();
        return Err(format!(
            "cloud `{name}` is not in {} (clouds there: {})",
            file.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    }
    let secure = search_path(env, cwd, "OS_CLIENT_SECURE_FILE", "secure.yaml")
        .into_iter()
        .find(|p| p.is_file() && read(p).is_ok_and(|d| d["clouds"].get(name).is_some()));
    let files: Vec<PathBuf> = secure.iter().cloned().chain([file.clone()]).collect();
    let texts: Vec<String> = files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    let get = |key: &[&str]| -> Option<String> {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        texts.iter().find_map(|t| yaml_value(t, name, &key))
    };
    let secret = |key: &[&str]| {
        get(key).map(|_| SecretSource::CloudsYaml {
            files: files.clone(),
            cloud: name.to_string(),
            key: key.iter().map(|k| k.to_string()).collect(),
        })
    };
    let entry = &doc["clouds"][name];
    if entry.get("verify").and_then(|v| v.as_bool()) == Some(false) {
        return Err(format!(
            "cloud `{name}` in {} sets `verify: false`; the agent always verifies TLS \
             certificates: remove it and give `cacert` for a private CA",
            file.display()
        ));
    }
    let base = file.parent().unwrap_or(Path::new(""));
    Ok(Sourced {
        origin: Some(CloudOrigin::CloudsYaml {
            file: file.clone(),
            entry: name.to_string(),
        }),
        auth_type: get(&["auth_type"]),
        auth_url: get(&["auth", "auth_url"]),
        username: get(&["auth", "username"]),
        user_domain: get(&["auth", "user_domain_name"]).or_else(|| get(&["auth", "domain_name"])),
        project_id: get(&["auth", "project_id"]).or_else(|| get(&["auth", "tenant_id"])),
        project_name: get(&["auth", "project_name"]),
        project_domain: get(&["auth", "project_domain_id"])
            .map(Domain::Id)
            .or_else(|| get(&["auth", "project_domain_name"]).map(Domain::Name))
            .or_else(|| get(&["auth", "domain_id"]).map(Domain::Id))
            .or_else(|| get(&["auth", "domain_name"]).map(Domain::Name)),
        region: get(&["region_name"]),
        interface: get(&["interface"]),
        cacert: get(&["cacert"]).map(|c| base.join(c)),
        password: secret(&["auth", "password"]),
        token: secret(&["auth", "token"]),
        access_key: secret(&["auth", "ak"]).or_else(|| secret(&["ak"])),
        secret_key: secret(&["auth", "sk"]).or_else(|| secret(&["sk"])),
    })
}

/// The `OS_*` variables (and `OS_ACCESS_KEY`/`OS_SECRET_KEY` of the Huawei
/// Cloud tools).
pub(crate) fn from_env(env: &dyn Env) -> Sourced {
    let secret = |var: &str| env.var(var).map(|_| SecretSource::Env(var.to_string()));
    Sourced {
        origin: Some(CloudOrigin::Env),
        auth_type: env.var("OS_AUTH_TYPE"),
        auth_url: env.var("OS_AUTH_URL"),
        username: env.var("OS_USERNAME"),
        user_domain: env
            .var("OS_USER_DOMAIN_NAME")
            .or_else(|| env.var("OS_DOMAIN_NAME")),
        project_id: env.var("OS_PROJECT_ID").or_else(|| env.var("OS_TENANT_ID")),
        project_name: env.var("OS_PROJECT_NAME"),
        project_domain: env
            .var("OS_PROJECT_DOMAIN_ID")
            .map(Domain::Id)
            .or_else(|| env.var("OS_PROJECT_DOMAIN_NAME").map(Domain::Name))
            .or_else(|| env.var("OS_DOMAIN_ID").map(Domain::Id))
            .or_else(|| env.var("OS_DOMAIN_NAME").map(Domain::Name)),
        region: env.var("OS_REGION_NAME"),
        interface: env.var("OS_INTERFACE"),
        cacert: env.var("OS_CACERT").map(PathBuf::from),
        password: secret("OS_PASSWORD"),
        token: secret("OS_TOKEN"),
        access_key: secret("OS_ACCESS_KEY"),
        secret_key: secret("OS_SECRET_KEY"),
    }
}

impl Sourced {
    fn env(&self) -> bool {
        matches!(self.origin, Some(CloudOrigin::Env))
    }

    /// How a field is named where it came from.
    fn label(&self, clouds_key: &str, env_var: &str) -> String {
        if self.env() {
            env_var.to_string()
        } else {
            format!("`{clouds_key}`")
        }
    }

    fn missing(&self, clouds_key: &str, env_var: &str, what: &str) -> String {
        let place = match &self.origin {
            Some(CloudOrigin::CloudsYaml { file, entry }) => {
                format!("cloud `{entry}` in {}", file.display())
            }
            _ => "the environment".to_string(),
        };
        format!(
            "{place} has no {} ({what})",
            self.label(clouds_key, env_var)
        )
    }

    /// The project, by ID when one is given, else by name in its domain
    /// (see [`by_name`]). `Ok(None)`: by name, but the credentials were
    /// unusable (reported on their own).
    pub(crate) fn project(&self, auth: Option<&AuthConfig>) -> Result<Option<Project>, String> {
        match (&self.project_id, &self.project_name, auth) {
            (Some(id), _, _) => checks::project_id(id).map(|id| Some(Project::Id(id))),
            (None, Some(_), None) => Ok(None),
            (None, Some(name), Some(auth)) => by_name(name, self.project_domain.clone(), auth)
                .map(Some)
                .map_err(|e| {
                    format!(
                        "{}: {e}: give the ID as {}",
                        self.origin_label(),
                        self.label("auth.project_id", "OS_PROJECT_ID")
                    )
                }),
            (None, None, _) => Err(self.missing(
                "auth.project_id",
                "OS_PROJECT_ID",
                "32 hex digits; or the project's name as auth.project_name / OS_PROJECT_NAME",
            )),
        }
    }

    fn origin_label(&self) -> String {
        self.origin
            .as_ref()
            .map_or_else(String::new, ToString::to_string)
    }

    /// The Keystone v3 URL, if given: the clients discover the identity
    /// version, the agent speaks v3, so `/v3` is added when missing.
    fn identity_url(&self, allow_http: bool) -> Result<Option<url::Url>, String> {
        let Some(url) = self.auth_url.as_deref() else {
            return Ok(None);
        };
        let url = url.trim_end_matches('/');
        let url = if url.ends_with("/v3") {
            url.to_string()
        } else {
            format!("{url}/v3")
        };
        checks::url(&url, UrlRole::Identity, allow_http)
            .map(Some)
            .map_err(|e| {
                format!(
                    "{} {}: {e}",
                    self.origin_label(),
                    self.label("auth.auth_url", "OS_AUTH_URL")
                )
            })
    }

    /// The auth method, from `auth_type` / `OS_AUTH_TYPE`, else from which
    /// credentials are present (AK/SK, a token, or a password).
    pub(crate) fn auth(&self, allow_http: bool) -> Result<AuthConfig, String> {
        let kind = match self.auth_type.as_deref() {
            Some("password" | "v3password") => "password",
            Some("token" | "v3token") => "token",
            Some("aksk") => "aksk",
            Some(other) => {
                return Err(format!(
                    "{} {} is `{other}`; the agent supports password, v3password, token, \
                     v3token and aksk",
                    self.origin_label(),
                    self.label("auth_type", "OS_AUTH_TYPE")
                ))
            }
            None if self.access_key.is_some() || self.secret_key.is_some() => "aksk",
            None if self.token.is_some() => "token",
            None => "password",
        };
        let need = |v: &Option<SecretSource>, key: &str, var: &str, what: &str| {
            v.clone().ok_or_else(|| self.missing(key, var, what))
        };
        match kind {
            "token" => Ok(AuthConfig::Token {
                token: need(&self.token, "auth.token", "OS_TOKEN", "the token")?,
                auth_url: self.identity_url(allow_http)?,
            }),
            "aksk" => Ok(AuthConfig::AkSk {
                access_key: need(&self.access_key, "ak", "OS_ACCESS_KEY", "the access key")?,
                secret_key: need(&self.secret_key, "sk", "OS_SECRET_KEY", "the secret key")?,
            }),
            _ => {
                let auth_url = self.identity_url(allow_http)?.ok_or_else(|| {
                    self.missing("auth.auth_url", "OS_AUTH_URL", "the Keystone URL")
                })?;
                let user = self
                    .username
                    .clone()
                    .ok_or_else(|| self.missing("auth.username", "OS_USERNAME", "the user name"))?;
                let user_domain = self.user_domain.clone().ok_or_else(|| {
                    self.missing(
                        "auth.user_domain_name",
                        "OS_USER_DOMAIN_NAME",
                        "the user's domain name",
                    )
                })?;
                Ok(AuthConfig::Password {
                    auth_url,
                    user,
                    user_domain,
                    password: need(
                        &self.password,
                        "auth.password",
                        "OS_PASSWORD",
                        "the password",
                    )?,
                })
            }
        }
    }
}

/// A project given by name: only Keystone password auth scopes a token by
/// name and so learns the ID. The domain defaults to the user's, where OTC
/// keeps an account's projects.
pub(crate) fn by_name(
    name: &str,
    domain: Option<Domain>,
    auth: &AuthConfig,
) -> Result<Project, String> {
    let user_domain = match auth {
        AuthConfig::Password { user_domain, .. } => user_domain,
        AuthConfig::Token { .. } => {
            return Err(format!(
                "project `{name}` is given by name, but a token cannot be scoped by name, \
                 so its ID is needed"
            ))
        }
        AuthConfig::AkSk { .. } => {
            return Err(format!(
                "project `{name}` is given by name, but AK/SK-signed requests carry the \
                 project ID, which only Keystone password auth can look up by name"
            ))
        }
    };
    Ok(Project::Name {
        name: name.to_string(),
        domain: domain.unwrap_or_else(|| Domain::Name(user_domain.clone())),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct MapEnv(HashMap<&'static str, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn search_path_order_follows_the_openstack_clients() {
        let env = MapEnv(HashMap::from([
            ("OS_CLIENT_CONFIG_FILE", "/x/my.yaml".to_string()),
            ("HOME", "/home/u".to_string()),
        ]));
        let paths = clouds_yaml_search_path(&env, Path::new("/cwd"));
        let expected: Vec<PathBuf> = [
            "/x/my.yaml",
            "/cwd/clouds.yaml",
            "/home/u/.config/openstack/clouds.yaml",
            "/etc/openstack/clouds.yaml",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(paths, expected);
        let env = MapEnv(HashMap::from([("XDG_CONFIG_HOME", "/xdg".to_string())]));
        assert_eq!(
            clouds_yaml_search_path(&env, Path::new("/cwd"))[1],
            PathBuf::from("/xdg/openstack/clouds.yaml")
        );
    }

    #[test]
    fn clouds_yaml_entry_with_secure_yaml_password() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clouds.yaml"),
            format!(
                "clouds:\n  otc:\n    region_name: eu-de\n    interface: internal\n    cacert: ca.pem\n    auth:\n      auth_url: https://iam.eu-de.example.com:443\n      username: bot\n      user_domain_name: OTC0001\n      project_id: {PROJECT}\n  other: {{}}\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("secure.yaml"),
            "clouds:\n  otc:\n    auth:\n      password: s3cret-from-secure\n",
        )
        .unwrap();
        let env = MapEnv(HashMap::new());
        let s = from_clouds_yaml("otc", &env, dir.path()).unwrap();
        assert_eq!(
            s.project(None).unwrap(),
            Some(Project::Id(PROJECT.to_string()))
        );
        assert_eq!(s.region.as_deref(), Some("eu-de"));
        assert_eq!(s.interface.as_deref(), Some("internal"));
        assert_eq!(s.cacert, Some(dir.path().join("ca.pem")));
        let AuthConfig::Password {
            auth_url,
            user,
            password,
            ..
        } = s.auth(false).unwrap()
        else {
            panic!("expected password auth");
        };
        assert_eq!(auth_url.as_str(), "https://iam.eu-de.example.com/v3");
        assert_eq!(user, "bot");
        assert_eq!(password.read().unwrap().expose(), "s3cret-from-secure");
        // The secret is referenced, not copied: its description has no value.
        assert!(!format!("{password} {password:?}").contains("s3cret"));

        let missing = from_clouds_yaml("nope", &env, dir.path()).unwrap_err();
        assert!(missing.contains("cloud `nope` is not in"), "{missing}");
        assert!(missing.contains("otc, other"), "{missing}");
        let no_auth = from_clouds_yaml("other", &env, dir.path()).unwrap();
        let err = no_auth.auth(false).unwrap_err();
        assert!(err.contains("has no `auth.auth_url`"), "{err}");
    }

    #[test]
    fn verify_false_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("clouds.yaml"),
            "clouds:\n  lab:\n    verify: false\n",
        )
        .unwrap();
        let err = from_clouds_yaml("lab", &MapEnv(HashMap::new()), dir.path()).unwrap_err();
        assert!(err.contains("verify: false"), "{err}");
    }

    #[test]
    fn environment_gives_password_token_or_aksk() {
        let base = [
            ("OS_AUTH_URL", "https://iam.example.com/v3".to_string()),
            ("OS_USERNAME", "bot".to_string()),
            ("OS_USER_DOMAIN_NAME", "Default".to_string()),
            ("OS_PASSWORD", "pw".to_string()),
            ("OS_PROJECT_ID", PROJECT.to_string()),
        ];
        let env = MapEnv(HashMap::from(base.clone()));
        let s = from_env(&env);
        match s.auth(false).unwrap() {
            AuthConfig::Password { password, .. } => {
                assert_eq!(password, SecretSource::Env("OS_PASSWORD".into()))
            }
            other => panic!("{other:?}"),
        }
        let mut with_keys = HashMap::from(base.clone());
        with_keys.insert("OS_ACCESS_KEY", "AK".into());
        with_keys.insert("OS_SECRET_KEY", "SK".into());
        assert!(matches!(
            from_env(&MapEnv(with_keys)).auth(false).unwrap(),
            AuthConfig::AkSk { .. }
        ));
        let err = from_env(&MapEnv(HashMap::new())).project(None).unwrap_err();
        assert!(
            err.contains("OS_PROJECT_ID") && err.contains("OS_PROJECT_NAME"),
            "{err}"
        );
        let err = from_env(&MapEnv(HashMap::new())).auth(false).unwrap_err();
        assert_eq!(err, "the environment has no OS_AUTH_URL (the Keystone URL)");
    }

    #[test]
    fn a_project_by_name_is_scoped_in_its_domain_else_the_users() {
        let password = [
            ("OS_AUTH_URL", "https://iam.example.com/v3".to_string()),
            ("OS_USERNAME", "bot".to_string()),
            ("OS_USER_DOMAIN_NAME", "OTC0001".to_string()),
            ("OS_PASSWORD", "pw".to_string()),
            ("OS_PROJECT_NAME", "eu-de_sub".to_string()),
        ];
        let project = |extra: &[(&'static str, &str)]| {
            let mut vars = HashMap::from(password.clone());
            vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            let s = from_env(&MapEnv(vars));
            let auth = s.auth(false).unwrap();
            s.project(Some(&auth))
        };
        let by_name = |domain| {
            Ok(Some(Project::Name {
                name: "eu-de_sub".into(),
                domain,
            }))
        };
        assert_eq!(project(&[]), by_name(Domain::Name("OTC0001".into())));
        assert_eq!(
            project(&[("OS_PROJECT_DOMAIN_NAME", "OTC0002")]),
            by_name(Domain::Name("OTC0002".into()))
        );
        assert_eq!(
            project(&[("OS_PROJECT_DOMAIN_ID", "d0")]),
            by_name(Domain::Id("d0".into()))
        );
        assert_eq!(
            project(&[("OS_PROJECT_ID", PROJECT)]),
            Ok(Some(Project::Id(PROJECT.into())))
        );
        // A token or AK/SK cannot be scoped by name: the ID is asked for.
        let err = project(&[("OS_ACCESS_KEY", "AK"), ("OS_SECRET_KEY", "SK")]).unwrap_err();
        assert!(
            err.contains("eu-de_sub") && err.contains("AK/SK") && err.contains("OS_PROJECT_ID"),
            "{err}"
        );
        let err = project(&[("OS_TOKEN", "t")]).unwrap_err();
        assert!(
            err.contains("token") && err.contains("OS_PROJECT_ID"),
            "{err}"
        );
    }
}
