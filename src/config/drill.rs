//! Restore drills: a backup policy's `drill:` block becomes a policy of its
//! own, of kind `restore`, named `<policy>.drill` (a dot no policy name may
//! have, so it never collides). It restores the backup policy's backups of
//! its volumes into scratch volumes on its own schedule, checks them, and
//! deletes the scratch volumes. Also the model of `vbs-agent restore`, a
//! restore of one backup on request.

use std::time::Duration;

use super::bounds::MAX_COMPLETION_TIMEOUT;
use super::checks;
use super::model::{Policy, Retries, Work};
use super::path::FieldPath;
use super::raw::RawDrill;
use super::report::Report;
use super::validate::optional;

/// How long one drill restore, its verify included, may take by default.
pub const DEFAULT_DRILL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// How long `verify` may run by default.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// What a drill policy's name adds to its backup policy's.
pub const DRILL_SUFFIX: &str = ".drill";
/// The policy name of restores made with `vbs-agent restore` in the
/// history (a dot, so no policy in a file can have it).
pub const MANUAL_RESTORE_POLICY: &str = "restore.manual";

/// Kind `restore`: a backup restored into a volume, per source volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreWork {
    /// The backup policy whose backups are restored (empty for `vbs-agent
    /// restore`).
    pub of: String,
    /// The source volumes, whose backups are restored (one job each).
    pub volumes: Vec<String>,
    /// How many volumes one run restores, those drilled longest ago first;
    /// `None`: every volume.
    pub sample: Option<usize>,
    /// Which of a volume's backups is restored.
    pub pick: Pick,
    /// Most restores of one run at once.
    pub max_concurrent: usize,
    /// The program that checks a restored volume.
    pub verify: Option<Verify>,
    /// What the backup is restored into.
    pub into: RestoreInto,
}

/// Which backup a drill restores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The newest available backup: is last night's good?
    Newest,
    /// Any available backup, at random: are the older ones, still kept
    /// by retention, good too?
    Random,
}

/// A program run with the restored volume's id in its environment; exit 0
/// means the data is right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    /// Killed after this long.
    pub timeout: Duration,
}

/// What a restore writes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreInto {
    /// A volume the agent creates, checks and deletes again (drills).
    Scratch,
    /// A volume the agent creates and leaves for the operator.
    NewVolume {
        /// Its name; the agent's deterministic name when `None`.
        name: Option<String>,
        /// Its availability zone; the backup's when `None`.
        availability_zone: Option<String>,
    },
    /// An existing volume, overwritten.
    Existing(String),
}

