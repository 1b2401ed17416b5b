//! What policy selectors choose from: volumes by Cinder metadata or EVS
//! tag, servers by ECS tag or from Nova, and whether a server is still
//! there; every page, each match once, and clear errors otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::api_client::Calls;
use crate::helper::sim::{Faults, Scripted};
use crate::helper::{fast, load, raw_server, server, server_id, volume, volume_id, World, PROJECT};
use vbs_agent::api::types::TagMatch;
use vbs_agent::api::{CloudClient, ErrorClass};
use vbs_agent::config::SelectBy;

/// A client of the simulator's cloud, with `cloud_extra` lines on the cloud
/// and `compute` (when given) as its compute endpoint.
fn client(world: &World, cloud_extra: &str, compute: Option<&str>) -> (CloudClient, Arc<Calls>) {
    let path = world.write_config(
        "",
        cloud_extra,
        &crate::helper::policy_yaml("p", "0 0 3 * * *", &[volume_id(1)], ""),
    );
    // The harness's cloud has the simulator as compute endpoint: this
    // one has `compute`, or none.
    let harness = format!("      compute: {}\n", world.sim.base_url());
    let given = compute.map_or(String::new(), |c| format!("      compute: {c}\n"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&harness));
    std::fs::write(&path, text.replace(&harness, &given)).unwrap();
    let config = load(&path);
    let calls = Arc::new(Calls::default());
    let client = CloudClient::new(&config.clouds["sim"], fast())
        .unwrap()
        .with_observer(calls.clone());
    (client, calls)
}

/// A raw HTTP 200 answer with a JSON body, for [`raw_server`].
fn json_answer(body: &str) -> &'static str {
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    Box::leak(answer.into_boxed_str())
}

fn scripted(path: &str, body: &str, times: u32) -> Scripted {
    Scripted {
        method: "POST".into(),
        path_contains: path.into(),
        status: 200,
        content_type: "application/json".into(),
        body: body.into(),
        times,
        ..Default::default()
    }
}

#[tokio::test]
async fn select_by_is_the_clouds_setting() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    assert_eq!(client(&world, "", None).0.select_by(), SelectBy::Metadata);
    let tags = client(&world, "    select_by: tags\n", None).0;
    assert_eq!(tags.select_by(), SelectBy::Tags);
}

#[tokio::test]
async fn servers_come_from_the_configured_compute_endpoint() {
    let nova = raw_server(json_answer(
        r#"{"servers": [{"id": "4b8e5a3c-0000-4000-8000-000000000001", "name": "db-1",
            "status": "ACTIVE", "metadata": {"backup": "nightly"}}]}"#,
    ));
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (client, calls) = client(&world, "", Some(&format!("http://{nova}")));
    let servers = client.servers().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].name.as_deref(), Some("db-1"));
    assert_eq!(servers[0].labels["backup"], "nightly");
    assert_eq!(
        calls.take_with_paths(),
        [format!(
            "GET /v2.1/{}/servers/detail?limit=1000 200 ok",
            PROJECT
        )]
    );
}

#[tokio::test]
async fn without_a_compute_endpoint_or_catalog_nothing_is_sent() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (client, calls) = client(&world, "", None);
    let err = client.servers().await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(
        err.message.contains("set clouds.sim.endpoints.compute"),
        "{err}"
    );
    let err = client
        .servers_with_tags(&[TagMatch::any("backup")])
        .await
        .unwrap_err();
    assert!(err.message.contains("endpoints.compute"), "{err}");
    assert_eq!(calls.take_with_paths(), Vec::<String>::new());
}

#[tokio::test]
async fn a_tag_filter_without_conditions_is_refused_before_sending() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (client, calls) = client(&world, "", None);
    let err = client.volumes_with_tags(&[]).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Permanent);
    assert!(err.message.contains("at least one tag condition"), "{err}");
    assert_eq!(calls.take_with_paths(), Vec::<String>::new());
}

