use std::time::Duration;

use serde_json::{json, Value};

use super::state::State;
use super::*;

const P: &str = "0123456789abcdef0123456789abcdef";
const VOL: &str = "00000000-0000-4000-8000-000000000001";
const ATTACHED: &str = "00000000-0000-4000-8000-000000000002";

fn config() -> SimConfig {
    SimConfig {
        projects: vec![SimProject::new(
            P,
            vec![
                SimVolume {
                    id: VOL.into(),
                    size_gb: 10,
                    attached: false,
                    fault: None,
                },
                SimVolume {
                    id: ATTACHED.into(),
                    size_gb: 20,
                    attached: true,
                    fault: None,
                },
            ],
        )],
        tokens: vec!["tok".into()],
        users: vec![SimUser {
            name: "bot".into(),
            domain: "Default".into(),
            password: "pw".into(),
        }],
        snapshot_duration: Duration::from_secs(2),
        backup_duration: Duration::from_secs(10),
        delete_duration: Duration::from_secs(1),
        ..SimConfig::default()
    }
}

fn state() -> State {
    State::new(config(), "http://sim".into())
}

fn snap(st: &mut State, volume: &str) -> String {
    st.create_snapshot(P, volume, "s".into(), None, true, json!({}))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn resources_settle_after_their_durations() {
    let mut st = state();
    let s = snap(&mut st, VOL);
    assert_eq!(st.snapshot_views(P)[0].status, "creating");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(st.snapshot_views(P)[0].status, "available");

    let b = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    assert_eq!(
        st.snapshot_views(P)[0].status,
        "backing-up",
        "Cinder marks the source snapshot"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    let view = &st.backup_views(P)[0];
    assert_eq!(
        (view.id.as_str(), view.status.as_str()),
        (b.as_str(), "available")
    );
    assert_eq!(st.snapshot_views(P)[0].status, "available");
}

#[tokio::test(start_paused = true)]
async fn cinder_refusals_are_reproduced() {
    let mut st = state();
    let err = st
        .create_snapshot(P, ATTACHED, "s".into(), None, false, json!({}))
        .unwrap_err();
    assert!(err.message.contains("current status is: in-use"), "{err:?}");
    let err = st
        .create_snapshot(
            P,
            "00000000-0000-4000-8000-000000000099",
            "s".into(),
            None,
            true,
            json!({}),
        )
        .unwrap_err();
    assert_eq!(err.status, 404);

    let s = snap(&mut st, VOL);
    let err = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap_err();
    assert!(
        err.message
            .contains("must be available, but the current status is \"creating\""),
        "{err:?}"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let err = st
        .create_backup(P, VOL, Some(&s), "b".into(), None, true)
        .unwrap_err();
    assert_eq!(
        err.message,
        "Invalid backup: No backups available to do an incremental backup."
    );

    st.create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    let busy = st
        .create_backup(P, VOL, Some(&s), "b2".into(), None, false)
        .unwrap_err();
    assert_eq!(busy.status, 400);
    assert!(
        busy.message.contains("current status is \"backing-up\""),
        "{busy:?}"
    );
    let err = st.delete_snapshot(P, &s).unwrap_err();
    assert!(
        err.message.contains("must be available or error"),
        "{err:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn incremental_chains_protect_their_parents() {
    let mut st = state();
    let s = snap(&mut st, VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    let full = st
        .create_backup(P, VOL, Some(&s), "full".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let inc = st
        .create_backup(P, VOL, Some(&s), "inc".into(), None, true)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(st
        .backup_views(P)
        .iter()
        .any(|b| b.id == inc && b.is_incremental));
    let err = st.delete_backup(P, &full).unwrap_err();
    assert_eq!(
        err.message,
        "Invalid backup: Incremental backups exist for this backup."
    );

    st.delete_backup(P, &inc).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    st.delete_backup(P, &full).unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(st.backup_views(P).is_empty());
    let ledger = st.ledger();
    assert_eq!(
        ledger
            .iter()
            .filter(|e| e.kind == "backup" && e.status == "deleted")
            .count(),
        2
    );
    assert!(ledger
        .iter()
        .all(|e| e.kind != "backup" || e.deleted_at.is_some()));
}

#[tokio::test(start_paused = true)]
async fn volume_faults_set_the_outcome() {
    let mut st = state();
    st.set_volume_fault(
        P,
        VOL,
        Some(VolumeFault::BackupError {
            fail_reason: "swift down".into(),
        }),
    );
    let s = snap(&mut st, VOL);
    tokio::time::advance(Duration::from_secs(2)).await;
    st.create_backup(P, VOL, Some(&s), "b".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    let b = &st.backup_views(P)[0];
    assert_eq!(
        (b.status.as_str(), b.fail_reason.as_deref()),
        ("error", Some("swift down"))
    );

    st.set_volume_fault(P, VOL, Some(VolumeFault::BackupNeverFinishes));
    tokio::time::advance(Duration::from_secs(1)).await;
    st.create_backup(P, VOL, Some(&s), "c".into(), None, false)
        .unwrap();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(st
        .backup_views(P)
        .iter()
        .any(|b| b.name == "c" && b.status == "creating"));
}

// ---- over HTTP ----

async fn started(faults: Faults) -> SimHandle {
    let mut c = config();
    c.snapshot_duration = Duration::ZERO;
    c.backup_duration = Duration::ZERO;
    let sim = start(c, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    sim.set_faults(faults);
    sim
}

async fn get(sim: &SimHandle, path: &str, token: Option<&str>) -> reqwest::Result<(u16, String)> {
    let mut req = reqwest::Client::new().get(format!("{}{path}", sim.base_url()));
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await?))
}

async fn post(sim: &SimHandle, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn backup_via_http(sim: &SimHandle, name: &str) -> String {
    let (st, s) = post(
        sim,
        &format!("/v2/{P}/snapshots"),
        json!({"snapshot": {"volume_id": VOL, "name": name}}),
    )
    .await;
    assert_eq!(st, 202, "{s}");
    let sid = s["snapshot"]["id"].as_str().unwrap().to_string();
    let (st, b) = post(
        sim,
        &format!("/v3/{P}/backups"),
        json!({"backup": {"volume_id": VOL, "snapshot_id": sid, "name": name}}),
    )
    .await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(
        b["backup"].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "links", "name"]
    );
    b["backup"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_cloud_route_needs_a_token_and_keystone_issues_one() {
    let sim = started(Faults::default()).await;
    assert_eq!(
        get(&sim, &format!("/v3/{P}/backups"), None)
            .await
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        get(&sim, &format!("/v3/{P}/backups"), Some("nope"))
            .await
            .unwrap()
            .0,
        401
    );
    let auth = |pw: &str| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "bot", "password": pw, "domain": {"name": "Default"}}}}, "scope": {"project": {"id": P}}}});
    let client = reqwest::Client::new();
    let bad = client
        .post(format!("{}/v3/auth/tokens", sim.base_url()))
        .json(&auth("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let ok = client
        .post(format!("{}/v3/auth/tokens", sim.base_url()))
        .json(&auth("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 201);
    let token = ok.headers()["X-Subject-Token"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = ok.json().await.unwrap();
    assert!(body["token"]["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        get(&sim, &format!("/v3/{P}/backups"), Some(&token))
            .await
            .unwrap()
            .0,
        200
    );
}

#[tokio::test]
async fn backup_detail_carries_every_documented_field() {
    let sim = started(Faults::default()).await;
    let id = backup_via_http(&sim, "detail").await;
    let (status, text) = get(&sim, &format!("/v3/{P}/backups/{id}"), Some("tok"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    let b = v["backup"].as_object().unwrap();
    for key in [
        "status",
        "description",
        "links",
        "availability_zone",
        "volume_id",
        "fail_reason",
        "id",
        "size",
        "object_count",
        "container",
        "name",
        "created_at",
        "os-backup-project-attr:project_id",
        "updated_at",
        "data_timestamp",
        "has_dependent_backups",
        "snapshot_id",
        "is_incremental",
    ] {
        assert!(b.contains_key(key), "missing {key}");
    }
    assert!(b["fail_reason"].is_null() && b["availability_zone"].is_null());
    assert!(
        !b["created_at"].as_str().unwrap().ends_with('Z'),
        "Cinder timestamps carry no zone"
    );
    let (status, _) = get(
        &sim,
        &format!("/v3/{P}/backups/00000000-0000-4000-8000-00000000dead"),
        Some("tok"),
    )
    .await
    .unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn lists_filter_exactly_and_page_by_marker_with_versionless_links() {
    let sim = started(Faults::default()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(backup_via_http(&sim, &format!("pg-{n}")).await);
    }
    let (_, text) = get(&sim, &format!("/v2/{P}/backups?limit=2"), Some("tok"))
        .await
        .unwrap();
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["backups"].as_array().unwrap().len(), 2);
    let href = page["backups_links"][0]["href"].as_str().unwrap();
    assert!(
        href.starts_with(&format!("{}/{P}/backups?", sim.base_url())),
        "{href}"
    );
    let marker = href.split("marker=").nth(1).unwrap();
    let (_, text) = get(
        &sim,
        &format!("/v2/{P}/backups?limit=2&marker={marker}"),
        Some("tok"),
    )
    .await
    .unwrap();
    let rest: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rest["backups"].as_array().unwrap().len(), 1);
    assert!(rest.get("backups_links").is_none());

    let (_, text) = get(
        &sim,
        &format!("/v2/{P}/backups?name=pg-1&volume_id={VOL}"),
        Some("tok"),
    )
    .await
    .unwrap();
    let one: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(one["backups"][0]["id"], ids[1].as_str());
    assert_eq!(one["backups"].as_array().unwrap().len(), 1);
    let (_, text) = get(&sim, &format!("/v2/{P}/backups?name=pg"), Some("tok"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["backups"],
        json!([])
    );
}

#[tokio::test]
async fn injected_faults_are_what_they_say() {
    let path = format!("/v3/{P}/backups");
    let sim = started(Faults {
        seed: 1,
        drop_rate: 1.0,
        ..Faults::default()
    })
    .await;
    assert!(
        get(&sim, &path, Some("tok")).await.is_err(),
        "a dropped connection is a transport error"
    );

    sim.set_faults(Faults {
        seed: 1,
        throttle_rate: 1.0,
        ..Faults::default()
    });
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");

    sim.set_faults(Faults {
        seed: 1,
        malformed_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..4 {
        let (status, text) = get(&sim, &path, Some("tok")).await.unwrap();
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    }

    sim.set_faults(Faults {
        seed: 1,
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let (status, _) = get(&sim, &path, Some("tok")).await.unwrap();
    assert!(status == 500 || status == 503);

    // The same seed gives the same sequence of outcomes.
    let mut runs = Vec::new();
    for _ in 0..2 {
        sim.set_faults(Faults {
            seed: 7,
            server_error_rate: 0.5,
            ..Faults::default()
        });
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.push(get(&sim, &path, Some("tok")).await.unwrap().0 == 200);
        }
        runs.push(seen);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].contains(&true) && runs[0].contains(&false));
    // Controls are never faulted.
    sim.set_faults(Faults {
        seed: 1,
        drop_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(get(&sim, "/sim/ledger", None).await.unwrap().0, 200);
}

// ---- what real clients (openstacksdk, the openstack CLI) need ----

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn version_discovery_answers_without_a_token_as_cinder_does() {
    let sim = started(Faults::default()).await;
    let client = no_redirects();
    let root = client.get(sim.base_url()).send().await.unwrap();
    assert_eq!(root.status().as_u16(), 300, "Multiple Choices at /");
    let body: Value = root.json().await.unwrap();
    let v3 = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "v3.0")
        .unwrap()
        .clone();
    assert_eq!(
        (&v3["status"], &v3["min_version"], &v3["version"]),
        (&json!("CURRENT"), &json!("3.0"), &json!("3.0"))
    );
    let self_link = v3["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "self")
        .unwrap();
    assert_eq!(self_link["href"], format!("{}/v3/", sim.base_url()));

    let bare = client
        .get(format!("{}/v3", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 302);
    assert_eq!(
        bare.headers()["location"],
        format!("{}/v3/", sim.base_url()).as_str()
    );
    let (status, text) = get(&sim, "/v3/", None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);
}

#[test]
fn microversion_headers_are_read_as_cinder_reads_them() {
    use super::versions::{asked, Asked};
    assert_eq!(asked(None), Asked::Supported);
    assert_eq!(asked(Some("volume 3.0")), Asked::Supported);
    assert_eq!(asked(Some("volume latest")), Asked::Supported);
    assert_eq!(asked(Some("compute 2.1, volume 3.0")), Asked::Supported);
    assert_eq!(asked(Some("compute 2.79")), Asked::Supported);
    assert_eq!(
        asked(Some("volume 3.66")),
        Asked::Unsupported("3.66".into())
    );
    assert_eq!(asked(Some("volume 3.x")), Asked::Malformed("3.x".into()));
}

#[tokio::test]
async fn v3_answers_carry_the_microversion_and_refuse_others() {
    let sim = started(Faults::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v3/{P}/backups", sim.base_url());
    let plain = client
        .get(&url)
        .header("X-Auth-Token", "tok")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.headers()["openstack-api-version"], "volume 3.0");
    assert_eq!(plain.headers()["vary"], "OpenStack-API-Version");

    let newer = client
        .get(&url)
        .header("X-Auth-Token", "tok")
        .header("OpenStack-API-Version", "volume 3.66")
        .send()
        .await
        .unwrap();
    assert_eq!(newer.status().as_u16(), 406);
    let body: Value = newer.json().await.unwrap();
    assert_eq!(
        body["computeFault"]["message"],
        "Version 3.66 is not supported by the API. Minimum is 3.0 and maximum is 3.0."
    );
    let malformed = client
        .get(&url)
        .header("X-Auth-Token", "tok")
        .header("OpenStack-API-Version", "volume 3.x")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let unauthenticated = client
        .get(&url)
        .header("OpenStack-API-Version", "volume 3.66")
        .send()
        .await
        .unwrap();
    assert_eq!(
        unauthenticated.status().as_u16(),
        401,
        "the token is checked first"
    );
    let keystone = client
        .get(format!("{}/v3/auth/catalog", sim.base_url()))
        .header("X-Auth-Token", "tok")
        .header("OpenStack-API-Version", "volume 3.66")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keystone.status().as_u16(),
        200,
        "Keystone has no volume microversions"
    );
    assert!(keystone.headers().get("openstack-api-version").is_none());
}

#[tokio::test]
async fn volumes_can_be_looked_up_as_clients_do_before_a_snapshot() {
    let mut c = config();
    c.backup_duration = Duration::from_secs(3600);
    let sim = start(c, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let show = |id: &str| {
        let path = format!("/v3/{P}/volumes/{id}");
        let sim = &sim;
        async move {
            let (status, text) = get(sim, &path, Some("tok")).await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let (status, v) = show(VOL).await;
    assert_eq!(status, 200, "{v}");
    let v = &v["volume"];
    assert_eq!(
        (&v["id"], &v["status"], &v["size"], &v["attachments"]),
        (&json!(VOL), &json!("available"), &json!(10), &json!([]))
    );
    assert_eq!(v["os-vol-tenant-attr:tenant_id"], P);
    assert!(v["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/v3/{P}/volumes/{VOL}")));

    let (_, a) = show(ATTACHED).await;
    assert_eq!(a["volume"]["status"], "in-use");
    assert_eq!(a["volume"]["attachments"][0]["volume_id"], ATTACHED);

    let (status, missing) = show("00000000-0000-4000-8000-00000000dead").await;
    assert_eq!(status, 404);
    assert_eq!(missing["itemNotFound"]["code"], 404);

    let (st, _) = post(
        &sim,
        &format!("/v3/{P}/backups"),
        json!({"backup": {"volume_id": VOL, "name": "b"}}),
    )
    .await;
    assert_eq!(st, 202);
    assert_eq!(show(VOL).await.1["volume"]["status"], "backing-up");

    let (_, list) = get(&sim, &format!("/v3/{P}/volumes/detail"), Some("tok"))
        .await
        .unwrap();
    let list: Value = serde_json::from_str(&list).unwrap();
    let ids: Vec<&str> = list["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&VOL) && ids.contains(&ATTACHED));
    let (_, by_name) = get(&sim, &format!("/v2/{P}/volumes?name=x"), Some("tok"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&by_name).unwrap(),
        json!({"volumes": []})
    );
}
