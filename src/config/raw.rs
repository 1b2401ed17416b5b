//! The policy file as written: serde structs for each section, before any
//! defaults or checks. The reference for the format, with every field's
//! default, bound and examples, is `docs/policy-file.md`; the comments here
//! say what each field is for.
//!
//! Every field is an `Option` here so that a missing required field is
//! reported by the checks with a message saying what it should hold, and
//! all missing fields of a section are reported together.

use serde::Deserialize;

/// Top-level fields, in the order of the reference.
pub(crate) const TOP_FIELDS: &[&str] = &[
    "state_dir",
    "max_concurrent_jobs",
    "defaults",
    "clouds",
    "policies",
    "metrics_listen",
    "opt_out",
    "coverage_every",
    "history",
];

/// `history:` — where the history lives when it is not the SQLite file in
/// `state_dir`: a PostgreSQL database shared by the agents of an HA pair.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawHistory {
    pub(crate) postgres: Option<RawPostgres>,
}

/// `history.postgres:` — the database, and the leader lease held in it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawPostgres {
    /// The connection URL (it holds the password): from a file, an
    /// environment variable or a systemd credential, never the policy file.
    pub(crate) url_file: Option<String>,
    pub(crate) url_env: Option<String>,
    pub(crate) url_credential: Option<String>,
    /// PEM roots for a server certificate no public root signs.
    pub(crate) ca_file: Option<String>,
    /// How long a leader's lease lasts unless renewed.
    pub(crate) lease_ttl: Option<String>,
}

/// `defaults:` — what a policy uses when it does not say otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawDefaults {
    /// IANA time zone in which schedules are evaluated.
    pub(crate) timezone: Option<String>,
    /// How long a job may take before it is recorded as `timed_out`.
    pub(crate) completion_timeout: Option<String>,
    /// How often to look at a snapshot or backup that is still working.
    pub(crate) poll: Option<RawPoll>,
    /// Window over which a policy's jobs start, so they do not all start at once.
    pub(crate) jitter: Option<String>,
    /// What to do with a slot missed while the agent was down.
    pub(crate) misfire: Option<String>,
    /// Job-level retries of a backup or snapshot that ends in `error`.
    pub(crate) retries: Option<RawRetries>,
    /// Notifications for every policy without its own `notify`.
    pub(crate) notify: Option<RawNotify>,
}

/// `notify:` — tell operators about job outcomes, by webhook or command.
/// A policy's `notify` replaces `defaults.notify` as a whole.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawNotify {
    /// URL each notification is POSTed to as JSON.
    pub(crate) webhook: Option<String>,
    /// Program and arguments (no shell) run for each notification.
    pub(crate) command: Option<Vec<String>>,
    /// Which outcomes are notified.
    pub(crate) on: Option<Vec<String>>,
    /// How long one delivery may take before it is given up.
    pub(crate) timeout: Option<String>,
}

/// `retries:` — each field optional; a policy's `retries` overrides
/// `defaults.retries` field by field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawRetries {
    /// Attempts in all, the first included.
    pub(crate) max_attempts: Option<u32>,
    /// Wait between a failed attempt and the next.
    pub(crate) delay: Option<String>,
}

/// `retention:` — which backups to keep; a backup is kept if any rule
/// keeps it, and the hard rules of the reference hold whatever they say.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawRetention {
    /// Keep the newest N available backups of each target.
    pub(crate) keep_last: Option<u32>,
    /// Keep every backup younger than this.
    pub(crate) max_age: Option<String>,
    /// Keep the newest backup of each of the last N hours, days, ISO weeks,
    /// months and years, in the policy's time zone.
    pub(crate) keep_hourly: Option<u32>,
    pub(crate) keep_daily: Option<u32>,
    pub(crate) keep_weekly: Option<u32>,
    pub(crate) keep_monthly: Option<u32>,
    pub(crate) keep_yearly: Option<u32>,
    /// Keep the newest backup of a target that no longer exists for this
    /// long; for ever when left out.
    pub(crate) gone_keep_newest_for: Option<String>,
}