#[tokio::test]
async fn the_published_evs_answer_is_retried_as_a_bad_answer_then_read() {
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (client, calls) = client(&world, "", None);
    let path = "/os-vendor-volumes/resource_instances/action";
    let published = include_str!("../fixtures/api/evs_tags_filter_response_otc_MALFORMED.txt");
    world.sim.script(scripted(path, published, 2));
    world.sim.script(scripted(
        path,
        &published.replace("\"shareable\": false,", "\"shareable\": false"),
        1,
    ));
    let found = client
        .volumes_with_tags(&[TagMatch::value("key1", "value1")])
        .await
        .expect("a read-only POST is retried like a GET");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "7fa6b592-ac75-460d-a28a-bb17429d1eb2");
    assert_eq!(
        calls.take(),
        ["POST 200 bad_answer", "POST 200 bad_answer", "POST 200 ok"]
    );
}

#[tokio::test]
async fn a_tag_filter_that_ignores_offset_is_an_error_not_a_short_list() {
    // Always the same resource, while claiming 1000 matches.
    let sample = include_str!("../fixtures/api/ecs_tags_filter_response_otc.json");
    let ecs = raw_server(json_answer(sample));
    let world = World::start_instant(vec![volume(1, None)]).await;
    let (client, calls) = client(&world, "", Some(&format!("http://{ecs}")));
    let err = client
        .servers_with_tags(&[TagMatch::value("key1", "value1")])
        .await
        .unwrap_err();
    assert_eq!(err.class, ErrorClass::BadAnswer);
    assert!(err.message.contains("ignore `offset`"), "{err}");
    assert_eq!(
        calls.take_with_paths().len(),
        2,
        "the second page repeats the first"
    );
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sorted_ids(found: &[vbs_agent::api::types::Found]) -> Vec<String> {
    let mut ids: Vec<String> = found.iter().map(|f| f.id.clone()).collect();
    ids.sort();
    ids
}

fn ids_of(numbers: impl Iterator<Item = u32>, id: fn(u32) -> String) -> Vec<String> {
    let mut ids: Vec<String> = numbers.map(id).collect();
    ids.sort();
    ids
}

/// 2,500 volumes: every third is `backup: nightly` in both its metadata
/// and its tags, the others `backup: weekly`, and every fifth is also
/// `team: db`.
async fn fleet() -> World {
    let volumes = (1..=2500)
        .map(|n| {
            let backup = if n % 3 == 0 { "nightly" } else { "weekly" };
            let mut labels = vec![("backup", backup)];
            if n % 5 == 0 {
                labels.push(("team", "db"));
            }
            crate::helper::sim::SimVolume {
                metadata: map(&labels),
                tags: map(&labels),
                ..volume(n, None)
            }
        })
        .collect();
    World::start_instant(volumes).await
}

#[tokio::test]
async fn the_metadata_filter_gives_every_match_once_across_pages() {
    let world = fleet().await;
    let (client, calls) = client(&world, "", None);

    let nightly = client
        .volumes_with_metadata(&map(&[("backup", "nightly")]))
        .await
        .unwrap();
    let want = ids_of((1..=2500).filter(|n| n % 3 == 0), volume_id);
    assert_eq!(want.len(), 833);
    assert_eq!(sorted_ids(&nightly), want, "each match exactly once");
    assert!(nightly.iter().all(|v| v.labels["backup"] == "nightly"));
    let sent = calls.take_with_paths();
    assert_eq!(sent.len(), 1, "833 matches fit one page of 1000: {sent:?}");
    assert!(
        sent[0].contains("metadata=%7B%22backup%22%3A%22nightly%22%7D"),
        "{sent:?}"
    );

    let both = client
        .volumes_with_metadata(&map(&[("backup", "nightly"), ("team", "db")]))
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(&both),
        ids_of((1..=2500).filter(|n| n % 15 == 0), volume_id)
    );

    // No pairs: every volume, over three pages.
    calls.take_with_paths();
    let all = client
        .volumes_with_metadata(&BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(sorted_ids(&all), ids_of(1..=2500, volume_id));
    assert_eq!(
        calls.take_with_paths().len(),
        3,
        "2500 volumes in pages of 1000"
    );

    // More than a page of matches.
    let weekly = client
        .volumes_with_metadata(&map(&[("backup", "weekly")]))
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(&weekly),
        ids_of((1..=2500).filter(|n| n % 3 != 0), volume_id)
    );
    assert_eq!(
        calls.take_with_paths().len(),
        2,
        "1667 matches in pages of 1000"
    );
}

