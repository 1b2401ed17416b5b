//! Every CBR sample the vendor publishes parses: the answers into the
//! agent's types, the requests into the shapes the API reference gives.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::*;
use crate::api::fault::FaultBody;
use crate::test_fixtures::api_sample as sample;

fn sample_json(name: &str) -> Value {
    serde_json::from_str(&sample(name)).unwrap()
}

#[test]
fn vaults_parse_with_their_resources_and_units() {
    let page = vaults(&sample("cbr_vaults_list_otc.json")).unwrap();
    // `count` is the total over all pages, not this page's length.
    assert_eq!((page.items.len(), page.count), (1, Some(50)));
    assert!(page.more_after(0));
    let v = &page.items[0];
    assert_eq!(v.name.as_deref(), Some("vault-8538"));
    let billing = v.billing.as_ref().unwrap();
    assert_eq!(billing.object_type.as_deref(), Some("server"));
    assert_eq!((billing.size, billing.used), (Some(100), Some(0)));

    let v = vault(&sample("cbr_vault_show_otc.json")).unwrap();
    assert_eq!(v.auto_bind, Some(true));
    assert!(v.resources.is_empty() && !v.holds("anything"));
    assert_eq!(
        v.created_at,
        Some(
            Utc.with_ymd_and_hms(2020, 7, 24, 9, 12, 49).unwrap()
                + chrono::Duration::milliseconds(492)
        )
    );

    let v = vault(&sample("cbr_vault_create_response_otc.json")).unwrap();
    assert!(v.holds("23a320a5-3efd-4568-b1aa-8dd9183cc64c"));
    let r = &v.resources[0];
    assert_eq!(
        (r.kind.as_deref(), r.size),
        (Some("OS::Nova::Server"), Some(40))
    );
}

#[test]
fn a_backup_run_answers_with_its_checkpoint_and_no_backup_ids() {
    let c = cbr_checkpoint(&sample("cbr_checkpoint_create_response_otc.json")).unwrap();
    assert_eq!(c.id, "8b0851a8-adf3-4f4c-a914-dead08bf9664");
    assert_eq!(c.status.as_deref(), Some("protecting"));
    assert!(c.skipped().is_empty());
    let vault = c.vault.as_ref().unwrap();
    assert_eq!(vault.resources[0].resource_size, Some(40));
    let info = c.extra_info.as_ref().unwrap();
    assert_eq!(info.name.as_deref(), Some("backup_name"));
    assert_eq!(info.retention_duration, Some(-1.0));

    // The checkpoint's own GET lacks extra_info (the vendor's STO-10008).
    let shown = cbr_checkpoint(&sample("cbr_checkpoint_show_otc.json")).unwrap();
    assert_eq!(shown.id, c.id);
    assert_eq!(shown.status.as_deref(), Some("available"));
    assert_eq!(shown.extra_info, None);
}

#[test]
fn skipped_resources_are_read_with_code_and_reason() {
    let mut v = sample_json("cbr_checkpoint_create_response_otc.json");
    v["checkpoint"]["vault"]["skipped_resources"] = serde_json::json!([
        {"id": "vol-1", "type": "OS::Cinder::Volume", "name": "db",
         "code": "BackupService.6125", "reason": "being backed up"},
        {"id": "vol-2", "code": 7003}
    ]);
    let c = cbr_checkpoint(&v.to_string()).unwrap();
    let skipped = c.skipped();
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0].code.as_deref(), Some("BackupService.6125"));
    assert_eq!(skipped[0].reason.as_deref(), Some("being backed up"));
    assert_eq!(
        (skipped[1].code.as_deref(), skipped[1].reason.as_deref()),
        (Some("7003"), None)
    );
}

