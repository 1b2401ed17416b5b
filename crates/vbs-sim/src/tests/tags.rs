//! Over HTTP: EVS tags and their filter, the vendor's volume list, Cinder's
//! metadata filter, the ECS tag filter and Nova's list, volumes and servers
//! changed or removed between runs, faults scoped to paths. Shapes are
//! checked against the published samples in `tests/fixtures/api/`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::*;

/// No volume numbers.
const NONE: [u32; 0] = [];
const SRV: &str = "5e7d1c2a-0000-4000-8000-00000000000a";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn vol(n: u32, tags: &[(&str, &str)], metadata: &[(&str, &str)]) -> SimVolume {
    SimVolume {
        id: format!("{n:08x}-0000-4000-8000-{n:012x}"),
        size_gb: 10,
        tags: map(tags),
        metadata: map(metadata),
        ..SimVolume::default()
    }
}

fn server(project: &str, n: u32, tags: &[(&str, &str)]) -> SimServer {
    SimServer {
        project: project.into(),
        id: format!("5e7d1c2a-0000-4000-8000-{n:012x}"),
        name: format!("web-{n}"),
        volumes: vec![(format!("disk-{n}"), 40)],
        tags: map(tags),
        ..SimServer::default()
    }
}

async fn sim_with(volumes: Vec<SimVolume>, servers: Vec<SimServer>) -> SimHandle {
    let config = SimConfig {
        projects: vec![SimProject::new(P, volumes)],
        tokens: vec!["tok".into()],
        servers,
        snapshot_duration: Duration::ZERO,
        backup_duration: Duration::ZERO,
        ..SimConfig::default()
    };
    start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Four volumes: 1 nightly+db, 2 weekly+db, 3 nightly, 4 untagged.
async fn tagged_sim() -> SimHandle {
    sim_with(
        vec![
            vol(1, &[("backup", "nightly"), ("tier", "db")], &[]),
            vol(2, &[("backup", "weekly"), ("tier", "db")], &[]),
            vol(3, &[("backup", "nightly")], &[]),
            vol(4, &[], &[]),
        ],
        Vec::new(),
    )
    .await
}

/// A published body under the repository's `tests/fixtures/api/`.
fn api_fixture(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/api/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

fn api_json(name: &str) -> Value {
    serde_json::from_str(&api_fixture(name)).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

async fn post_raw(sim: &SimHandle, path: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_json(sim: &SimHandle, path: &str) -> (u16, Value) {
    let (status, text) = get(sim, path, Some("tok")).await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn evs_filter_path() -> String {
    format!("/v2/{P}/os-vendor-volumes/resource_instances/action")
}

/// One page of the EVS tag filter (`null` leaves `offset` or `limit` out).
async fn evs_page(sim: &SimHandle, tags: &Value, offset: Value, limit: Value) -> (u16, Value) {
    let body = json!({"action": "filter", "tags": tags, "offset": offset, "limit": limit});
    evs_post(sim, body).await
}

/// A `/sim/*` control call: its status.
async fn sim_call(method: reqwest::Method, url: String, body: Option<Value>) -> u16 {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap().status().as_u16()
}

/// `POST` to the EVS tag filter.
async fn evs_post(sim: &SimHandle, body: Value) -> (u16, Value) {
    post(sim, &evs_filter_path(), body).await
}

/// The volume numbers a filter answer lists.
fn numbers(answer: &Value) -> Vec<u32> {
    answer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| u32::from_str_radix(&r["resource_id"].as_str().unwrap()[..8], 16).unwrap())
        .collect()
}

async fn evs_filter(sim: &SimHandle, tags: Value) -> Vec<u32> {
    let (status, v) = evs_post(sim, json!({"action": "filter", "tags": tags})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total_count"], numbers(&v).len(), "{v}");
    numbers(&v)
}

#[tokio::test]
async fn evs_filter_ands_keys_ors_values_and_takes_any_value_for_an_empty_list() {
    let sim = tagged_sim().await;
    let t = |k: &str, vs: &[&str]| json!({"key": k, "values": vs});
    assert_eq!(
        evs_filter(&sim, json!([t("backup", &["nightly"])])).await,
        [1, 3]
    );
    assert_eq!(
        evs_filter(&sim, json!([t("backup", &["nightly", "weekly"])])).await,
        [1, 2, 3]
    );
    assert_eq!(
        evs_filter(&sim, json!([t("backup", &["nightly"]), t("tier", &[])])).await,
        [1]
    );
    assert_eq!(evs_filter(&sim, json!([t("tier", &[])])).await, [1, 2]);
    assert_eq!(
        evs_filter(&sim, json!([t("backup", &["NIGHTLY"])])).await,
        NONE
    );
    assert_eq!(evs_filter(&sim, json!([])).await, [1, 2, 3, 4]);
    // Huawei's path and the /v3 copy answer alike.
    for path in [
        format!("/v3/{P}/os-vendor-volumes/resource_instances/action"),
        format!("/v2/{P}/cloudvolumes/resource_instances/action"),
    ] {
        let (status, v) = post(
            &sim,
            &path,
            json!({"action": "filter", "tags": [t("tier", &["db"])]}),
        )
        .await;
        assert_eq!((status, numbers(&v)), (200, vec![1, 2]), "{path}");
    }
}

#[tokio::test]
async fn evs_filter_answers_in_the_published_shape_and_matches_names_by_substring() {
    let sim = tagged_sim().await;
    // A named volume, tagged through the API.
    let (status, created) = post(
        &sim,
        &format!("/v3/{P}/volumes"),
        json!({"volume": {"size": 1, "name": "db-resource1-x"}}),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["volume"]["id"].as_str().unwrap().to_string();
    let tags = json!({"action": "create", "tags": [{"key": "key1", "value": "value1"}]});
    let path = format!("/v2/{P}/os-vendor-volumes/{id}/tags/action");
    assert_eq!(post(&sim, &path, tags).await.0, 204);

    // The vendor's own request: strings for limit and offset, a name match.
    let mut request = api_json("evs_tags_filter_request_otc.json");
    request["offset"] = json!("0");
    let (status, v) = evs_post(&sim, request.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total_count"], 1);
    let ours = &v["resources"][0];
    assert_eq!(ours["resource_id"], id.as_str());
    assert_eq!(ours["resource_name"], "db-resource1-x");
    assert_eq!(ours["tags"], json!([{"key": "key1", "value": "value1"}]));
    // The published response has a trailing comma; read it leniently.
    let published: Value = serde_json::from_str(
        &api_fixture("evs_tags_filter_response_otc_MALFORMED.txt")
            .replace("\"shareable\": false,", "\"shareable\": false"),
    )
    .unwrap();
    let sample = &published["resources"][0];
    assert_eq!(keys(ours), keys(sample));
    let missing: Vec<String> = keys(&sample["resource_detail"])
        .difference(&keys(&ours["resource_detail"]))
        .cloned()
        .collect();
    assert_eq!(missing, Vec::<String>::new());
    assert_eq!(ours["resource_detail"]["bootable"], "false");

    // A name that is no substring, or another service type, matches nothing.
    request["matches"][0]["value"] = json!("resource2");
    assert_eq!(evs_post(&sim, request.clone()).await.1["total_count"], 0);
    request["matches"][0]["value"] = json!("resource1");
    request["matches"][1]["value"] = json!("evs");
    assert_eq!(evs_post(&sim, request.clone()).await.1["total_count"], 1);
    request["matches"][1]["value"] = json!("ECS");
    assert_eq!(evs_post(&sim, request).await.1["total_count"], 0);
}

#[tokio::test]
async fn evs_filter_pages_to_total_count_with_string_or_integer_limit_and_offset() {
    let volumes = (0..2500)
        .map(|n| vol(n, &[("backup", "nightly")], &[]))
        .chain((2500..2510).map(|n| vol(n, &[("backup", "weekly")], &[])))
        .collect();
    let sim = sim_with(volumes, Vec::new()).await;
    let tags = json!([{"key": "backup", "values": ["nightly"]}]);
    let mut seen = Vec::new();
    for (offset, limit) in [
        (json!("0"), json!("1000")),
        (json!(1000), json!(1000)),
        (json!("2000"), json!(1000)),
    ] {
        let (status, v) = evs_page(&sim, &tags, offset, limit).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["total_count"], 2500);
        seen.extend(numbers(&v));
    }
    assert_eq!(
        seen,
        (0..2500).collect::<Vec<u32>>(),
        "stable order, no gaps"
    );
    // No limit: pages of 1000; past the end: empty, the total still told.
    let (_, v) = evs_page(&sim, &tags, Value::Null, Value::Null).await;
    assert_eq!(numbers(&v).len(), 1000);
    let (_, v) = evs_page(&sim, &tags, json!("2500"), Value::Null).await;
    assert_eq!(
        (v["total_count"].clone(), numbers(&v).len()),
        (json!(2500), 0)
    );
    for (limit, offset) in [
        (json!(0), json!(0)),
        (json!("1001"), json!(0)),
        (json!(10), json!("-1")),
        (json!("ten"), json!(0)),
    ] {
        let asked = format!("limit {limit} offset {offset}");
        let (status, v) = evs_page(&sim, &tags, offset, limit).await;
        assert_eq!(status, 400, "{asked}: {v}");
        assert_eq!(v["error"]["code"], "EVS.1070");
    }
}

#[tokio::test]
async fn evs_filter_uses_the_last_tags_list_needs_tags_and_counts() {
    let sim = tagged_sim().await;
    let body = r#"{"action": "filter",
        "tags": [{"key": "backup", "values": ["nightly"]}],
        "tags": [{"key": "tier", "values": ["db"]}]}"#;
    let (status, v) = post_raw(&sim, &evs_filter_path(), body).await;
    assert_eq!((status, numbers(&v)), (200, vec![1, 2]), "{v}");

    let (status, v) = evs_post(&sim, json!({"action": "filter"})).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "EVS.1070", "{v}");
    assert!(v["error"]["message"].is_string());
    let (status, _) = evs_post(&sim, json!({"action": "list", "tags": []})).await;
    assert_eq!(status, 400);

    let (status, v) = evs_post(
        &sim,
        json!({"action": "count", "tags": [{"key": "backup", "values": []}]}),
    )
    .await;
    assert_eq!((status, v), (200, json!({"total_count": 3})));
    let (_, v) = evs_post(&sim, json!({"action": "count"})).await;
    assert_eq!(v, json!({"total_count": 4}));
}

#[tokio::test]
async fn one_disks_tags_are_created_overwritten_deleted_and_checked() {
    let sim = tagged_sim().await;
    let id = vol(4, &[], &[]).id;
    for base in ["os-vendor-volumes", "cloudvolumes"] {
        let tags_path = format!("/v2/{P}/{base}/{id}/tags");
        let action = format!("{tags_path}/action");
        let shown = || async { get_json(&sim, &tags_path).await };
        assert_eq!(shown().await, (200, json!({"tags": []})));
        let create = api_json("evs_volume_tags_create_request_otc.json");
        assert_eq!(post(&sim, &action, create).await.0, 204);
        let (_, v) = shown().await;
        let sample = api_json("evs_volume_tags_show_otc.json");
        assert_eq!(keys(&v), keys(&sample));
        assert_eq!(
            v["tags"],
            json!([{"key": "key1", "value": "value1"}, {"key": "key2", "value": "value3"}])
        );
        let overwrite = json!({"action": "create", "tags": [{"key": "key1", "value": "v-2_x"}]});
        assert_eq!(post(&sim, &action, overwrite).await.0, 204);
        assert_eq!(shown().await.1["tags"][0]["value"], "v-2_x");
        let delete = api_json("evs_volume_tags_delete_request_otc.json");
        assert_eq!(post(&sim, &action, delete.clone()).await.0, 204);
        assert_eq!(shown().await.1, json!({"tags": []}));
        assert_eq!(post(&sim, &action, delete).await.0, 204, "idempotent");
    }
    let action = format!("/v2/{P}/os-vendor-volumes/{id}/tags/action");
    let create = |tags: Value| json!({"action": "create", "tags": tags});
    for bad in [
        json!([{"key": "db:prod", "value": "x"}]),
        json!([{"key": "k", "value": "db:prod"}]),
        json!([{"key": "k".repeat(37), "value": "x"}]),
        json!([{"key": "k", "value": "v".repeat(44)}]),
        json!([{"key": "", "value": "x"}]),
        json!([{"key": "k"}]),
    ] {
        let (status, v) = post(&sim, &action, create(bad.clone())).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (400, &json!("EVS.1062")),
            "{bad}"
        );
    }
    let longest = json!([{"key": "k".repeat(36), "value": "v".repeat(43)}]);
    assert_eq!(post(&sim, &action, create(longest)).await.0, 204);
    let nine: Vec<Value> = (0..9)
        .map(|i| json!({"key": format!("k{i}"), "value": "x"}))
        .collect();
    assert_eq!(post(&sim, &action, create(json!(nine))).await.0, 204);
    let (status, v) = post(
        &sim,
        &action,
        create(json!([{"key": "eleventh", "value": "x"}])),
    )
    .await;
    assert_eq!((status, &v["error"]["code"]), (400, &json!("EVS.1061")));
    let (_, v) = get_json(&sim, &format!("/v2/{P}/os-vendor-volumes/{id}/tags")).await;
    assert_eq!(
        v["tags"].as_array().unwrap().len(),
        10,
        "refused: nothing changed"
    );

    let unknown = "00000000-dead-4000-8000-000000000000";
    let (status, v) = get_json(&sim, &format!("/v2/{P}/os-vendor-volumes/{unknown}/tags")).await;
    assert_eq!(status, 404);
    assert_eq!(v["itemNotFound"]["code"], 404);
    let (status, _) = post(
        &sim,
        &format!("/v2/{P}/os-vendor-volumes/{unknown}/tags/action"),
        create(json!([{"key": "k", "value": "v"}])),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn cloudvolumes_detail_shows_tags_count_and_cinder_next_links() {
    let sim = tagged_sim().await;
    let path = format!("/v2/{P}/cloudvolumes/detail");
    let (status, all) = get_json(&sim, &path).await;
    assert_eq!(status, 200);
    assert_eq!(all["count"], 4);
    assert!(all.get("volumes_links").is_none(), "a page not full: {all}");
    let first = &all["volumes"][0];
    assert_eq!(first["tags"], json!({"backup": "nightly", "tier": "db"}));
    assert_eq!(all["volumes"][3]["tags"], json!({}));
    let sample = api_json("evs_cloudvolumes_list_detail_otc.json");
    let missing: Vec<String> = keys(&sample["volumes"][0])
        .difference(&keys(first))
        .cloned()
        .collect();
    assert_eq!(missing, Vec::<String>::new());
    assert_eq!(
        keys(&all).len() + 1,
        keys(&sample).len(),
        "all but the links"
    );

    let mut ids = Vec::new();
    let mut query = "?limit=3".to_string();
    loop {
        let (_, page) = get_json(&sim, &format!("{path}{query}")).await;
        assert_eq!(page["count"], 4, "the total, whatever the page");
        ids.extend(
            page["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].clone()),
        );
        let Some(next) = page["volumes_links"][0]["href"].as_str() else {
            break;
        };
        let cinder = format!("{}/v2/{P}/volumes/detail?", sim.base_url());
        assert!(next.starts_with(&cinder), "{next}");
        let last = ids.last().unwrap().as_str().unwrap();
        assert!(next.ends_with(&format!("limit=3&marker={last}")), "{next}");
        query = next.replacen(&format!("{}/v2/{P}/volumes/detail", sim.base_url()), "", 1);
    }
    let all_ids: Vec<Value> = all["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(ids, all_ids);
    // A full last page still links on; the page after it is empty.
    let (_, page) = get_json(&sim, &format!("{path}?limit=2&offset=2")).await;
    assert_eq!(page["volumes"].as_array().unwrap().len(), 2);
    assert!(page["volumes_links"][0]["href"].is_string());
}

async fn cinder_ids(sim: &SimHandle, query: &str) -> (u16, Value, Vec<u32>) {
    let (status, v) = get_json(sim, &format!("/v3/{P}/volumes/detail{query}")).await;
    let ids = v["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| u32::from_str_radix(&v["id"].as_str().unwrap()[..8], 16).unwrap())
                .collect()
        })
        .unwrap_or_default();
    (status, v, ids)
}

#[tokio::test]
async fn cinder_metadata_filter_reads_json_and_python_dicts_and_nothing_else() {
    let sim = sim_with(
        vec![
            vol(1, &[], &[("backup", "nightly"), ("tier", "db")]),
            vol(2, &[], &[("backup", "nightly")]),
            vol(3, &[], &[("backup", "weekly")]),
        ],
        Vec::new(),
    )
    .await;
    let (_, v, _) = cinder_ids(&sim, "").await;
    assert_eq!(
        v["volumes"][0]["metadata"],
        json!({"backup": "nightly", "tier": "db"})
    );
    let q = |m: &str| format!("?metadata={}", urlencode(m));
    assert_eq!(
        cinder_ids(&sim, &q(r#"{"backup":"nightly"}"#)).await.2,
        [1, 2]
    );
    assert_eq!(
        cinder_ids(&sim, &q("{'backup': 'nightly'}")).await.2,
        [1, 2]
    );
    assert_eq!(
        cinder_ids(&sim, &q(r#"{"backup":"nightly","tier":"db"}"#))
            .await
            .2,
        [1]
    );
    assert_eq!(cinder_ids(&sim, &q(r#"{"backup":"nightl"}"#)).await.2, NONE);
    for not_a_dict in [
        "true",
        "null",
        r#"{"backup": null}"#,
        "nightly",
        "{'backup'",
    ] {
        let (status, v, ids) = cinder_ids(&sim, &q(not_a_dict)).await;
        assert_eq!((status, ids), (200, vec![]), "{not_a_dict}: {v}");
    }
    sim.set_volume_metadata(P, &vol(3, &[], &[]).id, "backup", Some("nightly"));
    assert_eq!(
        cinder_ids(&sim, &q(r#"{"backup":"nightly"}"#)).await.2,
        [1, 2, 3]
    );
    // Cinder's paging: a next link whenever the page is full.
    let (_, v, ids) = cinder_ids(&sim, &format!("{}&limit=3", q("{'backup':'nightly'}"))).await;
    assert_eq!(ids, [1, 2, 3]);
    let next = v["volumes_links"][0]["href"].as_str().unwrap();
    let marker = next.rsplit("marker=").next().unwrap();
    let (_, v, ids) = cinder_ids(&sim, &format!("?limit=3&marker={marker}")).await;
    assert_eq!(ids, NONE, "{v}");
    assert!(v.get("volumes_links").is_none());
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn ecs_filter_selects_by_tags_and_not_tags_within_the_project() {
    let other = "fedcba9876543210fedcba9876543210";
    let sim = sim_with(
        Vec::new(),
        vec![
            server(P, 1, &[("backup", "nightly")]),
            server(P, 2, &[("backup", "nightly"), ("skip", "yes")]),
            server(P, 3, &[("backup", "weekly")]),
            server(other, 4, &[("backup", "nightly")]),
        ],
    )
    .await;
    let path = format!("/v1/{P}/servers/resource_instances/action");
    let names = |v: &Value| -> Vec<String> {
        v["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["resource_name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut request = api_json("ecs_tags_filter_request_otc.json");
    request["offset"] = json!("0");
    request["matches"][0]["value"] = json!("web");
    request["tags"] = json!([{"key": "backup", "values": ["nightly"]}]);
    let (status, v) = post(&sim, &path, request.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(names(&v), ["web-1", "web-2"]);
    assert_eq!(v["total_count"], 2);
    let sample = api_json("ecs_tags_filter_response_otc.json");
    assert_eq!(keys(&v), keys(&sample));
    assert_eq!(keys(&v["resources"][0]), keys(&sample["resources"][0]));
    assert_eq!(v["resources"][0]["resource_detail"], Value::Null);
    assert_eq!(
        v["resources"][0]["tags"],
        json!([{"key": "backup", "value": "nightly"}])
    );

    request["not_tags"] = json!([{"key": "skip", "values": []}]);
    assert_eq!(
        names(&post(&sim, &path, request.clone()).await.1),
        ["web-1"]
    );
    request["limit"] = json!("1");
    request["not_tags"] = Value::Null;
    request["offset"] = json!("1");
    let (_, v) = post(&sim, &path, request.clone()).await;
    assert_eq!(
        (names(&v), v["total_count"].clone()),
        (vec!["web-2".to_string()], json!(2))
    );
    request["limit"] = json!("1001");
    let (status, v) = post(&sim, &path, request).await;
    assert_eq!((status, &v["error"]["code"]), (400, &json!("Ecs.0005")));
    let (_, v) = post(&sim, &path, json!({"action": "count"})).await;
    assert_eq!(v, json!({"total_count": 3}));

    // One server's tags: the sample's shape, create and delete idempotent.
    let id = server(P, 3, &[]).id;
    let tags_path = format!("/v1/{P}/cloudservers/{id}/tags");
    let (status, v) = get_json(&sim, &tags_path).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&v), keys(&api_json("ecs_server_tags_show_otc.json")));
    let create = json!({"action": "create", "tags": [{"key": "backup", "value": "nightly"}]});
    for _ in 0..2 {
        assert_eq!(
            post(&sim, &format!("{tags_path}/action"), create.clone())
                .await
                .0,
            204
        );
    }
    assert_eq!(
        get_json(&sim, &tags_path).await.1["tags"],
        json!([{"key": "backup", "value": "nightly"}])
    );
    let delete = json!({"action": "delete", "tags": [{"key": "gone"}]});
    assert_eq!(
        post(&sim, &format!("{tags_path}/action"), delete).await.0,
        204
    );
    let (_, v) = post(
        &sim,
        &path,
        json!({"action": "count", "tags": [{"key": "backup", "values": ["nightly"]}]}),
    )
    .await;
    assert_eq!(v["total_count"], 3);
    let (_, v) = get_json(&sim, &format!("/v1/{P}/cloudservers/tags")).await;
    assert_eq!(
        v["tags"][0],
        json!({"key": "backup", "values": ["nightly"]})
    );
    // Another project's server is unknown here.
    let foreign = server(other, 4, &[]).id;
    let (status, v) = get_json(&sim, &format!("/v1/{P}/cloudservers/{foreign}/tags")).await;
    assert_eq!((status, &v["error"]["code"]), (404, &json!("Ecs.0114")));
}

#[tokio::test]
async fn nova_lists_servers_25_a_page_with_links_while_pages_are_full() {
    let mut servers: Vec<SimServer> = (1..=30).map(|n| server(P, n, &[])).collect();
    servers.push(server("fedcba9876543210fedcba9876543210", 99, &[]));
    let sim = sim_with(Vec::new(), servers).await;
    let path = format!("/v2.1/{P}/servers/detail");
    let (status, first) = get_json(&sim, &path).await;
    assert_eq!(status, 200);
    let page = first["servers"].as_array().unwrap();
    assert_eq!(page.len(), 25);
    for key in [
        "id",
        "name",
        "status",
        "metadata",
        "tenant_id",
        "created",
        "links",
        "flavor",
    ] {
        assert!(page[0].get(key).is_some(), "{key}");
    }
    assert_eq!(page[0]["status"], "ACTIVE");
    assert_eq!(page[0]["tenant_id"], P);
    let next = first["servers_links"][0]["href"].as_str().unwrap();
    assert!(
        next.contains(&format!("/v2.1/{P}/servers/detail?limit=25&marker=")),
        "{next}"
    );
    let marker = next.rsplit("marker=").next().unwrap();
    let (_, rest) = get_json(&sim, &format!("{path}?marker={marker}")).await;
    assert_eq!(rest["servers"].as_array().unwrap().len(), 5);
    assert!(rest.get("servers_links").is_none());
    let (_, full) = get_json(&sim, &format!("{path}?limit=30")).await;
    assert!(
        full["servers_links"][0]["href"].is_string(),
        "a full page links on"
    );
    let (status, _) = get_json(&sim, &format!("{path}?marker=nope")).await;
    assert_eq!(status, 400);
    let (_, summary) = get_json(&sim, &format!("/v2.1/{P}/servers?limit=1000")).await;
    assert_eq!(summary["servers"].as_array().unwrap().len(), 30);
    assert_eq!(keys(&summary["servers"][0]).len(), 3, "id, name, links");
}

#[tokio::test]
async fn removed_volumes_vanish_but_their_backups_stay() {
    let sim = tagged_sim().await;
    let id = vol(1, &[], &[]).id;
    let (status, s) = post(
        &sim,
        &format!("/v2/{P}/snapshots"),
        json!({"snapshot": {"volume_id": id, "name": "s"}}),
    )
    .await;
    assert_eq!(status, 202, "{s}");
    let snapshot = s["snapshot"]["id"].as_str().unwrap().to_string();
    let (status, b) = post(
        &sim,
        &format!("/v3/{P}/backups"),
        json!({"backup": {"volume_id": id, "snapshot_id": snapshot, "name": "b"}}),
    )
    .await;
    assert_eq!(status, 202, "{b}");
    assert!(sim.remove_volume(P, &id));
    assert!(!sim.remove_volume(P, &id));

    assert_eq!(
        get_json(&sim, &format!("/v3/{P}/volumes/{id}")).await.0,
        404
    );
    assert!(!cinder_ids(&sim, "").await.2.contains(&1));
    let (_, v) = get_json(&sim, &format!("/v2/{P}/cloudvolumes/detail")).await;
    assert_eq!(v["count"], 3);
    assert_eq!(
        evs_filter(&sim, json!([{"key": "tier", "values": []}])).await,
        [2]
    );
    assert_eq!(
        get_json(&sim, &format!("/v2/{P}/os-vendor-volumes/{id}/tags"))
            .await
            .0,
        404
    );
    assert_eq!(sim.backups(P).len(), 1);
    assert_eq!(sim.snapshots(P).len(), 1);
    let (status, v) = post(
        &sim,
        &format!("/v2/{P}/snapshots"),
        json!({"snapshot": {"volume_id": id, "name": "again"}}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        v,
        json!({"itemNotFound": {"code": 404, "message": format!("Volume {id} could not be found.")}})
    );

    // Added back (as a new configured volume): available at once, labelled.
    sim.add_volume(P, vol(1, &[("tier", "web")], &[("backup", "nightly")]));
    let (status, v) = get_json(&sim, &format!("/v3/{P}/volumes/{id}")).await;
    assert_eq!((status, &v["volume"]["status"]), (200, &json!("available")));
    assert_eq!(v["volume"]["metadata"], json!({"backup": "nightly"}));
    assert!(sim.set_volume_tag(P, &id, "tier", Some("db")));
    assert_eq!(
        evs_filter(&sim, json!([{"key": "tier", "values": ["db"]}])).await,
        [1, 2]
    );
    assert!(sim.set_volume_tag(P, &id, "tier", None));
    assert_eq!(
        evs_filter(&sim, json!([{"key": "tier", "values": ["db"]}])).await,
        [2]
    );
    assert!(!sim.set_volume_tag(P, "nope", "tier", None));

    // The /sim routes do the same.
    let url = format!("{}/sim/projects/{P}/volumes/{id}", sim.base_url());
    assert_eq!(
        sim_call(
            reqwest::Method::PUT,
            format!("{url}/tags/tier"),
            Some(json!("db"))
        )
        .await,
        204
    );
    assert_eq!(
        sim_call(
            reqwest::Method::PUT,
            format!("{url}/metadata/backup"),
            Some(Value::Null)
        )
        .await,
        204
    );
    assert_eq!(
        evs_filter(&sim, json!([{"key": "tier", "values": ["db"]}])).await,
        [1, 2]
    );
    assert_eq!(
        cinder_ids(
            &sim,
            &format!("?metadata={}", urlencode("{'backup':'nightly'}"))
        )
        .await
        .2,
        NONE
    );
    assert_eq!(
        sim_call(reqwest::Method::DELETE, url.clone(), None).await,
        204
    );
    assert_eq!(
        sim_call(reqwest::Method::DELETE, url.clone(), None).await,
        404
    );
    assert_eq!(
        get_json(&sim, &format!("/v3/{P}/volumes/{id}")).await.0,
        404
    );
}

#[tokio::test]
async fn removed_servers_vanish_but_their_checkpoints_stay() {
    let sim = sim_with(Vec::new(), vec![server(P, 10, &[("backup", "nightly")])]).await;
    let protect = format!(
        "/v1/{P}/providers/{}/resources/{SRV}/action",
        crate::csbs::PROVIDER
    );
    let (status, v) = post(&sim, &protect, json!({"protect": {"backup_name": "b1"}})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(sim.checkpoints(P).len(), 1);
    assert!(sim.set_server_tag(SRV, "tier", Some("web")));
    let (_, v) = get_json(&sim, &format!("/v1/{P}/cloudservers/{SRV}/tags")).await;
    assert_eq!(v["tags"][1], json!({"key": "tier", "value": "web"}));

    assert!(sim.remove_server(SRV));
    assert_eq!(
        get_json(&sim, &format!("/v2.1/{P}/servers/{SRV}")).await.0,
        404
    );
    let (_, v) = get_json(&sim, &format!("/v2.1/{P}/servers/{SRV}")).await;
    assert_eq!(v["itemNotFound"]["code"], 404);
    assert_eq!(
        get_json(&sim, &format!("/v2.1/{P}/servers/detail")).await.1,
        json!({"servers": []})
    );
    let (_, v) = post(
        &sim,
        &format!("/v1/{P}/servers/resource_instances/action"),
        json!({"action": "count"}),
    )
    .await;
    assert_eq!(v["total_count"], 0);
    let (status, v) = post(&sim, &protect, json!({"protect": {"backup_name": "b2"}})).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(sim.checkpoints(P).len(), 1, "its checkpoint stays");

    sim.add_server(server(P, 10, &[]));
    let (status, v) = get_json(&sim, &format!("/v2.1/{P}/servers/{SRV}")).await;
    assert_eq!((status, &v["server"]["name"]), (200, &json!("web-10")));
    let url = format!("{}/sim/servers/{SRV}", sim.base_url());
    assert_eq!(
        sim_call(
            reqwest::Method::PUT,
            format!("{url}/tags/backup"),
            Some(json!("weekly"))
        )
        .await,
        204
    );
    let (_, v) = get_json(&sim, &format!("/v1/{P}/cloudservers/{SRV}/tags")).await;
    assert_eq!(v["tags"], json!([{"key": "backup", "value": "weekly"}]));
    assert_eq!(
        sim_call(reqwest::Method::DELETE, url.clone(), None).await,
        204
    );
    assert_eq!(
        sim_call(reqwest::Method::DELETE, url.clone(), None).await,
        404
    );
}

#[tokio::test]
async fn faults_scoped_to_paths_spare_the_others() {
    let sim = tagged_sim().await;
    sim.set_faults(Faults {
        server_error_rate: 1.0,
        paths: vec!["resource_instances".into()],
        ..Faults::default()
    });
    for _ in 0..5 {
        let (status, _) = evs_post(&sim, json!({"action": "count"})).await;
        assert!(status == 500 || status == 503, "{status}");
        assert_eq!(
            get_json(&sim, &format!("/v3/{P}/volumes/detail")).await.0,
            200
        );
        assert_eq!(
            get_json(&sim, &format!("/v2/{P}/cloudvolumes/detail"))
                .await
                .0,
            200
        );
    }
    sim.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    assert!(get_json(&sim, &format!("/v3/{P}/volumes/detail")).await.0 >= 500);
}
