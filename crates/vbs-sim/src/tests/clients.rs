//! What real clients (openstacksdk, the openstack CLI) need: version
//! discovery, microversions, volume look-ups.

use serde_json::json;

use super::*;

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
    use crate::versions::{asked, Asked};
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
