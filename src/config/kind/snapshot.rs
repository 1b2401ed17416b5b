//! Kind `snapshot`: a snapshot of each volume, kept on the block store
//! until retention removes it; nothing is backed up or shared.

use super::{Rules, Targets, VOLUMES};
use crate::config::model::{PolicyKind, SnapshotWork, Work};
use crate::config::path::FieldPath;
use crate::config::raw::RawPolicy;
use crate::config::report::Report;

/// Volumes as targets; the server fields and `keep_snapshot` refused.
pub(super) const RULES: Rules = Rules {
    targets: &VOLUMES,
    refuse,
    work,
};

/// The server fields, and `keep_snapshot`: a snapshot is what it keeps.
fn refuse(raw: &RawPolicy, path: &FieldPath, report: &mut Report<'_>) {
    super::server::refuse_on(PolicyKind::Snapshot, raw, path, report);
    super::refuse_given(
        raw,
        &["vault", "add_to_vault"],
        |field| {
            format!("`{field}` applies to kind backup only: snapshots stay on the block store, not in a CBR vault")
        },
        path,
        report,
    );
    if raw.keep_snapshot.is_some() {
        report.key(
            &path.key("keep_snapshot"),
            "keep_snapshot applies to kind backup only; a snapshot policy keeps its snapshots until retention removes them",
        );
    }
}

/// The volumes and `force`; `share_to` and `full_backup_every`, which only
/// a backup has, are refused.
fn work(raw: &RawPolicy, ids: Targets, path: &FieldPath, report: &mut Report<'_>) -> Option<Work> {
    let mut valid = true;
    for (field, message) in [
        (
            "share_to",
            "share_to applies to kind backup only: snapshots cannot be shared",
        ),
        (
            "full_backup_every",
            "full_backup_every applies to kind backup only",
        ),
        (
            "drill",
            "drill applies to kind backup only: a drill restores backups, and a snapshot policy makes none",
        ),
    ] {
        if super::given(raw, field) {
            report.key(&path.key(field), message);
            valid = false;
        }
    }
    if !valid {
        return None;
    }
    Some(Work::Snapshot(SnapshotWork {
        volumes: ids?,
        force: raw.force.unwrap_or(false),
    }))
}
