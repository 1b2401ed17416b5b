//! The state directory that holds the history.
//!
//! - The agent creates it 0750 whatever the umask: its group (auditors)
//!   may list it, and nobody else can replace `history.db` in it. An
//!   existing directory keeps its mode (systemd's `StateDirectoryMode=`).
//! - `vbs-agent check` proves it usable before `run` needs it, so a state
//!   dir that is a file, cannot be created or is read-only fails the
//!   check instead of the service start.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a state directory the agent creates.
pub const STATE_DIR_MODE: u32 = 0o750;

/// Why a state directory cannot hold the history.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state_dir {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("state_dir {path} cannot be created: {ancestor} is not a directory")]
    AncestorNotADirectory { path: PathBuf, ancestor: PathBuf },
    #[error("state_dir {path} cannot be created: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state_dir {path} is not writable by this user: {source}")]
    NotWritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot inspect state_dir {path}: {source}")]
    Inspect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("history {0} is a directory, not a database")]
    HistoryIsADirectory(PathBuf),
}

/// Creates `dir` (and missing parents) as [`STATE_DIR_MODE`] unless it exists.
pub fn create(dir: &Path) -> Result<(), StateDirError> {
    let create_err = |source| StateDirError::Create {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(STATE_DIR_MODE)
        .create(dir)
        .map_err(create_err)?;
    // The umask may have removed bits from the mode asked for.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(STATE_DIR_MODE))
        .map_err(create_err)
}

/// Whether the agent, running as this user, could keep its history at
/// `history` in `dir`: `dir` is a writable directory or can be created, and
/// `history` is not a directory. Changes nothing that stays.
pub fn check(dir: &Path, history: &Path) -> Result<(), StateDirError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            try_write(dir).map_err(|source| StateDirError::NotWritable {
                path: dir.to_path_buf(),
                source,
            })?;
            if history.is_dir() {
                return Err(StateDirError::HistoryIsADirectory(history.to_path_buf()));
            }
            Ok(())
        }
        Ok(_) => Err(StateDirError::NotADirectory(dir.to_path_buf())),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            creatable(dir)
        }
        Err(source) => Err(StateDirError::Inspect {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A missing `dir` can be created when its nearest existing ancestor is a
/// directory this user may write in.
fn creatable(dir: &Path) -> Result<(), StateDirError> {
    let ancestor = dir
        .ancestors()
        .skip(1)
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| a.exists())
        .unwrap_or(Path::new("/"));
    if !ancestor.is_dir() {
        return Err(StateDirError::AncestorNotADirectory {
            path: dir.to_path_buf(),
            ancestor: ancestor.to_path_buf(),
        });
    }
    try_write(ancestor).map_err(|source| StateDirError::Create {
        path: dir.to_path_buf(),
        source,
    })
}

/// Proves `dir` writable by creating (and removing) a file in it: unlike
/// the mode bits this also sees ACLs, read-only mounts and sandboxes.
fn try_write(dir: &Path) -> std::io::Result<()> {
    tempfile::Builder::new()
        .prefix(".vbs-agent-check-")
        .tempfile_in(dir)
        .map(drop)
}