#[test]
fn backups_parse_with_server_children_and_missing_fields() {
    let b = cbr_backup(&sample("cbr_backup_show_otc.json")).unwrap();
    assert_eq!(
        (b.status.as_str(), b.resource_size),
        ("available", Some(40))
    );
    assert_eq!(b.resource_type.as_deref(), Some("OS::Nova::Server"));
    assert_eq!((b.updated_at, b.expired_at), (None, None));
    assert_eq!(b.extend_info.auto_trigger, Some(true));
    assert_eq!(
        b.extend_info.supported_restore_mode.as_deref(),
        Some("backup")
    );
    // The disk backup a server restore maps, without description or AZ.
    let child = &b.children[0];
    assert_eq!(child.parent_id.as_deref(), Some(b.id.as_str()));
    assert_eq!(child.resource_type.as_deref(), Some("OS::Cinder::Volume"));
    assert_eq!(
        (child.description.as_deref(), child.resource_az.as_deref()),
        (None, None)
    );
    assert_eq!(child.extend_info.encrypted, Some(true));

    let page = cbr_backups(&sample("cbr_backups_list_otc.json")).unwrap();
    assert_eq!((page.items.len(), page.count), (2, Some(2)));
    assert!(!page.more_after(0));
    let disk = &page.items[1];
    assert_eq!(disk.resource_type.as_deref(), Some("OS::Cinder::Volume"));
    assert_eq!(disk.extend_info.bootable, Some(true));
    assert_eq!(disk.description.as_deref(), Some(""));
    assert!(disk.expired_at.is_some() && disk.updated_at.is_some());
}

#[test]
fn sizes_counts_and_flags_are_read_as_numbers_or_strings() {
    let mut v = sample_json("cbr_backup_show_otc.json");
    v["backup"]["resource_size"] = "40".into();
    v["backup"]["extend_info"]["incremental"] = "false".into();
    v["backup"]["children"] = Value::Null;
    v["backup"]["extend_info"]["bootable"] = Value::Null;
    let b = cbr_backup(&v.to_string()).unwrap();
    assert_eq!(b.resource_size, Some(40));
    assert_eq!(b.extend_info.incremental, Some(false));
    assert!(b.children.is_empty());
    assert_eq!(b.extend_info.bootable, None);

    let mut v = sample_json("cbr_vaults_list_otc.json");
    v["count"] = "50".into();
    v["vaults"][0]["billing"]["size"] = "100".into();
    let page = vaults(&v.to_string()).unwrap();
    assert_eq!(page.count, Some(50));
    assert_eq!(page.items[0].billing.as_ref().unwrap().size, Some(100));
}

