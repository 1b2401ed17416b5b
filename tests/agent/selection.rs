//! Policies that name their volumes by label: volumes tagged, untagged,
//! created and deleted between slots on the controllable clock; what each
//! run covered, recorded; left and gone targets recorded once; coverage
//! flagging exactly what no policy covers; and a fault storm on the
//! resolution calls that never makes a run with an empty set.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use vbs_agent::audit::VanishedAs;
use vbs_agent::config::Config;
use vbs_agent::coverage::{audit, Standing};
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobStatus, Store, Trigger};

use crate::helper::sim::{Faults, Scripted, SimVolume};
use crate::helper::{fast, load, names_made_twice, volume, volume_id, World, PROJECT};

/// Volume `n` with these metadata pairs.
fn labelled(n: u32, metadata: &[(&str, &str)]) -> SimVolume {
    SimVolume {
        metadata: pairs(metadata),
        ..volume(n, None)
    }
}

/// Volume `n` with these tags.
fn tagged(n: u32, tags: &[(&str, &str)]) -> SimVolume {
    SimVolume {
        tags: pairs(tags),
        ..volume(n, None)
    }
}

fn pairs(p: &[(&str, &str)]) -> BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A nightly backup policy selecting `backup: nightly`, with `extra` lines.
fn nightly(extra: &str) -> String {
    format!(
        "  - name: nightly\n    kind: backup\n    cloud: sim\n    schedule: \"0 30 1 * * *\"\n    force: true\n{extra}    select:\n      match: {{backup: nightly}}\n"
    )
}

