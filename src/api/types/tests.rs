//! Every vendor/upstream sample the agent reads must parse.

use chrono::{TimeZone, Utc};

use super::*;
use crate::api::decode;

pub(crate) use crate::test_fixtures::api_sample as sample;

#[test]
fn backup_detail_samples_parse() {
    let b = decode::backup(&sample("vbs_backup_show_v3_otc.json")).unwrap();
    assert_eq!(b.status, "error");
    assert_eq!(
        b.fail_reason.as_deref(),
        Some("Connection to swift failed: [Errno 111] ECONNREFUSED")
    );
    assert_eq!(b.name, None);
    assert_eq!(b.object_count, None);
    assert_eq!(
        b.project_id.as_deref(),
        Some("b23b579f08c84228b9b4673c46f0c442")
    );
    assert_eq!(
        b.created_at,
        Some(Utc.with_ymd_and_hms(2013, 6, 27, 8, 48, 3).unwrap())
    );

    let b = decode::backup(&sample("cinder_backup_show_v3.56_apiref.json")).unwrap();
    assert_eq!((b.status.as_str(), b.size), ("creating", Some(10)));
    assert_eq!(
        b.project_id.as_deref(),
        Some("89afd400-b646-4bbc-b12b-c0a4d63e5bd3")
    );

    // v2 SDK fixtures: other project key, no created_at/description at all.
    let b = decode::backup(&sample("vbs_backup_show_gophertelekomcloud.json")).unwrap();
    assert!(b.project_id.is_some());
    let b = decode::backup(&sample("vbs_backup_show_otcextensions.json")).unwrap();
    assert_eq!(
        b.project_id.as_deref(),
        Some("b23b579f08c84228b9b4673c46f0c442")
    );
}

#[test]
fn backup_create_response_parses() {
    let b = decode::backup_created(&sample("vbs_backup_create_response_v3_otc.json")).unwrap();
    assert_eq!(b.id, "bb089eba-6b38-41c8-85a4-2b94fad7d570");
    assert_eq!(b.name.as_deref(), Some("backup1"));
}

#[test]
fn backup_lists_parse_with_next_marker() {
    let p = decode::backup_summaries(&sample("vbs_backups_list_summary_v3_otc.json")).unwrap();
    assert_eq!(p.items.len(), 2);
    assert_eq!(
        p.next_marker.as_deref(),
        Some("b3cf7a16-decc-4beb-8077-682737d94a58")
    );

    let p = decode::backups(&sample("vbs_backups_list_detail_otcextensions.json")).unwrap();
    assert_eq!(p.items.len(), 3);
    assert!(p.items[0].project_id.is_some() && p.items[1].project_id.is_none());
    assert!(p.next_marker.is_some());

    let p = decode::backups(&sample("vbs_backups_list_detail_v3_otc.json")).unwrap();
    assert_eq!((p.items.len(), p.next_marker), (3, None));
    assert!(p.items[2].project_id.is_none());

    let p = decode::backups(&sample("cinder_backups_list_detail_v3.56_apiref.json")).unwrap();
    assert_eq!(p.items.len(), 1);
}

#[test]
fn snapshot_samples_parse() {
    let s = decode::snapshot(&sample("cinder_snapshot_create_response_apiref.json")).unwrap();
    assert_eq!(s.status, "creating");
    let s = decode::snapshot(&sample("cinder_snapshot_show_v3.65_apiref.json")).unwrap();
    assert_eq!(
        s.volume_id.as_deref(),
        Some("b72c48f1-64b7-4cd8-9745-b12e0be82d37")
    );
    // Lower-case `t` in created_at.
    let s = decode::snapshot(&sample("evs_snapshot_show_otc.json")).unwrap();
    assert_eq!(
        s.created_at,
        Some(Utc.with_ymd_and_hms(2013, 2, 25, 4, 13, 17).unwrap())
    );
    // Duplicate `volume_id` key and a tab: strict derive would refuse it.
    let s = decode::snapshot(&sample(
        "blockstorage_snapshot_create_response_DUPKEY_gophertelekomcloud.json",
    ))
    .unwrap();
    assert_eq!(s.volume_id.as_deref(), Some("1234"));
    let p = decode::snapshots(&sample("evs_snapshots_list_detail_otc.json")).unwrap();
    assert!(!p.items.is_empty());
}