/// The drill policy of backup policy `source` (`None` when anything in the
/// block was reported).
pub(super) fn drill_policy(
    source: &Policy,
    raw: &RawDrill,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Policy> {
    let schedule = super::policy::schedule(&raw.schedule, path, "0 0 5 * * SUN", report);
    let volumes = source.targets().to_vec();
    let sample = match raw.sample {
        None => Some(None),
        Some(0) => {
            report.value(
                &path.key("sample"),
                "sample is 0; give how many volumes one drill restores, or leave it out to drill every volume",
            );
            None
        }
        // A selector's volumes are known only at each firing.
        Some(n) if source.select.is_some() => Some(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Some(n) => Some(Some(
            usize::try_from(n).unwrap_or(usize::MAX).min(volumes.len()),
        )),
    };
    let pick = match raw.pick.as_deref() {
        None | Some("newest") => Some(Pick::Newest),
        Some("random") => Some(Pick::Random),
        Some(other) => {
            report.value(
                &path.key("pick"),
                format!("unknown pick \"{other}\" (supported: newest, random)"),
            );
            None
        }
    };
    let max_concurrent = match raw.max_concurrent {
        None => Some(1),
        Some(n @ 1..=100) => Some(usize::try_from(n).unwrap_or(1)),
        Some(n) => {
            report.value(
                &path.key("max_concurrent"),
                format!("max_concurrent is {n}; give 1 to 100 restores at once"),
            );
            None
        }
    };
    let timeout = timeout(&raw.timeout, path, report);
    let verify = match &raw.verify {
        None => Some(None),
        Some(v) => verify(v, &path.key("verify"), report).map(Some),
    };
    let rpo = super::policy::rpo(&raw.rpo, path, report);
    Some(Policy {
        name: format!("{}{DRILL_SUFFIX}", source.name),
        cloud: source.cloud.clone(),
        schedule: schedule?,
        timezone: source.timezone,
        description: None,
        completion_timeout: timeout?.unwrap_or(DEFAULT_DRILL_TIMEOUT),
        poll: source.poll,
        jitter: Duration::ZERO,
        misfire: source.misfire,
        // A failed restore is the drill's finding, not a hiccup to retry.
        retries: Retries {
            max_attempts: 1,
            ..source.retries
        },
        retention: None,
        notify: source.notify.clone(),
        rpo: rpo?,
        select: source.select.clone(),
        work: Work::Restore(RestoreWork {
            of: source.name.clone(),
            volumes,
            sample: sample?,
            pick: pick?,
            max_concurrent: max_concurrent?,
            verify: verify?,
            into: RestoreInto::Scratch,
        }),
    })
}

/// A `timeout` under `path`, at most [`MAX_COMPLETION_TIMEOUT`].
fn timeout(
    raw: &Option<String>,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Option<Duration>> {
    let check = |d: &str| checks::duration(d, MAX_COMPLETION_TIMEOUT);
    optional(raw, path, "timeout", check, report)
}

fn verify(
    raw: &super::raw::RawVerify,
    path: &FieldPath,
    report: &mut Report<'_>,
) -> Option<Verify> {
    let command = match raw.command.as_deref() {
        None => {
            report.missing(
                path,
                "command",
                "missing required field `command` (the program that checks a restored volume, and its arguments)",
            );
            None
        }
        Some(argv) => super::notify::command(argv, &path.key("command"), report),
    };
    let timeout = timeout(&raw.timeout, path, report);
    Some(Verify {
        command: command?,
        timeout: timeout?.unwrap_or(DEFAULT_VERIFY_TIMEOUT),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::load::tests::token_cloud;
    use crate::config::{parse, Pick, PolicyKind, RestoreInto, Verify, Work};

    const VOLUMES: &str = "[c5834fe1-577f-462e-9bf3-1b158e1dde9c, 2748f2f2-4394-4e6e-af8d-8dd34496c024, a7d7783f-02b7-4645-b0e3-61df63f0ba10]";

    fn policy(kind: &str, drill: &str) -> String {
        format!(
            "{}  - name: db\n    kind: {kind}\n    cloud: prod\n    schedule: \"0 0 2 * * *\"\n    volumes: {VOLUMES}\n    timezone: Europe/Berlin\n{drill}",
            token_cloud()
        )
    }

    fn fields(text: &str) -> Vec<(String, String)> {
        let errors = parse(text, Path::new("p.yaml")).unwrap_err();
        errors
            .errors
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect()
    }

    #[test]
    fn a_drill_becomes_a_restore_policy_over_the_backup_policys_volumes() {
        let text = policy(
            "backup",
            "    drill:\n      schedule: \"0 0 5 * * SUN\"\n      sample: 2\n      pick: random\n      max_concurrent: 2\n      timeout: 2h\n      verify:\n        command: [/bin/check, --deep]\n",
        );
        let config = parse(&text, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let drill = config.policy("db.drill").expect("the drill's own policy");
        assert_eq!(drill.kind(), PolicyKind::Restore);
        assert_eq!(drill.cloud, "prod");
        assert_eq!(drill.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(drill.completion_timeout, Duration::from_secs(7200));
        assert_eq!(drill.retries.max_attempts, 1);
        assert!(drill.retention.is_none());
        let Work::Restore(work) = &drill.work else {
            panic!("{:?}", drill.work)
        };
        assert_eq!(work.of, "db");
        assert_eq!(work.volumes, config.policy("db").unwrap().targets());
        assert_eq!(work.sample, Some(2));
        assert_eq!(work.pick, Pick::Random);
        assert_eq!(work.max_concurrent, 2);
        assert_eq!(work.into, RestoreInto::Scratch);
        assert_eq!(
            work.verify,
            Some(Verify {
                command: vec!["/bin/check".into(), "--deep".into()],
                timeout: super::DEFAULT_VERIFY_TIMEOUT,
            })
        );
    }

    #[test]
    fn a_drill_left_at_its_defaults_drills_every_volume_newest_first() {
        let text = policy("backup", "    drill:\n      schedule: \"0 0 5 * * SUN\"\n");
        let config = parse(&text, Path::new("p.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let drill = config.policy("db.drill").unwrap();
        let Work::Restore(work) = &drill.work else {
            panic!()
        };
        assert_eq!(
            (work.sample, work.pick, work.max_concurrent),
            (None, Pick::Newest, 1)
        );
        assert_eq!(work.verify, None);
        assert_eq!(drill.completion_timeout, super::DEFAULT_DRILL_TIMEOUT);
    }

    #[test]
    fn every_bad_drill_field_is_named() {
        let text = policy(
            "backup",
            "    drill:\n      sample: 0\n      pick: oldest\n      max_concurrent: 0\n      timeout: 30d\n      verify:\n        timeout: 1m\n",
        );
        let got: Vec<String> = fields(&text).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            got,
            [
                "policies[0].drill.schedule",
                "policies[0].drill.sample",
                "policies[0].drill.pick",
                "policies[0].drill.max_concurrent",
                "policies[0].drill.timeout",
                "policies[0].drill.verify.command",
            ]
        );
    }

    #[test]
    fn drills_belong_to_backup_policies_only() {
        let drill = "    drill:\n      schedule: \"0 0 5 * * SUN\"\n";
        let got = fields(&policy("snapshot", drill));
        assert_eq!(got[0].0, "policies[0].drill", "{got:?}");
        assert!(got[0].1.contains("kind backup only"), "{got:?}");
        let got = fields(&policy("restore", ""));
        assert_eq!(got[0].0, "policies[0].kind", "{got:?}");
        assert!(got[0].1.contains("`drill:` block"), "{got:?}");
    }
}
