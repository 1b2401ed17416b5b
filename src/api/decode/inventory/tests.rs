//! The published tag-filter and list samples, and the nulls, extra fields
//! and odd shapes the inventory decoders must take or refuse cleanly.

use std::collections::BTreeMap;

use super::*;
use crate::test_fixtures::api_sample as sample;

const PUBLISHED_EVS: &str = "evs_tags_filter_response_otc_MALFORMED.txt";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_published_evs_filter_answer_is_a_bad_answer_not_a_panic() {
    let err = tagged(&sample(PUBLISHED_EVS)).unwrap_err();
    assert!(err.0.starts_with("malformed JSON"), "{err}");
}

#[test]
fn the_evs_filter_answer_gives_id_name_status_and_tags() {
    // The published sample with its trailing comma taken out.
    let body = sample(PUBLISHED_EVS).replace("\"shareable\": false,", "\"shareable\": false");
    let page = tagged(&body).unwrap();
    assert_eq!(page.total_count, Some(1));
    let [item] = page.items.as_slice() else {
        panic!("{page:?}")
    };
    assert_eq!(
        item.found,
        Found {
            id: "7fa6b592-ac75-460d-a28a-bb17429d1eb2".into(),
            name: Some("resource1".into()),
            status: Some("in-use".into()),
            // key1 is listed twice; the labels keep the last value ...
            labels: labels(&[("key1", "value2")]),
            attached_to: vec!["2080869e-ba46-4ea5-b45e-3191ac0f1d54".into()],
        }
    );
    // ... and the list keeps both, for matching.
    assert_eq!(item.tags.len(), 2);
}

#[test]
fn the_ecs_filter_answer_has_no_detail_and_a_total_beyond_the_page() {
    let page = tagged(&sample("ecs_tags_filter_response_otc.json")).unwrap();
    assert_eq!(page.total_count, Some(1000));
    assert_eq!(
        page.items[0].found,
        Found {
            id: "cdfs_cefs_wesas_12_dsad".into(),
            name: Some("ecs_test".into()),
            status: None,
            labels: labels(&[("key1", "value1")]),
            attached_to: Vec::new(),
        }
    );
}

#[test]
fn the_deprecated_map_form_of_tags_reads_the_same() {
    let page = tagged(&sample(
        "evs_tags_resource_instances_deprecated_response_otc.json",
    ))
    .unwrap();
    assert_eq!(page.total_count, Some(2));
    let first = &page.items[0].found;
    assert_eq!(first.id, "47cc4949-447a-43dc-b482-a1d7917fef69");
    // resource_name and the detail's name are both null.
    assert_eq!(first.name, None);
    assert_eq!(first.status.as_deref(), Some("available"));
    assert_eq!(first.labels, labels(&[("a", "c"), ("d", "e")]));
}

#[test]
fn a_count_answer_to_a_filter_is_not_an_empty_list() {
    let err = tagged(&sample("evs_tags_count_response_otc.json")).unwrap_err();
    assert_eq!(err.0, "answer has no `resources` list");
}