/// `poll:` — how often to ask whether a snapshot or backup is done. Each
/// field is optional; a policy's `poll` overrides `defaults.poll` field by
/// field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawPoll {
    /// Wait before the first look.
    pub(crate) initial: Option<String>,
    /// Longest wait between two looks.
    pub(crate) max: Option<String>,
    /// Growth of the wait from one look to the next.
    pub(crate) factor: Option<f64>,
}

/// `clouds.NAME:` — one project in one region, and how to reach it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawCloud {
    /// The project, by ID; every API URL carries it.
    pub(crate) project_id: Option<String>,
    /// The project by name, for Keystone to turn into an ID (password auth).
    pub(crate) project_name: Option<String>,
    /// The domain `project_name` is looked up in.
    pub(crate) project_domain: Option<String>,
    /// Service base URLs; those left out come from the service catalog.
    pub(crate) endpoints: Option<RawEndpoints>,
    /// Which API version creates snapshots: `v2` or `v3`.
    pub(crate) snapshot_api: Option<String>,
    /// Which call restores a backup: `cinder` or `vendor`.
    pub(crate) restore_api: Option<String>,
    /// How volume selectors match: `metadata` (Cinder) or `tags` (EVS).
    pub(crate) select_by: Option<String>,
    /// Which service makes volume backups: `vbs`, `cbr` or `auto`.
    pub(crate) backup_service: Option<String>,
    /// Most API requests to this cloud per second, minute or hour.
    pub(crate) rate_limit: Option<String>,
    /// Allow plain `http://` endpoints on non-loopback hosts.
    pub(crate) allow_http: Option<bool>,
    /// How the agent authenticates, when the cloud is written inline.
    pub(crate) auth: Option<RawAuth>,
    /// Take this cloud from the entry of this name in a `clouds.yaml`.
    pub(crate) clouds_yaml: Option<String>,
    /// Take this cloud from the `OS_*` environment variables.
    pub(crate) from_env: Option<bool>,
    /// Region of the service-catalog endpoints to use.
    pub(crate) region: Option<String>,
    /// Service-catalog interface: `public`, `internal` or `admin`.
    pub(crate) interface: Option<String>,
    /// PEM file of a private CA trusted for this cloud.
    pub(crate) cacert: Option<String>,
}

/// `clouds.NAME.endpoints:` — service base URLs, without the
/// `/v2/{project_id}` part the agent adds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawEndpoints {
    /// EVS / Cinder: snapshots.
    pub(crate) volume: Option<String>,
    /// VBS / Cinder: backups.
    pub(crate) backup: Option<String>,
    /// CSBS: server backups, for `kind: server` policies.
    pub(crate) server_backup: Option<String>,
    /// CBR: vaults, checkpoints and their backups.
    pub(crate) cbr: Option<String>,
    /// ECS / Nova: finding servers by tag, and whether a server exists.
    pub(crate) compute: Option<String>,
}

/// `clouds.NAME.auth:` — Keystone password, a pre-issued token or AK/SK,
/// chosen by `type`. Each secret is given exactly one way (`*_file`,
/// `*_env` or `*_credential`); fields of another type are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawAuth {
    /// `password`, `token` or `aksk`.
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// Keystone v3 endpoint: where password auth gets its token, and token
    /// auth its service catalog.
    pub(crate) auth_url: Option<String>,
    /// Password auth: the user name.
    pub(crate) user: Option<String>,
    /// Password auth: the user's domain name.
    pub(crate) user_domain: Option<String>,
    /// Password auth: file holding the password.
    pub(crate) password_file: Option<String>,
    /// Password auth: environment variable holding the password.
    pub(crate) password_env: Option<String>,
    /// Token auth: file holding the token.
    pub(crate) token_file: Option<String>,
    /// Token auth: environment variable holding the token.
    pub(crate) token_env: Option<String>,
    /// Password auth: systemd credential holding the password.
    pub(crate) password_credential: Option<String>,
    /// Token auth: systemd credential holding the token.
    pub(crate) token_credential: Option<String>,
    /// AK/SK auth: the access key, from a file, a variable or a credential.
    pub(crate) access_key_file: Option<String>,
    pub(crate) access_key_env: Option<String>,
    pub(crate) access_key_credential: Option<String>,
    /// AK/SK auth: the secret key, from a file, a variable or a credential.
    pub(crate) secret_key_file: Option<String>,
    pub(crate) secret_key_env: Option<String>,
    pub(crate) secret_key_credential: Option<String>,
}