#[test]
fn a_list_without_its_key_or_count_is_told_apart() {
    assert!(cbr_backups(r#"{"count": 0}"#)
        .unwrap_err()
        .0
        .contains("no `backups` list"));
    assert!(cbr_backups(r#"{"backups": {}}"#)
        .unwrap_err()
        .0
        .contains("not a list"));
    // Without a count the pager cannot know the total, so it stops.
    let page = cbr_backups(r#"{"backups": [{"id": "b", "status": "available"}]}"#).unwrap();
    assert_eq!(page.count, None);
    assert!(!page.more_after(0));
    // A page that came back empty ends the paging even below the total.
    let empty = cbr_backups(r#"{"backups": [], "count": 9}"#).unwrap();
    assert!(!empty.more_after(3));
    // A backup without a status is not guessed at.
    assert!(cbr_backups(r#"{"backups": [{"id": "b"}]}"#).is_err());
}

#[test]
fn members_parse_from_add_list_and_update() {
    let added = members(&sample("cbr_member_add_response_otc.json")).unwrap();
    assert_eq!(added.items[0].status.as_deref(), Some("pending"));
    assert_eq!(
        added.items[0].dest_project_id.as_deref(),
        Some("075e6035d300d48c2fd0c00b78b71ebf")
    );
    let listed = members(&sample("cbr_members_list_otc.json")).unwrap();
    assert_eq!((listed.items.len(), listed.count), (1, Some(50)));
    let updated = member_status(&sample("cbr_member_update_response_otc.json")).unwrap();
    assert_eq!(updated.status.as_deref(), Some("accepted"));
    assert_eq!(
        updated.vault_id.as_deref(),
        Some("4b27c05b-8ad7-48c6-a886-526666c035f0")
    );
}

#[test]
fn operation_logs_read_success_as_no_error() {
    let page = operation_logs(&sample("cbr_operation_logs_list_otc.json")).unwrap();
    let log = &page.items[0];
    assert_eq!(log.operation_type.as_deref(), Some("backup"));
    assert_eq!(log.status.as_deref(), Some("success"));
    // Success is `{"code": "", "message": ""}`, not null.
    assert_eq!(
        (log.error_info.code(), log.error_info.message()),
        (None, None)
    );
    assert_eq!(
        log.resource_id(),
        Some("1dab32fa-ebf2-415a-ab0b-eabe6353bc86")
    );
    assert_eq!(
        log.backup_id(),
        Some("0e5d0ef6-7f0a-4890-b98c-cb12490e31c1")
    );
    assert_eq!(log.progress(), Some(100.0));
    assert!(log.ended_at > log.started_at);

    let one = operation_log(&sample("cbr_operation_log_show_otc.json")).unwrap();
    assert_eq!(one.checkpoint_id, log.checkpoint_id);

    let mut v = sample_json("cbr_operation_log_show_otc.json");
    v["operation_log"]["status"] = "failed".into();
    v["operation_log"]["error_info"] =
        serde_json::json!({"code": "BackupService.7003", "message": "disk status"});
    v["operation_log"]["extra_info"]["common"]["progress"] = "30".into();
    let failed = operation_log(&v.to_string()).unwrap();
    assert_eq!(failed.error_info.code(), Some("BackupService.7003"));
    assert_eq!(failed.error_info.message(), Some("disk status"));
    assert_eq!(failed.progress(), Some(30.0));
}

#[test]
fn cbr_errors_have_the_flat_shape() {
    let fault = FaultBody::parse(&sample("cbr_error_operation_log_not_found_otc.json"));
    assert_eq!(
        fault.describe().as_deref(),
        Some("BackupService.6500: Operation log does not exist.")
    );
}

#[test]
fn vault_resource_calls_parse() {
    let added = added_resources(&sample("cbr_vault_addresources_response_otc.json")).unwrap();
    assert_eq!(added, ["97595625-198e-4e4d-879b-9d53f68ba551"]);

    let request = sample_json("cbr_vault_addresources_request_otc.json");
    let resources = request["resources"].as_array().unwrap();
    assert!(resources
        .iter()
        .all(|r| r["id"].is_string() && r["type"].is_string()));
    let request = sample_json("cbr_vault_removeresources_request_otc.json");
    assert!(request["resource_ids"]
        .as_array()
        .is_some_and(|ids| !ids.is_empty()));
    // The published sample lists the destination vault, not the moved
    // resources: the agent never reads this answer.
    let moved = sample_json("cbr_vault_migrateresources_response_otc.json");
    assert!(moved["migrated_resources"].is_array());
}

#[test]
fn request_samples_have_the_documented_shapes() {
    let vault = sample_json("cbr_vault_create_disk_request_otc.json");
    let billing = &vault["vault"]["billing"];
    assert_eq!(billing["object_type"], "disk");
    assert!(billing["size"].as_u64().is_some_and(|s| s >= 10));
    assert!(vault["vault"]["resources"].is_array());

    let run = sample_json("cbr_checkpoint_create_request_otc.json");
    let checkpoint = &run["checkpoint"];
    assert!(checkpoint["vault_id"].is_string());
    assert!(checkpoint["parameters"].is_object());

    let restore = sample_json("cbr_backup_restore_server_request_otc.json");
    let mappings = restore["restore"]["mappings"].as_array().unwrap();
    assert!(mappings
        .iter()
        .all(|m| m["backup_id"].is_string() && m["volume_id"].is_string()));

    let add = sample_json("cbr_member_add_request_otc.json");
    assert!(add["members"]
        .as_array()
        .is_some_and(|m| m.iter().all(Value::is_string)));
    let update = sample_json("cbr_member_update_request_otc.json");
    assert!(update["status"].is_string() && update["vault_id"].is_string());
}

#[test]
fn replication_samples_parse_though_the_agent_does_not_replicate() {
    for (request, response) in [
        (
            "cbr_backup_replicate_request_otc.json",
            "cbr_backup_replicate_response_otc.json",
        ),
        (
            "cbr_checkpoint_replicate_request_otc.json",
            "cbr_checkpoint_replicate_response_otc.json",
        ),
    ] {
        assert!(sample_json(request)["replicate"]["destination_vault_id"].is_string());
        assert!(sample_json(response)["replication"].is_object());
    }
    let one = sample_json("cbr_backup_replicate_response_otc.json");
    assert!(one["replication"]["replication_record_id"].is_string());
    let all = sample_json("cbr_checkpoint_replicate_response_otc.json");
    assert!(all["replication"]["backups"][0]["replication_record_id"].is_string());
}

#[test]
fn every_cbr_sample_is_read_by_a_test_here() {
    let dir = format!("{}/tests/fixtures/api", env!("CARGO_MANIFEST_DIR"));
    let this_file = include_str!("tests.rs");
    let mut samples: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cbr_"))
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 26, "{samples:?}");
    let unread: Vec<&String> = samples
        .iter()
        .filter(|n| !this_file.contains(&format!("\"{n}\"")))
        .collect();
    assert!(unread.is_empty(), "samples no test reads: {unread:?}");
}
