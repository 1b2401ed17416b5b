//! Kind `backup`: a VBS backup of each volume, made from a snapshot; the
//! only kind that shares its backups and picks when one is full.

use std::collections::BTreeMap;

use super::{Rules, Targets, VOLUMES};
use crate::config::checks;
use crate::config::model::{BackupService, BackupWork, Cloud, PolicyKind, Work};
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
        vault: vault(raw.vault.as_deref(), path, report)?,
        add_to_vault: raw.add_to_vault.unwrap_or(false),
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

/// `vault`: a CBR vault's name or ID, not empty.
pub(super) fn vault(
    raw: Option<&str>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Option<String>> {
    match raw.map(str::trim) {
        None => Some(None),
        Some("") => {
            report.value(
                &path.key("vault"),
                "vault is empty; give the name or ID of the CBR vault",
            );
            None
        }
        Some(v) => Some(Some(v.to_string())),
    }
}

/// What a backup or server policy may and must say for its cloud's backup
/// service: a CBR cloud needs the vault (a disk vault for volumes, a server
/// vault for servers), and a backup has no snapshot of the agent's to keep
/// or force; a VBS cloud has no vault.
pub(in crate::config) fn check_service(
    policies: &[Option<RawPolicy>],
    clouds: &BTreeMap<String, Cloud>,
    report: &mut Report<'_>,
) {
    for (path, raw, kind, cloud) in super::on_clouds(policies, clouds) {
        let vault_kind = match kind {
            Some(PolicyKind::Backup) => "disk",
            Some(PolicyKind::Server) => "server",
            _ => continue,
        };
        match cloud.backup_service {
            BackupService::Vbs => {
                for (field, given) in [
                    ("vault", raw.vault.is_some()),
                    ("add_to_vault", raw.add_to_vault.is_some()),
                ] {
                    if given {
                        report.key(
                            &path.key(field),
                            format!(
                                "`{field}` applies to CBR only; cloud \"{}\" backs up through VBS and CSBS (set its `backup_service: cbr` to use a CBR vault)",
                                cloud.name
                            ),
                        );
                    }
                }
            }
            BackupService::Cbr | BackupService::Auto => {
                if raw.vault.is_none() {
                    report.value(
                        &path.key("cloud"),
                        format!(
                            "cloud \"{}\" can back up through CBR (backup_service: {}); add `vault:` with the name or ID of the CBR {vault_kind} vault to back up in",
                            cloud.name,
                            cloud.backup_service.as_str()
                        ),
                    );
                }
                if cloud.backup_service == BackupService::Cbr {
                    for (field, given, why) in [
                        (
                            "keep_snapshot",
                            raw.keep_snapshot.is_some(),
                            "CBR backs up a disk without a snapshot of the agent's",
                        ),
                        (
                            "force",
                            raw.force.is_some(),
                            "CBR backs up in-use disks by itself",
                        ),
                        (
                            "provider_id",
                            raw.provider_id.is_some(),
                            "a CSBS provider does not apply to a CBR vault",
                        ),
                    ] {
                        if given {
                            report.key(
                                &path.key(field),
                                format!(
                                    "`{field}` does not apply on CBR cloud \"{}\": {why}",
                                    cloud.name
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}
