//! Kind `backup`: a VBS backup of each volume, made from a snapshot; the
//! only kind that shares its backups and picks when one is full.

use super::{Rules, Targets, VOLUMES};
use crate::config::checks;
use crate::config::model::{BackupWork, PolicyKind, Work};
use crate::config::path::FieldPath;
use crate::config::raw::RawPolicy;
use crate::config::report::Report;
use crate::config::validate::unique_ids;

/// Volumes as targets; the server fields refused.
pub(super) const RULES: Rules = Rules {
    targets: &VOLUMES,
    refuse: |raw, path, report| super::server::refuse_on(PolicyKind::Backup, raw, path, report),
    work,
};

/// The volumes, with how each backup is made and shared.
fn work(raw: &RawPolicy, ids: Targets, path: &FieldPath, report: &mut Report<'_>) -> Option<Work> {
    let share_to = share_to(raw.share_to.as_deref(), path, report);
    let full_backup_every = match raw.full_backup_every {
        None => Some(None),
        Some(n @ 1..=1000) => Some(Some(n)),
        Some(n) => {
            report.value(
                &path.key("full_backup_every"),
                format!("full_backup_every {n} is out of range; use 1 (always full) to 1000"),
            );
            None
        }
    };
    Some(Work::Backup(BackupWork {
        volumes: ids?,
        force: raw.force.unwrap_or(false),
        keep_snapshot: raw.keep_snapshot.unwrap_or(false),
        share_to: share_to?,
        full_backup_every: full_backup_every?,
    }))
}

/// Project IDs, each once.
fn share_to(
    raw: Option<&[String]>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        return Some(Vec::new());
    };
    let twice = |id: &str| format!("project {id} is listed twice; list each project once");
    unique_ids(
        raw,
        &path.key("share_to"),
        checks::project_id,
        twice,
        report,
    )
}
