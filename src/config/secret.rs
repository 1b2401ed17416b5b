//! Secrets (tokens, passwords) are referenced by the policy file, never
//! written into it, and read only when needed so rotation needs no restart.

use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file whose content (trailing newline trimmed) is the secret.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A systemd credential: the file of this name under
    /// `$CREDENTIALS_DIRECTORY` (`LoadCredential=NAME:…` in the unit).
    Credential(String),
    /// A value in a `clouds.yaml`-style file: the first of `files` (a
    /// `secure.yaml` before its `clouds.yaml`) that holds `key` under
    /// `clouds.<cloud>`. Read again at each use, like the others.
    CloudsYaml {
        files: Vec<PathBuf>,
        cloud: String,
        /// Path of keys below the cloud's entry, e.g. `["auth", "password"]`.
        key: Vec<String>,
    },
}

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("secret file {0} is empty")]
    EmptyFile(PathBuf),
    #[error("environment variable {0} is not set or empty")]
    Env(String),
    #[error(
        "systemd credential `{0}` is wanted but $CREDENTIALS_DIRECTORY is not set; \
         run under systemd with LoadCredential={0}:PATH (or set CREDENTIALS_DIRECTORY)"
    )]
    NoCredentialsDirectory(String),
    #[error("{0} is not in any of the clouds.yaml files any more")]
    NotInCloudsYaml(String),
}

impl SecretSource {
    /// Reads the secret now. A file others may read is used, with a
    /// warning (see [`SecretSource::exposure`]).
    pub fn read(&self) -> Result<Secret, SecretError> {
        if let Some(warning) = self.exposure() {
            tracing::warn!(secret = %self, "{warning}");
        }
        match self {
            SecretSource::File(path) => read_file(path),
            SecretSource::Credential(name) => read_file(&credential_path(name)?),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
                _ => Err(SecretError::Env(var.clone())),
            },
            SecretSource::CloudsYaml { files, cloud, key } => {
                for file in files {
                    let text =
                        std::fs::read_to_string(file).map_err(|source| SecretError::File {
                            path: file.clone(),
                            source,
                        })?;
                    if let Some(value) = yaml_value(&text, cloud, key) {
                        return Ok(Secret::new(value));
                    }
                }
                Err(SecretError::NotInCloudsYaml(self.to_string()))
            }
        }
    }

    /// Why the file behind this secret is readable by more than its owner,
    /// if it is. Any group or other permission bit counts for an ordinary
    /// file (`chmod 600` it); a systemd credential lives in a directory only
    /// the service can enter, and systemd itself makes it 0440 for the
    /// service's group, so only "other" bits count there.
    pub fn exposure(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let (path, mask) = match self {
            SecretSource::File(path) => (path.clone(), 0o077),
            SecretSource::Credential(name) => (credential_path(name).ok()?, 0o007),
            SecretSource::CloudsYaml { files, cloud, key } => {
                let holder = files.iter().find(|f| {
                    std::fs::read_to_string(f).is_ok_and(|t| yaml_value(&t, cloud, key).is_some())
                })?;
                (holder.clone(), 0o077)
            }
            SecretSource::Env(_) => return None,
        };
        let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
        (mode & mask != 0).then(|| {
            format!(
                "secret file {} has mode {mode:04o}: readable by {}; chmod {} it",
                path.display(),
                if mode & mask & 0o007 != 0 {
                    "other users"
                } else {
                    "its group"
                },
                if mask == 0o007 { "o-rwx" } else { "600" },
            )
        })
    }
}

fn read_file(path: &std::path::Path) -> Result<Secret, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError::EmptyFile(path.to_path_buf()));
    }
    Ok(Secret::new(value))
}

fn credential_path(name: &str) -> Result<PathBuf, SecretError> {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join(name)),
        _ => Err(SecretError::NoCredentialsDirectory(name.to_string())),
    }
}

/// The scalar at `clouds.<cloud>.<key…>` of a clouds.yaml text.
pub(crate) fn yaml_value(text: &str, cloud: &str, key: &[String]) -> Option<String> {
    let doc = super::yaml_guard::value(text).ok()?;
    let mut node = doc.get("clouds")?.get(cloud)?;
    for k in key {
        node = node.get(k.as_str())?;
    }
    match node {
        serde_yaml::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
            SecretSource::Credential(name) => write!(f, "systemd credential {name}"),
            SecretSource::CloudsYaml { files, cloud, key } => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "`{}` of cloud {cloud} in {}",
                    key.join("."),
                    names.join(" or ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &std::path::Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn group_or_world_readable_secret_files_are_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "pw\n").unwrap();
        let source = SecretSource::File(file.clone());
        chmod(&file, 0o600);
        assert_eq!(source.exposure(), None);
        chmod(&file, 0o640);
        let warning = source.exposure().unwrap();
        assert!(
            warning.contains("mode 0640: readable by its group; chmod 600"),
            "{warning}"
        );
        chmod(&file, 0o604);
        assert!(source
            .exposure()
            .unwrap()
            .contains("readable by other users"));
        assert_eq!(source.read().unwrap().expose(), "pw");
        assert!(!warning.contains("pw\n"));
        assert_eq!(SecretSource::Env("X".into()).exposure(), None);
    }

    #[test]
    fn clouds_yaml_secret_is_read_from_the_file_that_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let secure = dir.path().join("secure.yaml");
        let clouds = dir.path().join("clouds.yaml");
        std::fs::write(&secure, "clouds:\n  otc:\n    region_name: x\n").unwrap();
        std::fs::write(
            &clouds,
            "clouds:\n  otc:\n    auth:\n      password: from-clouds\n",
        )
        .unwrap();
        chmod(&secure, 0o644);
        chmod(&clouds, 0o600);
        let source = SecretSource::CloudsYaml {
            files: vec![secure, clouds],
            cloud: "otc".into(),
            key: vec!["auth".into(), "password".into()],
        };
        assert_eq!(source.read().unwrap().expose(), "from-clouds");
        // secure.yaml is open, but it does not hold the password.
        assert_eq!(source.exposure(), None);
        let gone = SecretSource::CloudsYaml {
            files: vec![dir.path().join("clouds.yaml")],
            cloud: "other".into(),
            key: vec!["auth".into(), "password".into()],
        };
        assert!(matches!(gone.read(), Err(SecretError::NotInCloudsYaml(_))));
    }
}