#[test]
fn tag_filter_nulls_strings_and_odd_items() {
    let page = tagged(
        r#"{"total_count": "3", "extra": [1], "resources": [
            {"resource_id": "a", "resource_name": "", "resource_detail": null, "tags": null, "more": {}},
            {"resource_id": null, "resource_detail": {"id": "b", "name": "vol-b", "status": "available"},
             "tags": [{"key": "k", "value": null}, {"key": 7, "value": "x"}, {"value": "y"}, "z"]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(page.total_count, Some(3));
    let (a, b) = (&page.items[0].found, &page.items[1].found);
    assert_eq!((a.id.as_str(), &a.name, a.labels.len()), ("a", &None, 0));
    assert_eq!(b.id, "b");
    assert_eq!(b.name.as_deref(), Some("vol-b"));
    // A tag without a value is still there, with "".
    assert_eq!(b.labels, labels(&[("k", "")]));

    let page = tagged(r#"{"resources": []}"#).unwrap();
    assert_eq!((page.total_count, page.items.len()), (None, 0));

    for (body, why) in [
        (
            r#"{"resources": [{"resource_name": "x"}]}"#,
            "no `resource_id`",
        ),
        (
            r#"{"resources": [{"resource_id": "x", "tags": "k=v"}]}"#,
            "unexpected `tags`",
        ),
        (
            r#"{"resources": [{"resource_id": "x"}], "total_count": -1}"#,
            "not a count",
        ),
        (r#"{"resources": {}}"#, "not a list"),
        (r#"{"resources": [3]}"#, "not an object"),
        ("", "empty body"),
    ] {
        let err = tagged(body).unwrap_err();
        assert!(err.0.contains(why), "{body}: {err}");
    }
}

#[test]
fn a_volume_list_page_goes_on_after_its_last_volume() {
    // The vendor's list: its next link points at another path.
    let page = found_volumes(&sample("evs_cloudvolumes_list_detail_otc.json")).unwrap();
    assert_eq!(
        page.items,
        [Found {
            id: "b104b8db-170d-441b-897a-3c8ba9c5a214".into(),
            name: Some("zjb_u25_test".into()),
            status: Some("available".into()),
            labels: BTreeMap::new(),
            attached_to: Vec::new(),
        }]
    );
    assert_eq!(
        page.next_marker.as_deref(),
        Some("b104b8db-170d-441b-897a-3c8ba9c5a214")
    );

    // A next link without a marker still means a next page.
    let page = found_volumes(
        r#"{"volumes": [{"id": "v1", "name": null, "status": null, "metadata": null},
                        {"id": "v2", "metadata": {"backup": "nightly", "n": 3, "deep": {"x": 1}}}],
            "volumes_links": [{"rel": "next", "href": "/v3/p/volumes/detail?limit=2"}]}"#,
    )
    .unwrap();
    assert_eq!(page.next_marker.as_deref(), Some("v2"));
    assert_eq!((&page.items[0].name, &page.items[0].status), (&None, &None));
    assert_eq!(
        page.items[1].labels,
        labels(&[("backup", "nightly"), ("n", "3")])
    );

    for body in [
        r#"{"volumes": [], "volumes_links": [{"rel": "next", "href": "x?marker=v9"}]}"#,
        r#"{"volumes": [{"id": "v1"}], "volumes_links": null}"#,
        r#"{"volumes": [{"id": "v1"}], "volumes_links": [{"rel": "self", "href": "x"}]}"#,
    ] {
        assert_eq!(found_volumes(body).unwrap().next_marker, None, "{body}");
    }
    for body in [
        r#"{"volumes": [{"name": "no id"}]}"#,
        r#"{"volumes": [{"id": "v1", "metadata": "backup=nightly"}]}"#,
        r#"{"servers": []}"#,
    ] {
        assert!(found_volumes(body).is_err(), "{body}");
    }
}

#[test]
fn servers_read_from_nova_lists_and_detail() {
    let page = found_servers(
        r#"{"servers": [{"id": "s1", "name": "db-1", "status": "ACTIVE",
                         "metadata": {"backup": "nightly"}, "tags": ["a=b"], "OS-EXT-STS:vm_state": "active"}],
            "servers_links": [{"rel": "next", "href": "https://ecs/v2.1/p/servers/detail?limit=1&marker=s1"}]}"#,
    )
    .unwrap();
    assert_eq!(page.next_marker.as_deref(), Some("s1"));
    assert_eq!(page.items[0].labels, labels(&[("backup", "nightly")]));
    assert_eq!(page.items[0].status.as_deref(), Some("ACTIVE"));

    let server = found_server(r#"{"server": {"id": "s1", "status": "SHUTOFF", "metadata": {}}}"#);
    assert_eq!(server.unwrap().status.as_deref(), Some("SHUTOFF"));
    assert!(found_server(r#"{"server": null}"#).is_err());
}