#[tokio::test]
async fn the_evs_tag_filter_pages_up_to_its_total_count() {
    let world = fleet().await;
    let (client, calls) = client(
        &world,
        "    select_by: tags
",
        None,
    );

    let weekly = client
        .volumes_with_tags(&[TagMatch::value("backup", "weekly")])
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(&weekly),
        ids_of((1..=2500).filter(|n| n % 3 != 0), volume_id)
    );
    assert!(weekly.iter().all(|v| v.labels["backup"] == "weekly"));
    assert_eq!(
        calls.take_with_paths().len(),
        2,
        "1667 matches, offsets 0 and 1000"
    );

    // Any value of `team`, and one of two values of `backup`.
    let team = client
        .volumes_with_tags(&[
            TagMatch::any("team"),
            TagMatch::value("backup", "nightly"),
            TagMatch::value("backup", "weekly"),
        ])
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(&team),
        ids_of((1..=2500).filter(|n| n % 5 == 0), volume_id)
    );

    // Metadata is not tags: a tag filter ignores it.
    world
        .sim
        .set_volume_metadata(PROJECT, &volume_id(1), "only", "metadata".into());
    let none = client
        .volumes_with_tags(&[TagMatch::any("only")])
        .await
        .unwrap();
    assert_eq!(none, []);
}

#[tokio::test]
async fn a_flaky_tag_filter_is_retried_to_a_complete_list() {
    let world = fleet().await;
    let (client, calls) = client(&world, "", None);
    world.sim.set_faults(Faults {
        seed: 7,
        server_error_rate: 0.4,
        paths: vec!["resource_instances".into()],
        ..Faults::default()
    });
    let weekly = client
        .volumes_with_tags(&[TagMatch::value("backup", "weekly")])
        .await
        .expect("the filter only reads, so it is sent again");
    assert_eq!(weekly.len(), 1667);
    let sent = calls.take_with_paths();
    assert!(
        sent.iter().any(|c| c.ends_with(" retryable")),
        "the faults hit: {sent:?}"
    );
}

#[tokio::test]
async fn servers_by_ecs_tag_and_from_nova_every_page() {
    let servers = (1..=1203)
        .map(|n| crate::helper::sim::SimServer {
            tags: if n % 2 == 0 {
                map(&[("backup", "daily")])
            } else {
                BTreeMap::new()
            },
            ..server(n)
        })
        .collect();
    let world = World::start_servers(servers, Duration::ZERO, Duration::ZERO).await;
    let base = world.sim.base_url();
    let (client, calls) = client(&world, "", Some(&base));

    let all = client.servers().await.unwrap();
    assert_eq!(sorted_ids(&all), ids_of(1..=1203, server_id));
    assert_eq!(
        calls.take_with_paths().len(),
        2,
        "1203 servers in pages of 1000"
    );

    let daily = client
        .servers_with_tags(&[TagMatch::value("backup", "daily")])
        .await
        .unwrap();
    assert_eq!(
        sorted_ids(&daily),
        ids_of((1..=1203).filter(|n| n % 2 == 0), server_id)
    );
    assert!(daily.iter().all(|s| s.labels["backup"] == "daily"));
    assert_eq!(calls.take_with_paths().len(), 1, "601 matches in one page");

    world
        .sim
        .set_server_tag(&server_id(1), "backup", Some("daily"));
    world.sim.remove_server(&server_id(2));
    let daily = client
        .servers_with_tags(&[TagMatch::any("backup")])
        .await
        .unwrap();
    let ids = sorted_ids(&daily);
    assert!(ids.contains(&server_id(1)) && !ids.contains(&server_id(2)));
}

#[tokio::test]
async fn a_removed_server_no_longer_exists() {
    let world =
        World::start_servers(vec![server(1), server(2)], Duration::ZERO, Duration::ZERO).await;
    let base = world.sim.base_url();
    let (client, calls) = client(&world, "", Some(&base));
    assert!(client.server_exists(&server_id(1)).await.unwrap());
    assert!(world.sim.remove_server(&server_id(1)));
    assert!(!client.server_exists(&server_id(1)).await.unwrap());
    assert!(client.server_exists(&server_id(2)).await.unwrap());
    let sent = calls.take_with_paths();
    assert_eq!(sent.len(), 3, "a 404 is an answer, not retried: {sent:?}");
    assert!(sent[1].ends_with(" 404 permanent"), "{sent:?}");
}