#[test]
fn malformed_sample_gives_a_clear_error() {
    let err = decode::json(&sample("vbs_restore_response_v3_otc_MALFORMED.txt")).unwrap_err();
    assert!(
        err.0
            .starts_with("malformed JSON (expected `,` or `}` at line 5 column 9)"),
        "{err}"
    );
}

#[test]
fn bad_answers_are_named() {
    assert_eq!(
        decode::backup("").unwrap_err().0,
        "empty body where JSON was expected"
    );
    assert_eq!(
        decode::backup("{}").unwrap_err().0,
        "answer has no `backup` member"
    );
    let err = decode::backup(r#"{"backup": {"status": "creating"}}"#).unwrap_err();
    assert!(err.0.contains("missing field `id`"), "{err}");
    let err = decode::backup("<html><title>502 Bad Gateway</title></html>").unwrap_err();
    assert!(err.0.contains("HTML page: 502 Bad Gateway"), "{err}");
    let other = decode::backup(r#"{"backup": {"id": "stolen", "status": "available"}}"#);
    assert_eq!(
        decode::about("backup", "b-1", other).unwrap_err().0,
        "the answer is about backup `stolen`, not `b-1` as asked"
    );
    let same = decode::backup(r#"{"backup": {"id": "B-1", "status": "available"}}"#);
    assert!(
        decode::about("backup", "b-1", same).is_ok(),
        "ids are UUIDs: any case"
    );
}

#[test]
fn timestamps_in_every_spelling() {
    let want = Utc.with_ymd_and_hms(2013, 6, 27, 8, 48, 3).unwrap();
    for s in [
        "2013-06-27T08:48:03",
        "2013-06-27t08:48:03.000000",
        "2013-06-27T08:48:03Z",
        "2013-06-27 08:48:03.000",
        "2013-06-27T10:48:03+02:00",
    ] {
        assert_eq!(parse_api_time(s), Some(want), "{s}");
    }
    assert_eq!(parse_api_time("yesterday"), None);
}

#[test]
fn vbs_description_wrapper_is_unwrapped() {
    let mut b = decode::backup(&sample("vbs_backup_show_v3_otc.json")).unwrap();
    b.description = Some(r#"{"DESC": "nightly", "INC": 1}"#.into());
    assert_eq!(b.description_text().as_deref(), Some("nightly"));
    b.description = Some("plain".into());
    assert_eq!(b.description_text().as_deref(), Some("plain"));
}

#[test]
fn share_samples_parse() {
    let list = decode::shares(&sample("vbs_share_list_otc.json")).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0].to_project_id.as_deref(),
        Some("722513ed0a324dadaabe5b2d0fe848b9")
    );
    assert_eq!(
        list[0].backup.as_ref().and_then(|b| b.name.as_deref()),
        Some("lbf")
    );
    // Reduced nested backup, no timestamps.
    let list = decode::shares(&sample("vbs_share_list_gophertelekomcloud.json")).unwrap();
    assert_eq!((list.len(), list[0].created_at), (1, None));
    // The create answer is a list with nulls.
    let created = decode::shares(&sample("vbs_share_create_response_otc.json")).unwrap();
    assert_eq!(created[0].id, "8332443e-9866-41d8-8a58-a898cf5db030");
    assert_eq!(created[0].created_at, None);
}

#[test]
fn csbs_protect_responses_parse() {
    let c = decode::checkpoint(&sample("csbs_protect_response_otc.json")).unwrap();
    assert_eq!(c.id, "4468f4b8-7c78-4222-a2ca-346b5d557dd2");
    assert_eq!(c.status.as_deref(), Some("protecting"));
    assert_eq!(c.extra_info, None);
    let plan = c.protection_plan.unwrap();
    assert_eq!(plan.resources[0].extra_info, Some(serde_json::json!({})));
    assert_eq!(plan.resources[0].kind.as_deref(), Some("OS::Nova::Server"));

    // The SDK fixture has the resource's extra_info as the string "{}".
    let c = decode::checkpoint(&sample("csbs_protect_response_gophertelekomcloud.json")).unwrap();
    assert_eq!(c.id, "92dba83d-cc6f-4883-a20d-de6934510b7e");
    let r = &c.protection_plan.unwrap().resources[0];
    assert_eq!(r.extra_info, Some(serde_json::json!({})));
    assert_eq!(r.id, "f8ddc472-cf00-4384-851e-5f2a68c33762");
}

#[test]
fn csbs_checkpoint_item_samples_parse() {
    let i = decode::checkpoint_item(&sample("csbs_checkpoint_item_show_otc.json")).unwrap();
    assert_eq!(i.id, "90c1d5fa-1b9f-4aeb-b2f4-81c806e98190");
    assert_eq!(
        i.checkpoint_id.as_deref(),
        Some("f672a1bb-6912-446a-816c-72792c5263e0")
    );
    assert_eq!(i.status, "available");
    assert_eq!(i.extend_info.progress, Some(100.0));
    // `fail_code: {}` and `fail_reason: ""` mean no failure.
    assert_eq!(i.failure(), None);
    assert_eq!(i.extend_info.volume_backups.len(), 2);
    assert_eq!(
        i.extend_info.volume_backups[0].source_volume_id.as_deref(),
        Some("ee27f809-6fb5-40ae-ac46-c932bb4ee8fe")
    );
    assert_eq!(
        i.created_at,
        Some(
            Utc.with_ymd_and_hms(2017, 4, 15, 4, 20, 37).unwrap()
                + chrono::TimeDelta::microseconds(277_880)
        )
    );
    assert_eq!(i.raw["backup_data"]["ram"], 4096);

    let i = decode::checkpoint_item(&sample("csbs_checkpoint_item_show_gophertelekomcloud.json"))
        .unwrap();
    assert_eq!(i.description.as_deref(), Some("backup des"));
    assert_eq!(i.extend_info.size, Some(146_184.0));
    assert_eq!(i.extend_info.volume_backups[1].size, Some(98_224.0));
    assert_eq!(i.extend_info.volume_backups[1].bootable, Some(false));
}

#[test]
fn csbs_checkpoint_item_lists_parse() {
    let p = decode::checkpoint_items(&sample("csbs_checkpoint_items_list_otc.json")).unwrap();
    assert_eq!((p.items.len(), p.next_marker), (1, None));
    assert_eq!(p.items[0].extend_info.volume_backups.len(), 2);
    // The SDK fixture's item has no times, volume_backups or fail_code.
    let p = decode::checkpoint_items(&sample(
        "csbs_checkpoint_items_list_gophertelekomcloud.json",
    ))
    .unwrap();
    let i = &p.items[0];
    assert_eq!((i.created_at, i.updated_at), (None, None));
    assert!(i.extend_info.volume_backups.is_empty());
    assert_eq!(i.extend_info.fail_code, None);
    assert_eq!(
        i.resource_id.as_deref(),
        Some("f8ddc472-cf00-4384-851e-5f2a68c33762")
    );
}

#[test]
fn csbs_items_parse_leniently() {
    let body = serde_json::json!({"checkpoint_item": {
        "id": "i", "status": "error", "name": null, "checkpoint_id": null, "unknown": [1],
        "extend_info": {"progress": "29.9", "fail_reason": "disk vanished",
                        "fail_code": {"Code": 1234, "Description": "volume not found"},
                        "volume_backups": null, "size": null, "finished_at": "garbage"}}})
    .to_string();
    let i = decode::checkpoint_item(&body).unwrap();
    assert_eq!(i.extend_info.progress, Some(29.9));
    assert_eq!(
        i.failure().as_deref(),
        Some("disk vanished (1234: volume not found)")
    );
    assert!(i.extend_info.volume_backups.is_empty());
    assert_eq!(i.extend_info.finished_at, None);

    for (progress, want) in [
        (serde_json::json!(29.9), Some(29.9)),
        (serde_json::json!(30), Some(30.0)),
        (serde_json::json!("45%"), Some(45.0)),
        (serde_json::json!(null), None),
        (serde_json::json!("soon"), None),
    ] {
        let body = serde_json::json!({"checkpoint_item": {"id": "i", "status": "protecting",
            "extend_info": {"progress": progress}}})
        .to_string();
        assert_eq!(
            decode::checkpoint_item(&body).unwrap().extend_info.progress,
            want,
            "{progress}"
        );
    }
    // extend_info null or missing, fail_code as a bare string.
    let body = r#"{"checkpoint_item": {"id": "i", "status": "available", "extend_info": null}}"#;
    assert_eq!(
        decode::checkpoint_item(body).unwrap().extend_info,
        ExtendInfo::default()
    );
    let body = r#"{"checkpoint_item": {"id": "i", "status": "error", "extend_info": {"fail_code": "CSBS.6005"}}}"#;
    assert_eq!(
        decode::checkpoint_item(body).unwrap().failure().as_deref(),
        Some("CSBS.6005")
    );
    // Without an id the answer is unusable.
    assert!(decode::checkpoint_item(r#"{"checkpoint_item": {"status": "available"}}"#).is_err());
}

#[test]
fn volume_and_restore_samples_parse() {
    let v = decode::volume(&sample("cinder_volume_create_response_apiref.json")).unwrap();
    assert_eq!(v.id, "2b955850-f177-45f7-9f49-ecb2c256d161");
    assert_eq!((v.status.as_str(), v.size), ("creating", Some(10)));
    assert_eq!(v.name, None);
    assert_eq!(v.availability_zone.as_deref(), Some("nova"));
    assert!(v.metadata.is_empty());
    assert_eq!(
        v.created_at,
        Some(
            Utc.with_ymd_and_hms(2018, 11, 28, 6, 21, 12).unwrap()
                + chrono::TimeDelta::microseconds(715_987)
        )
    );

    for file in [
        "cinder_backup_restore_response_apiref.json",
        "vbs_restore_response_gophertelekomcloud.json",
    ] {
        let r = decode::restored(&sample(file)).unwrap();
        assert!(!r.volume_id.is_empty() && !r.backup_id.is_empty(), "{file}");
        assert!(r.volume_name.is_some(), "{file}");
    }
    assert!(decode::restored(&sample("vbs_restore_response_v3_otc_MALFORMED.txt")).is_err());
    assert_eq!(
        decode::job_id(&sample("vbs_restore_job_response_otc.json")).unwrap(),
        "70a599e0-31e7-49b7-b260-868f441e862b"
    );
}

#[test]
fn job_samples_parse_with_empty_strings_as_absent() {
    let done = decode::job(&sample("vbs_job_show_success_otc.json")).unwrap();
    assert_eq!(done.state, JobState::Success);
    assert_eq!(done.job_type.as_deref(), Some("bksCreateBackup"));
    assert_eq!(
        done.entities.get("backup_id").map(String::as_str),
        Some("ba5401a2-7cd2-4c01-8c0d-c936ab412d6d")
    );
    assert_eq!((done.error_code, done.fail_reason), (None, None));

    let running = decode::job(&sample("evs_job_running_otc.json")).unwrap();
    assert_eq!(running.state, JobState::Running);

    // EVS nests a batch's sub_jobs inside `entities`; they are not entities.
    let batch = decode::job(&sample("evs_job_batch_success_otc.json")).unwrap();
    assert_eq!(batch.state, JobState::Success);
    assert_eq!(batch.job_type.as_deref(), Some("batchCreateVolume"));
    assert!(batch.entities.is_empty());

    let failed = decode::job(
        r#"{"status":"FAIL","job_id":"j1","entities":{"backup_id":"","sub_jobs":[]},
            "error_code":"VolumeBackup.0200","fail_reason":"restore failed"}"#,
    )
    .unwrap();
    assert_eq!(failed.state, JobState::Fail);
    assert!(failed.entities.is_empty());
    assert_eq!(failed.failure(), "restore failed (VolumeBackup.0200)");

    let unknown = decode::job(r#"{"status":"PAUSED","job_id":"j1"}"#).unwrap_err();
    assert!(
        unknown.0.contains("unknown job status `PAUSED`"),
        "{unknown}"
    );
}
