//! What a policy makes, as one type from the policy file to the history:
//! the policy model carries it, every job row stores it, and the engine
//! picks the job's steps by it.

use std::fmt;
use std::str::FromStr;

/// What a policy creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Snapshot → VBS backup → snapshot cleanup.
    Backup,
    /// Snapshot only, kept on the block store.
    Snapshot,
    /// A CSBS backup of a whole server (all its volumes).
    Server,
    /// A backup restored into a volume: a restore drill (a backup policy's
    /// `drill:`), or `vbs-agent restore`.
    Restore,
}

impl PolicyKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Backup,
        PolicyKind::Snapshot,
        PolicyKind::Server,
        PolicyKind::Restore,
    ];

    /// The name used in the policy file and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Backup => "backup",
            PolicyKind::Snapshot => "snapshot",
            PolicyKind::Server => "server",
            PolicyKind::Restore => "restore",
        }
    }
}

impl PolicyKind {
    /// What a job of this kind is made for, in messages: `volume` or `server`.
    pub fn target_noun(self) -> &'static str {
        match self {
            PolicyKind::Backup | PolicyKind::Snapshot | PolicyKind::Restore => "volume",
            PolicyKind::Server => "server",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is none of [`PolicyKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy kind `{0}`; use backup, snapshot, server or restore")]
pub struct UnknownKind(pub String);

impl FromStr for PolicyKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in PolicyKind::ALL {
            assert_eq!(kind.as_str().parse::<PolicyKind>(), Ok(kind));
        }
        assert_eq!(
            "Backup".parse::<PolicyKind>(),
            Err(UnknownKind("Backup".into()))
        );
    }
}
