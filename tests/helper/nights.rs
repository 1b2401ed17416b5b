//! Three weeks of a nightly policy played out in seconds, written once for
//! every policy kind: the engine decides retention by a clock the test
//! moves, the cloud reports times from the same slots, and what is left
//! must be exactly what the rules keep.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use vbs_agent::config::Config;
use vbs_agent::engine::Engine;
use vbs_agent::store::{JobRecord, JobStatus, Store, Trigger};

use super::{fast, load, World};

/// What the nightly suite needs to know of one policy kind.
pub struct Kind {
    /// The policies list: one policy named `nightly` with these extra lines.
    pub policy: fn(extra: &str) -> String,
    /// Extra lines for the cloud (`backup_service: cbr`).
    pub cloud_extra: &'static str,
    /// The `retention:` rules, meaning: the `newest` nights plus the newest
    /// night of each of the `weeks` most recent ISO weeks (Berlin).
    pub retention: &'static str,
    pub newest: usize,
    pub weeks: usize,
    /// The id, as [`Kind::listed`] gives it, of what a job made.
    pub made: fn(&JobRecord) -> Option<String>,
    /// The ids of everything of this kind the cloud holds now.
    pub listed: fn(&World) -> Vec<String>,
}

/// Nights of a nightly policy: its file, history and an engine on a
/// movable clock.
pub struct Nights {
    pub config: Config,
    pub store: Arc<Store>,
    pub engine: Engine,
    pub slots: Vec<DateTime<Utc>>,
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl Nights {
    /// 21 nightly slots of `kind`'s policy in Europe/Berlin from Sunday 1
    /// November 2026 (no DST change in three weeks).
    pub fn of_kind(world: &World, kind: &Kind) -> Self {
        let first = Berlin
            .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        Self::starting(world, kind, first)
    }

    /// 21 nightly slots of `kind`'s policy in Europe/Berlin after `first`.
    pub fn starting(world: &World, kind: &Kind, first: DateTime<Utc>) -> Self {
        let extra = format!(
            "    timezone: Europe/Berlin\n    retention: {}\n",
            kind.retention
        );
        let config = load(&world.write_config("", kind.cloud_extra, &(kind.policy)(&extra)));
        let store = Arc::new(Store::open(&config.history_path()).unwrap());
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = Arc::clone(&now);
        let engine = Engine::new(&config, Arc::clone(&store), fast())
            .unwrap()
            .with_clock(Arc::new(move || *clock.lock().unwrap()));
        let slots = config.policies[0].schedule.upcoming(first, Berlin, 21);
        Self {
            config,
            store,
            engine,
            slots,
            now,
        }
    }

    /// Moves the cloud's and the engine's clocks to just after `slot`.
    pub fn enter(&self, world: &World, slot: DateTime<Utc>) {
        world.sim.set_now(slot);
        *self.now.lock().unwrap() = slot + TimeDelta::minutes(5);
    }

    /// Runs every night; each job succeeds and what it made is there right
    /// after (the newest is never pruned). Returns the jobs, oldest first.
    pub async fn play(&self, world: &World, kind: &Kind) -> Vec<(DateTime<Utc>, JobRecord)> {
        let policy = &self.config.policies[0];
        let mut made = Vec::new();
        for slot in &self.slots {
            self.enter(world, *slot);
            let report = self
                .engine
                .run_policy(policy, *slot, Trigger::Schedule)
                .await
                .unwrap();
            let job = report.jobs[0].clone();
            assert_eq!(job.status, JobStatus::Succeeded, "{job:#?}");
            let id = (kind.made)(&job).unwrap_or_else(|| panic!("{job:#?}"));
            assert!((kind.listed)(world).contains(&id), "{job:#?}");
            made.push((*slot, job));
        }
        made
    }

    /// What is left is exactly what the rules keep of `made`, and `foreign`
    /// (made by someone else); every other night was deleted and recorded.
    pub fn assert_kept(
        &self,
        world: &World,
        kind: &Kind,
        made: &[(DateTime<Utc>, JobRecord)],
        foreign: &[String],
    ) {
        let ids: Vec<_> = made
            .iter()
            .map(|(slot, job)| (*slot, (kind.made)(job).unwrap()))
            .collect();
        let kept = kept_by_nightly_rules(&ids, kind.newest, kind.weeks);
        let mut want: Vec<String> = kept.iter().chain(foreign).cloned().collect();
        want.sort();
        let mut left = (kind.listed)(world);
        left.sort();
        assert_eq!(
            left, want,
            "kept: the {} newest nights and the newest of {} weeks, and what the agent did not make",
            kind.newest, kind.weeks
        );
        let conn = rusqlite::Connection::open(self.config.history_path()).unwrap();
        let deleted: i64 = conn
            .query_row(
                "SELECT count(*) FROM retention_actions WHERE action = 'deleted'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            deleted as usize,
            made.len() - kept.len(),
            "every other night was deleted and recorded"
        );
    }
}

/// What rules "the `newest` newest, plus the newest of each of the `weeks`
/// most recent ISO weeks (Berlin)" keep of `made` (slot, id), oldest first;
/// worked out independently of the planner. Sorted ids.
pub fn kept_by_nightly_rules(
    made: &[(DateTime<Utc>, String)],
    newest: usize,
    weeks: usize,
) -> Vec<String> {
    let mut want: Vec<String> = made
        .iter()
        .rev()
        .take(newest)
        .map(|(_, id)| id.clone())
        .collect();
    let mut seen = Vec::new();
    for (slot, id) in made.iter().rev() {
        let week = slot.with_timezone(&Berlin).iso_week();
        if !seen.contains(&week) && seen.len() < weeks {
            seen.push(week);
            want.push(id.clone());
        }
    }
    want.sort();
    want.dedup();
    want
}