/// A policy file, its history and an engine on a clock the test moves.
struct Slots {
    config: Config,
    store: Arc<Store>,
    engine: Engine,
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl Slots {
    fn new(world: &World, cloud_extra: &str, policies: &str) -> Self {
        let config = load(&world.write_config("", cloud_extra, policies));
        let store = Arc::new(Store::open(&config.history_path()).unwrap());
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = Arc::clone(&now);
        let engine = Engine::new(&config, Arc::clone(&store), fast())
            .unwrap()
            .with_clock(Arc::new(move || *clock.lock().unwrap()));
        Self {
            config,
            store,
            engine,
            now,
        }
    }

    /// Night `n` (from today's) of the file's first policy: the cloud's
    /// and the engine's clocks moved there, the run's jobs by target, the
    /// targets the run recorded and how they were found. The history
    /// stamps what it records with the wall clock, so night 0 is today's.
    async fn night(
        &self,
        world: &World,
        n: i64,
    ) -> (BTreeMap<String, JobStatus>, BTreeSet<String>, String) {
        let today = Utc::now().date_naive().and_hms_opt(1, 30, 0).unwrap();
        let slot = today.and_utc() + TimeDelta::days(n);
        world.sim.set_now(slot);
        *self.now.lock().unwrap() = slot + TimeDelta::minutes(5);
        let report = self
            .engine
            .run_policy(&self.config.policies[0], slot, Trigger::Schedule)
            .await
            .unwrap();
        let jobs = report
            .jobs
            .iter()
            .map(|j| (j.target.clone(), j.status))
            .collect();
        let scope = self.store.run_scope(report.run_id).unwrap();
        let resolution = self.resolution(report.run_id);
        (jobs, scope.into_iter().map(|t| t.id).collect(), resolution)
    }

    fn resolution(&self, run_id: i64) -> String {
        let db = rusqlite::Connection::open(self.config.history_path()).unwrap();
        db.query_row("SELECT resolution FROM runs WHERE id = ?1", [run_id], |r| {
            r.get(0)
        })
        .unwrap()
    }

    fn warnings(&self) -> Vec<String> {
        let db = rusqlite::Connection::open(self.config.history_path()).unwrap();
        let mut stmt = db
            .prepare("SELECT message FROM events WHERE kind = 'warning' ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }
}

fn ids(ns: &[u32]) -> BTreeSet<String> {
    ns.iter().map(|n| volume_id(*n)).collect()
}

fn statuses(pairs: &[(u32, JobStatus)]) -> BTreeMap<String, JobStatus> {
    pairs.iter().map(|(n, s)| (volume_id(*n), *s)).collect()
}

#[tokio::test]
async fn volumes_that_come_and_go_are_backed_up_noted_once_and_flagged_by_coverage() {
    let world = World::start_instant(vec![
        labelled(1, &[("backup", "nightly")]),
        labelled(2, &[("backup", "nightly"), ("team", "db")]),
        labelled(3, &[("team", "web")]),
        labelled(4, &[("backup", "none")]),
        volume(6, None),
    ])
    .await;
    let slots = Slots::new(&world, "", &nightly(""));
    use JobStatus::{LeftScope, Succeeded, TargetGone};

    let (jobs, scope, resolution) = slots.night(&world, 0).await;
    assert_eq!(jobs, statuses(&[(1, Succeeded), (2, Succeeded)]));
    assert_eq!((scope, resolution.as_str()), (ids(&[1, 2]), "resolved"));

    // Between the slots: 3 joins, 2 leaves, 5 is made tagged, 1 is deleted.
    assert!(world
        .sim
        .set_volume_metadata(PROJECT, &volume_id(3), "backup", Some("nightly")));
    assert!(world
        .sim
        .set_volume_metadata(PROJECT, &volume_id(2), "backup", None));
    world
        .sim
        .add_volume(PROJECT, labelled(5, &[("backup", "nightly")]));
    assert!(world.sim.remove_volume(PROJECT, &volume_id(1)));

    let (jobs, scope, _) = slots.night(&world, 1).await;
    assert_eq!(
        jobs,
        statuses(&[
            (1, TargetGone),
            (2, LeftScope),
            (3, Succeeded),
            (5, Succeeded)
        ])
    );
    assert_eq!(scope, ids(&[3, 5]));

    // Noted once: the next night has jobs for the volumes in scope only.
    let (jobs, scope, _) = slots.night(&world, 2).await;
    assert_eq!(jobs, statuses(&[(3, Succeeded), (5, Succeeded)]));
    assert_eq!(scope, ids(&[3, 5]));
    let backed_up: Vec<String> = world
        .sim
        .backups(PROJECT)
        .into_iter()
        .map(|b| b.volume_id)
        .collect();
    for n in [3, 5] {
        assert_eq!(backed_up.iter().filter(|v| **v == volume_id(n)).count(), 2);
    }
    assert!(
        names_made_twice(world.sim.backups(PROJECT).iter().map(|b| b.name.as_str())).is_empty()
    );

    // Coverage: 2 (untagged) and 6 (never tagged) are unprotected, 4 opted out.
    let client = slots.engine.observed_client("sim").unwrap();
    let coverage = audit(&slots.config, "sim", &client, Some(&slots.store))
        .await
        .unwrap();
    let standing: BTreeMap<String, Standing> = coverage
        .rows
        .iter()
        .filter(|r| r.kind == "volume")
        .map(|r| (r.id.clone(), r.standing.clone()))
        .collect();
    assert_eq!(
        standing,
        BTreeMap::from([
            (volume_id(2), Standing::Unprotected),
            (volume_id(3), Standing::Protected),
            (
                volume_id(4),
                Standing::OptedOut("opted out by backup=none".into())
            ),
            (volume_id(5), Standing::Protected),
            (volume_id(6), Standing::Unprotected),
        ])
    );
    // report keeps the gone and the left volume apart from failing ones.
    let now = Utc::now() + TimeDelta::days(3);
    let report = vbs_agent::audit::compliance_report(
        &slots.config,
        &slots.store,
        now - TimeDelta::days(30),
        now,
    )
    .unwrap();
    let vanished: BTreeMap<String, Option<VanishedAs>> = report
        .targets
        .iter()
        .map(|t| (t.target.clone(), t.vanished))
        .collect();
    assert_eq!(vanished[&volume_id(1)], Some(VanishedAs::TargetGone));
    assert_eq!(vanished[&volume_id(2)], Some(VanishedAs::LeftScope));
    assert_eq!(vanished[&volume_id(3)], None);
    assert!(report
        .targets
        .iter()
        .filter(|t| t.vanished.is_some())
        .all(|t| !t.rpo_breached));
    let three = coverage.rows.iter().find(|r| r.id == volume_id(3)).unwrap();
    assert_eq!(three.policies, ["nightly"]);
    assert!(
        three.last_good.is_some(),
        "the last good backup comes from the history"
    );
    assert_eq!(coverage.unprotected(), 2);
}

#[tokio::test]
async fn a_listed_volume_that_is_deleted_is_gone_once_and_its_newest_backup_kept_as_long_as_asked()
{
    let world = World::start_instant(vec![volume(1, None), volume(2, None)]).await;
    let policy = format!(
        "  - name: nightly\n    kind: backup\n    cloud: sim\n    schedule: \"0 30 1 * * *\"\n    force: true\n    full_backup_every: 1\n    retention: {{ max_age: 1d, gone_keep_newest_for: 10d }}\n    volumes: [{}, {}]\n",
        volume_id(1),
        volume_id(2)
    );
    let slots = Slots::new(&world, "", &policy);
    use JobStatus::{Succeeded, TargetGone};
    for night in 0..2 {
        let (jobs, _, resolution) = slots.night(&world, night).await;
        assert_eq!(jobs, statuses(&[(1, Succeeded), (2, Succeeded)]));
        assert_eq!(resolution, "listed");
    }
    assert!(world.sim.remove_volume(PROJECT, &volume_id(1)));
    // The snapshot create answers 404; the volume is looked up and gone.
    let (jobs, _, _) = slots.night(&world, 2).await;
    assert_eq!(jobs, statuses(&[(1, TargetGone), (2, Succeeded)]));
    let newest_of_1 = |world: &World| -> Vec<String> {
        world
            .sim
            .backups(PROJECT)
            .into_iter()
            .filter(|b| b.volume_id == volume_id(1) && b.status != "deleted")
            .map(|b| b.id)
            .collect()
    };
    // Older than max_age, but the newest backup of a gone volume is kept.
    for night in 3..8 {
        let (jobs, _, _) = slots.night(&world, night).await;
        assert_eq!(jobs, statuses(&[(2, Succeeded)]), "night {night}");
    }
    assert_eq!(
        newest_of_1(&world).len(),
        1,
        "the older ones are pruned, the newest kept"
    );
    // Ten days after it was found gone, the newest goes too.
    slots.night(&world, 14).await;
    assert_eq!(newest_of_1(&world), Vec::<String>::new());
}

#[tokio::test]
async fn tags_select_on_clouds_that_select_by_tags() {
    let world = World::start_instant(vec![
        tagged(1, &[("backup", "nightly"), ("tier", "gold")]),
        tagged(2, &[("backup", "nightly")]),
        labelled(3, &[("backup", "nightly"), ("tier", "gold")]),
    ])
    .await;
    let policy = "  - name: nightly\n    kind: snapshot\n    cloud: sim\n    schedule: \"0 30 1 * * *\"\n    force: true\n    select:\n      match: {backup: nightly, tier: \"*\"}\n";
    let slots = Slots::new(&world, "    select_by: tags\n", policy);
    let (jobs, _, _) = slots.night(&world, 0).await;
    // 3 has the labels as metadata, not as tags: not selected on this cloud.
    assert_eq!(jobs, statuses(&[(1, JobStatus::Succeeded)]));
    let run = slots.store.current_scope("nightly").unwrap().unwrap();
    assert_eq!(run[0].reason, "tags backup=nightly,tier=*");
}

#[tokio::test]
async fn a_fault_storm_on_resolution_never_runs_an_empty_set_nor_backs_up_twice() {
    let world = World::start_instant(
        (1..=6)
            .map(|n| labelled(n, &[("backup", "nightly")]))
            .collect(),
    )
    .await;
    let slots = Slots::new(&world, "", &nightly(""));
    let everyone = ids(&[1, 2, 3, 4, 5, 6]);
    let (_, scope, _) = slots.night(&world, 0).await;
    assert_eq!(scope, everyone);
    world.sim.set_faults(Faults {
        seed: 7,
        server_error_rate: 0.3,
        drop_rate: 0.1,
        malformed_rate: 0.1,
        paths: vec!["volumes/detail".into()],
        ..Faults::default()
    });
    let mut fell_back = 0;
    for night in 1..12 {
        if night % 3 == 1 {
            // The resolution fails whatever the retries: every attempt 503s.
            world.sim.script(Scripted {
                method: "GET".into(),
                path_contains: "volumes/detail".into(),
                status: 503,
                content_type: "application/json".into(),
                body: r#"{"message": "Service Unavailable"}"#.into(),
                times: 5,
                ..Scripted::default()
            });
        }
        let (jobs, scope, resolution) = slots.night(&world, night).await;
        assert_eq!(scope, everyone, "night {night}: {resolution}");
        assert_eq!(jobs.keys().cloned().collect::<BTreeSet<_>>(), everyone);
        if resolution == "last_good" {
            fell_back += 1;
        }
    }
    world.sim.set_faults(Faults::default());
    assert!(
        fell_back >= 3,
        "the scripted outages made runs fall back ({fell_back})"
    );
    let warnings = slots.warnings();
    let recorded = warnings
        .iter()
        .filter(|w| w.contains("the selector could not be resolved"))
        .count();
    assert_eq!(recorded, fell_back, "{warnings:#?}");
    assert!(
        names_made_twice(world.sim.backups(PROJECT).iter().map(|b| b.name.as_str())).is_empty()
    );
    assert_eq!(world.sim.backups(PROJECT).len(), 6 * 12);
}

#[tokio::test]
async fn servers_are_selected_by_their_tags_and_protect_their_disks_in_coverage() {
    use crate::helper::sim::SimServer;
    use crate::helper::{server, server_id};
    let tagged_server = |n: u32, value: &str| SimServer {
        tags: pairs(&[("backup", value)]),
        ..server(n)
    };
    let world = World::start_servers(
        vec![
            tagged_server(1, "daily"),
            tagged_server(2, "daily"),
            server(3),
        ],
        std::time::Duration::from_millis(200),
        std::time::Duration::ZERO,
    )
    .await;
    // Server 1's data disk, as Cinder lists it: attached to server 1.
    world.sim.add_volume(
        PROJECT,
        SimVolume {
            server: Some(server_id(1)),
            ..volume(101, None)
        },
    );
    world.sim.add_volume(PROJECT, volume(7, None));
    let policy = "  - name: servers\n    kind: server\n    cloud: sim\n    schedule: \"0 0 2 * * *\"\n    select:\n      match: {backup: daily}\n";
    let slots = Slots::new(&world, "", policy);
    let by_server = |pairs: &[(u32, JobStatus)]| -> BTreeMap<String, JobStatus> {
        pairs.iter().map(|(n, s)| (server_id(*n), *s)).collect()
    };
    let (jobs, _, _) = slots.night(&world, 0).await;
    assert_eq!(
        jobs,
        by_server(&[(1, JobStatus::Succeeded), (2, JobStatus::Succeeded)])
    );
    assert!(world.sim.remove_server(&server_id(2)));
    let (jobs, scope, _) = slots.night(&world, 1).await;
    assert_eq!(
        jobs,
        by_server(&[(1, JobStatus::Succeeded), (2, JobStatus::TargetGone)])
    );
    assert_eq!(scope, BTreeSet::from([server_id(1)]));

    let client = slots.engine.observed_client("sim").unwrap();
    let coverage = audit(&slots.config, "sim", &client, Some(&slots.store))
        .await
        .unwrap();
    let row = |id: &str| coverage.rows.iter().find(|r| r.id == id).unwrap();
    assert_eq!(row(&server_id(1)).standing, Standing::Protected);
    assert_eq!(row(&server_id(3)).standing, Standing::Unprotected);
    assert_eq!(
        row(&volume_id(101)).policies,
        ["servers"],
        "protected through its server"
    );
    assert_eq!(row(&volume_id(7)).standing, Standing::Unprotected);
}

#[tokio::test]
async fn policies_firing_in_the_same_minute_share_one_resolution_and_an_empty_match_is_warned_about(
) {
    let world = World::start_instant(vec![
        labelled(1, &[("backup", "nightly")]),
        labelled(2, &[("backup", "nightly")]),
    ])
    .await;
    let policies = format!(
        "{}{}  - name: nothing\n    kind: snapshot\n    cloud: sim\n    schedule: \"0 30 1 * * *\"\n    select:\n      match: {{backup: hourly}}\n",
        nightly(""),
        nightly("").replace("name: nightly", "name: nightly-snap").replace("kind: backup", "kind: snapshot"),
    );
    let slots = Slots::new(&world, "", &policies);
    let slot = Utc::now()
        .date_naive()
        .and_hms_opt(1, 30, 0)
        .unwrap()
        .and_utc();
    world.sim.set_now(slot);
    let mut statuses = Vec::new();
    for policy in &slots.config.policies {
        let report = slots
            .engine
            .run_policy(policy, slot, Trigger::Schedule)
            .await
            .unwrap();
        statuses.push(slots.store.run_status(report.run_id).unwrap().unwrap());
    }
    assert_eq!(statuses, ["succeeded", "succeeded", "empty"]);
    let db = rusqlite::Connection::open(slots.config.history_path()).unwrap();
    let lists: Vec<String> = db
        .prepare(
            "SELECT path FROM events WHERE kind = 'api_call' AND path LIKE '%/volumes/detail%'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // One for both nightly policies, one for the policy matching nothing.
    assert_eq!(lists.len(), 2, "{lists:#?}");
    let warnings = slots.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("the selector (metadata backup=hourly) matched no volume")),
        "{warnings:#?}"
    );
}

#[tokio::test]
async fn a_label_removed_from_many_volumes_is_told_apart_from_deletion_in_one_listing() {
    let world = World::start_instant(
        (1..=30)
            .map(|n| labelled(n, &[("backup", "nightly")]))
            .collect(),
    )
    .await;
    let slots = Slots::new(&world, "", &nightly(""));
    slots.night(&world, 0).await;
    for n in 1..=25 {
        world
            .sim
            .set_volume_metadata(PROJECT, &volume_id(n), "backup", None);
    }
    world.sim.remove_volume(PROJECT, &volume_id(26));
    let (jobs, scope, _) = slots.night(&world, 1).await;
    let count = |status| jobs.values().filter(|s| **s == status).count();
    assert_eq!(count(JobStatus::LeftScope), 25);
    assert_eq!(count(JobStatus::TargetGone), 1);
    assert_eq!(jobs[&volume_id(26)], JobStatus::TargetGone);
    assert_eq!(scope, ids(&[27, 28, 29, 30]));
    let db = rusqlite::Connection::open(slots.config.history_path()).unwrap();
    let lookups: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE kind = 'api_call' AND method = 'GET'
               AND path LIKE '%/volumes/%' AND path NOT LIKE '%/volumes/detail%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(lookups, 0, "one listing, not a look-up per volume");
}
