//! Over HTTP: tokens and Keystone, the documented shapes, list filters and
//! paging, injected faults.

use serde_json::json;

use super::*;

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

#[tokio::test]
async fn the_request_log_names_each_request_its_caller_and_arrival() {
    let sim = started(Faults::default()).await;
    let before = chrono::Utc::now();
    get(&sim, &format!("/v3/{P}/snapshots?limit=5"), Some("tok"))
        .await
        .unwrap();
    backup_via_http(&sim, "logged").await;
    // Refused, but received: logged with the token it claimed.
    get(&sim, &format!("/v3/{P}/backups"), Some("stolen"))
        .await
        .unwrap();
    // A signature names its access key (refused: the key is unknown).
    let signed = reqwest::Client::new()
        .delete(format!("{}/v3/{P}/backups/x", sim.base_url()))
        .header(
            "Authorization",
            apig_sign::authorization("AKLOG", "x-sdk-date", "00"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status().as_u16(), 401);
    // Faulted before handling, still received.
    sim.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    get(&sim, "/", None).await.unwrap();
    sim.set_faults(Faults::default());
    // The controls are not the cloud's API.
    get(&sim, "/sim/ledger", None).await.unwrap();
    let after = chrono::Utc::now();

    let log = sim.requests();
    let seen: Vec<(&str, &str, Option<&str>, bool)> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.caller.as_deref(),
                r.mutating(),
            )
        })
        .collect();
    let snapshots = format!("/v3/{P}/snapshots");
    let backups = format!("/v3/{P}/backups");
    let one = format!("/v3/{P}/backups/x");
    assert_eq!(
        seen,
        [
            ("GET", snapshots.as_str(), Some("tok"), false),
            (
                "POST",
                format!("/v2/{P}/snapshots").as_str(),
                Some("tok"),
                true
            ),
            ("POST", backups.as_str(), Some("tok"), true),
            ("GET", backups.as_str(), Some("stolen"), false),
            ("DELETE", one.as_str(), Some("AKLOG"), true),
            ("GET", "/", None, false),
        ]
    );
    assert_eq!(sim.request_count(), log.len() as u64);
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(log.iter().all(|r| before <= r.at && r.at <= after));
    let (status, text) = get(&sim, "/sim/requests", None).await.unwrap();
    assert_eq!(status, 200);
    let over_http: Vec<RequestRecord> = serde_json::from_str(&text).unwrap();
    assert_eq!(over_http, log);
}
