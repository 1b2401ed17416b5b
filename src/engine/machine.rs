//! The legal moves of a job, as data: [`next`] gives the phase a job of a
//! kind moves to when a step in a phase ends with an outcome. The job
//! runner applies no phase that this table does not give, so the table is
//! the state machine, not a picture of it.
//!
//! ```text
//! backup:   pending → snapshot_requested → snapshot_creating → backup_requested
//!                   → backup_creating → [sharing →] cleanup → done
//!           on CBR: pending → backup_requested → … (CBR makes no snapshot of the agent's)
//! snapshot: pending → snapshot_requested → snapshot_creating → done
//! server:   pending → protect_requested → checkpoint_creating → cleanup → done
//! restore:  pending → volume_requested → volume_creating → restore_requested
//!                   → restoring → verifying → cleanup → done
//! ```
//! Every kind: a failed step goes to `cleanup` (which removes what the
//! attempt left, such as a temporary snapshot), and `cleanup` goes to
//! `done`, or back to `pending` when another attempt is due. A step that
//! must stop without cleanup (a backup still reading its snapshot at the
//! deadline, or a record that lost its resource's id) gives up straight to
//! `done`.

use crate::kind::PolicyKind;
use crate::store::Phase;

/// How the step a job was in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The attempt starts (its scheduled time came).
    Started,
    /// The attempt of a backup starts at the backup itself: on CBR there is
    /// no snapshot of the agent's to make first.
    StartedAtBackup,
    /// The step's resource exists: created, or adopted by name.
    Created,
    /// The resource reached a terminal status: good, or `error` as the
    /// cloud's verdict on the backup (the status says which).
    Ready,
    /// The backup is available and the policy shares it.
    ReadyToShare,
    /// Sharing ended, whether every project got the backup or not.
    Shared,
    /// The step failed: clean up, then retry or end.
    Failed,
    /// Stop at once, without cleanup.
    GaveUp,
    /// Cleanup is done and another attempt is due.
    Retry,
    /// Cleanup is done; the job is over.
    Finished,
}

impl Outcome {
    /// Every outcome, for exhaustive checks.
    pub const ALL: [Outcome; 10] = [
        Outcome::Started,
        Outcome::StartedAtBackup,
        Outcome::Created,
        Outcome::Ready,
        Outcome::ReadyToShare,
        Outcome::Shared,
        Outcome::Failed,
        Outcome::GaveUp,
        Outcome::Retry,
        Outcome::Finished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::StartedAtBackup => "started_at_backup",
            Outcome::Created => "created",
            Outcome::Ready => "ready",
            Outcome::ReadyToShare => "ready_to_share",
            Outcome::Shared => "shared",
            Outcome::Failed => "failed",
            Outcome::GaveUp => "gave_up",
            Outcome::Retry => "retry",
            Outcome::Finished => "finished",
        }
    }
}

/// The phase after `phase` ends with `outcome`; `None`: not a legal move
/// for `kind`.
pub fn next(kind: PolicyKind, phase: Phase, outcome: Outcome) -> Option<Phase> {
    use Outcome as O;
    use Phase as P;
    use PolicyKind as K;
    let to = match (kind, phase, outcome) {
        (_, P::Pending, O::Started) => first_step(kind),
        (K::Backup, P::Pending, O::StartedAtBackup) => P::BackupRequested,
        (K::Backup | K::Snapshot, P::SnapshotRequested, O::Created) => P::SnapshotCreating,
        (K::Backup, P::SnapshotCreating, O::Ready) => P::BackupRequested,
        (K::Snapshot, P::SnapshotCreating, O::Ready) => P::Done,
        (K::Backup, P::BackupRequested, O::Created) => P::BackupCreating,
        (K::Backup, P::BackupCreating, O::Ready) => P::Cleanup,
        (K::Backup, P::BackupCreating, O::ReadyToShare) => P::Sharing,
        (K::Backup, P::Sharing, O::Shared) => P::Cleanup,
        (K::Server, P::ProtectRequested, O::Created) => P::CheckpointCreating,
        (K::Server, P::CheckpointCreating, O::Ready) => P::Cleanup,
        (K::Restore, P::VolumeRequested, O::Created) => P::VolumeCreating,
        (K::Restore, P::VolumeCreating, O::Ready) => P::RestoreRequested,
        (K::Restore, P::RestoreRequested, O::Created) => P::Restoring,
        (K::Restore, P::Restoring, O::Ready) => P::Verifying,
        (K::Restore, P::Verifying, O::Ready) => P::Cleanup,
        (_, P::Cleanup, O::Retry) => P::Pending,
        (_, P::Cleanup, O::Finished) => P::Done,
        (_, working, O::Failed) if is_step_of(kind, working) => P::Cleanup,
        (_, working, O::GaveUp) if is_step_of(kind, working) => P::Done,
        _ => return None,
    };
    Some(to)
}

/// The phases a job of `kind` can be in, in the order it passes them.
pub fn phases(kind: PolicyKind) -> &'static [Phase] {
    use Phase as P;
    match kind {
        PolicyKind::Backup => &[
            P::Pending,
            P::SnapshotRequested,
            P::SnapshotCreating,
            P::BackupRequested,
            P::BackupCreating,
            P::Sharing,
            P::Cleanup,
            P::Done,
        ],
        PolicyKind::Snapshot => &[
            P::Pending,
            P::SnapshotRequested,
            P::SnapshotCreating,
            P::Cleanup,
            P::Done,
        ],
        PolicyKind::Server => &[
            P::Pending,
            P::ProtectRequested,
            P::CheckpointCreating,
            P::Cleanup,
            P::Done,
        ],
        PolicyKind::Restore => &[
            P::Pending,
            P::VolumeRequested,
            P::VolumeCreating,
            P::RestoreRequested,
            P::Restoring,
            P::Verifying,
            P::Cleanup,
            P::Done,
        ],
    }
}

/// The phase an attempt of `kind` starts in.
fn first_step(kind: PolicyKind) -> Phase {
    match kind {
        PolicyKind::Backup | PolicyKind::Snapshot => Phase::SnapshotRequested,
        PolicyKind::Server => Phase::ProtectRequested,
        PolicyKind::Restore => Phase::VolumeRequested,
    }
}

/// Whether `phase` is one of `kind`'s working steps: the ones that make
/// or wait for the job's own resource, and so can fail or give up.
/// Sharing cannot: the backup is recorded as succeeded by then.
fn is_step_of(kind: PolicyKind, phase: Phase) -> bool {
    let bookkeeping = matches!(
        phase,
        Phase::Pending | Phase::Sharing | Phase::Cleanup | Phase::Done
    );
    !bookkeeping && phases(kind).contains(&phase)
}

#[cfg(test)]
mod tests;
