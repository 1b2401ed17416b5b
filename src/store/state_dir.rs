//! The state directory that holds the history. The agent creates it 0750
//! whatever the umask: its group (auditors) may list it, and nobody else
//! can replace `history.db` in it. An existing directory keeps its mode
//! (systemd's `StateDirectoryMode=`).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a state directory the agent creates.
pub const STATE_DIR_MODE: u32 = 0o750;

/// Why a state directory cannot hold the history.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state_dir {path} cannot be created: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
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