/// `policies[N]:` — what to back up, where, and when.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawPolicy {
    /// Unique name; it begins every resource name the policy creates, which
    /// is how the agent recognises its own backups.
    pub(crate) name: Option<String>,
    /// `backup`, `snapshot` or `server`: what one job makes.
    pub(crate) kind: Option<String>,
    /// The entry under `clouds` the policy runs against.
    pub(crate) cloud: Option<String>,
    /// Cron with seconds: when the policy fires.
    pub(crate) schedule: Option<String>,
    /// Overrides `defaults.timezone`.
    pub(crate) timezone: Option<String>,
    /// Kinds `backup` and `snapshot`: the volume IDs to back up.
    pub(crate) volumes: Option<Vec<String>>,
    /// Snapshot volumes even while attached to a server.
    pub(crate) force: Option<bool>,
    /// Text sent as each backup's description.
    pub(crate) description: Option<String>,
    /// Kind `backup`: keep the intermediate snapshot.
    pub(crate) keep_snapshot: Option<bool>,
    /// Overrides `defaults.completion_timeout`.
    pub(crate) completion_timeout: Option<String>,
    /// Overrides `defaults.poll`, field by field.
    pub(crate) poll: Option<RawPoll>,
    /// Overrides `defaults.jitter`.
    pub(crate) jitter: Option<String>,
    /// Overrides `defaults.misfire`.
    pub(crate) misfire: Option<String>,
    /// Overrides `defaults.retries`, field by field.
    pub(crate) retries: Option<RawRetries>,
    /// Which of the policy's backups to keep; without it nothing is deleted.
    pub(crate) retention: Option<RawRetention>,
    /// Kind `backup`: every Nth backup of a volume is a full one.
    pub(crate) full_backup_every: Option<u32>,
    /// Kind `backup`: project IDs each backup is shared with.
    pub(crate) share_to: Option<Vec<String>>,
    /// Kind `backup` on a CBR cloud: the disk vault, by name or ID.
    pub(crate) vault: Option<String>,
    /// Kind `backup` on a CBR cloud: add volumes missing from the vault.
    pub(crate) add_to_vault: Option<bool>,
    /// Replaces `defaults.notify` for this policy.
    pub(crate) notify: Option<RawNotify>,
    /// Recovery point objective: how old a target's newest good backup may
    /// be before `vbs-agent report` flags it.
    pub(crate) rpo: Option<String>,
    /// Kind `server`: the server (ECS) IDs to back up.
    pub(crate) servers: Option<Vec<String>>,
    /// Kind `server`: the CSBS provider.
    pub(crate) provider_id: Option<String>,
    /// Kind `backup`: restore the policy's backups on a schedule.
    pub(crate) drill: Option<RawDrill>,
    /// Targets named by their metadata or tags.
    pub(crate) select: Option<RawSelect>,
}

/// `select:` — the volumes (or servers) whose labels match, found anew at
/// each firing.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawSelect {
    /// Key → value pairs that must all hold; `"*"` for any value.
    #[serde(rename = "match")]
    pub(crate) all_of: Option<std::collections::BTreeMap<String, String>>,
    /// IDs never selected.
    pub(crate) exclude: Option<Vec<String>>,
}

/// `drill:` — a backup policy's restore drill.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawDrill {
    /// Cron with seconds: when the drill runs.
    pub(crate) schedule: Option<String>,
    /// How many volumes one drill restores; every volume when left out.
    pub(crate) sample: Option<u64>,
    /// Which backup: `newest` or `random`.
    pub(crate) pick: Option<String>,
    /// Most restores of one drill at once.
    pub(crate) max_concurrent: Option<u64>,
    /// How long one restore, its verify included, may take.
    pub(crate) timeout: Option<String>,
    /// The program that checks a restored volume.
    pub(crate) verify: Option<RawVerify>,
    /// How old a volume's last verified restore may be.
    pub(crate) rpo: Option<String>,
}

/// `drill.verify:` — the check of a restored volume.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawVerify {
    /// Program and arguments (no shell).
    pub(crate) command: Option<Vec<String>>,
    /// How long it may run before it is killed.
    pub(crate) timeout: Option<String>,
}
