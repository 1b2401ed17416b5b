//! The policy file as written: serde structs for each section, before any
//! defaults or checks. This is the reference for the file format; the README
//! is written from it.
//!
//! A policy file is one YAML mapping with these top-level fields:
//!
//! | field | required | meaning |
//! | --- | --- | --- |
//! | `state_dir` | no | Directory of the agent's SQLite history (`history.db`). Default `/var/lib/vbs-agent`. A relative path is relative to the directory of the policy file. |
//! | `max_concurrent_jobs` | no | Jobs in flight at once, over all policies; 1 to 10000, default 16. Jobs over the limit wait in order. |
//! | `defaults` | no | [`RawDefaults`]: values policies inherit. |
//! | `clouds` | yes | Mapping from a cloud name to a [`RawCloud`]; at least one. Names are 1–64 letters, digits, `_` or `-`. |
//! | `policies` | yes | Sequence of [`RawPolicy`]; at least one. |
//! | `metrics_listen` | no | Loopback address and port (`127.0.0.1:9464`) serving Prometheus metrics on `/metrics` and a health check on `/healthz`. Off when absent. Other addresses are refused: the endpoint has no authentication. |
//!
//! ```yaml
//! state_dir: /var/lib/vbs-agent
//! defaults:
//!   timezone: Europe/Berlin
//!   completion_timeout: 6h
//!   poll: { initial: 2s, max: 60s, factor: 1.5 }
//! clouds:
//!   prod:
//!     project_id: 0123456789abcdef0123456789abcdef
//!     endpoints:
//!       volume: https://evs.eu-de.example.com
//!       backup: https://vbs.eu-de.example.com
//!     auth:
//!       type: password
//!       auth_url: https://iam.eu-de.example.com/v3
//!       user: backup-bot
//!       user_domain: OTC00000000001000000000
//!       password_file: /run/credentials/vbs-agent.service/password
//! policies:
//!   - name: db-nightly
//!     kind: backup
//!     cloud: prod
//!     schedule: "0 30 1 * * *"
//!     volumes: [c5834fe1-577f-462e-9bf3-1b158e1dde9c]
//! ```
//!
//! Conventions that hold for every field:
//! - Unknown fields are errors (the message lists the allowed ones), so a
//!   misspelt optional field never silently falls back to its default.
//! - A key given twice in one mapping is an error.
//! - Durations are a number with a unit (`30s`, `15m`, `6h`, `7d`, `1h 30m`,
//!   as read by `humantime`); zero is an error, and so is a value above the
//!   field's bound (see `bounds.rs`).
//! - Secrets are never written in the file: a `password:` or `token:` field
//!   is refused. Reference a file (`*_file`) or an environment variable
//!   (`*_env`) instead; they are read when needed, so rotation needs no
//!   restart. A relative `*_file` path is relative to the policy file.
//!
//! Every field is an `Option` here so that a missing required field is
//! reported by the checks with a message saying what it should hold, and
//! all missing fields of a section are reported together.

use serde::Deserialize;

/// Top-level fields, in the order of the table above.
pub(crate) const TOP_FIELDS: &[&str] = &[
    "state_dir",
    "max_concurrent_jobs",
    "defaults",
    "clouds",
    "policies",
    "metrics_listen",
];

/// `defaults:` — what a policy uses when it does not say otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawDefaults {
    /// IANA time zone in which cron schedules are evaluated
    /// (`Europe/Berlin`). Default `UTC`.
    pub(crate) timezone: Option<String>,
    /// How long a job may take from its first API call to a terminal
    /// status before it is recorded as `timed_out` (retries included; time
    /// queued for a `max_concurrent_jobs` slot does not count). Default `6h`,
    /// at most `7d`.
    pub(crate) completion_timeout: Option<String>,
    /// Polling cadence while a snapshot or backup is still working.
    pub(crate) poll: Option<RawPoll>,
    /// Spread the start of a policy's jobs uniformly over this window
    /// (`0s`, the default, starts them at the slot). Must be shorter than
    /// the schedule's interval, and at most `1d`.
    pub(crate) jitter: Option<String>,
    /// A slot missed while the agent was down: `run_once` (default) runs
    /// the most recent one at start; `skip` records it as missed.
    pub(crate) misfire: Option<String>,
    /// Job-level retries of a backup or snapshot that ends in `error`.
    pub(crate) retries: Option<RawRetries>,
    /// Notifications for every policy without its own `notify`.
    pub(crate) notify: Option<RawNotify>,
}

/// `notify:` — tell operators about job outcomes. At least one of
/// `webhook` and `command`. A policy's `notify` replaces
/// `defaults.notify` as a whole (`on: []` silences a policy). A notifier
/// that fails or hangs is logged and recorded, never fails or delays a
/// backup.
///
/// ```yaml
/// notify:
///   webhook: https://hooks.example.com/vbs-agent   # POST, JSON body
///   command: [/usr/local/bin/page-oncall, --team, storage]
///   on: [failure, rpo_breach, success]
///   timeout: 10s
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawNotify {
    /// `http://` or `https://` URL that gets each notification as a JSON
    /// POST. Logged by host only, since such URLs often carry a token.
    pub(crate) webhook: Option<String>,
    /// Program and arguments (a list, no shell) run for each notification,
    /// with the JSON on standard input and the fields as `VBS_*`
    /// environment variables.
    pub(crate) command: Option<Vec<String>>,
    /// Which outcomes: `failure` (job `failed` or `timed_out`),
    /// `rpo_breach`, `success`. Default `[failure, rpo_breach]`.
    pub(crate) on: Option<Vec<String>>,
    /// How long one delivery may take before it is given up (the command is
    /// killed). Default `10s`, at most `10m`.
    pub(crate) timeout: Option<String>,
}

/// `retries:` — each field optional; a policy's `retries` overrides
/// `defaults.retries` field by field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawRetries {
    /// Attempts in all, 1 (no retry, the default) to 10.
    pub(crate) max_attempts: Option<u32>,
    /// Wait between a failed attempt and the next. Default `5m`, at most
    /// `1d`.
    pub(crate) delay: Option<String>,
}

/// `retention:` — a backup is kept if any rule keeps it. Buckets
/// (`keep_daily` and the like) are counted in the policy's time zone and
/// keep the newest backup of each of the most recent N buckets. Whatever the
/// rules say, the agent never deletes a backup it did not make under this
/// policy, the newest available backup of a volume, one with dependent
/// incremental backups, or one that is still busy.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawRetention {
    /// Keep the newest N available backups of each volume. Every N here
    /// is at most 100000.
    pub(crate) keep_last: Option<u32>,
    /// Keep every backup younger than this; at most `100y`.
    pub(crate) max_age: Option<String>,
    pub(crate) keep_hourly: Option<u32>,
    pub(crate) keep_daily: Option<u32>,
    pub(crate) keep_weekly: Option<u32>,
    pub(crate) keep_monthly: Option<u32>,
    pub(crate) keep_yearly: Option<u32>,
}

/// `poll:` — how often to ask whether a snapshot or backup is done. Each
/// field is optional; a policy's `poll` overrides `defaults.poll` field by
/// field.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawPoll {
    /// Wait before the first poll. Default `2s`; must not exceed `max`;
    /// at most `1d`.
    pub(crate) initial: Option<String>,
    /// Longest wait between two polls. Default `60s`, at most `1d`.
    pub(crate) max: Option<String>,
    /// Growth of the wait from one poll to the next, 1.0 to 10.0
    /// (1.0 = fixed interval). Default `1.5`.
    pub(crate) factor: Option<f64>,
}

/// `clouds.NAME:` — one project in one region, and how to reach it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawCloud {
    /// The project ID: 32 hex digits (as shown in the console under "My
    /// Credentials"), stored in lower case. This, `project_name`, or a
    /// `clouds_yaml` / `from_env` source that gives one is required.
    pub(crate) project_id: Option<String>,
    /// The project's name (`eu-de`, `eu-de_subproject`) instead of its ID:
    /// with password auth, Keystone scopes the token by name and domain and
    /// its `project.id` is used (and recorded in the history). Token and
    /// AK/SK auth need `project_id`.
    pub(crate) project_name: Option<String>,
    /// The domain name of `project_name`. Default: the user's domain
    /// (`auth.user_domain`), where OTC keeps an account's projects.
    pub(crate) project_domain: Option<String>,
    /// Service base URLs. Required with AK/SK auth, and with token auth
    /// without `auth_url`; otherwise those left out come from the Keystone
    /// service catalog.
    pub(crate) endpoints: Option<RawEndpoints>,
    /// API version for snapshots: `v2` (default; the vendor recommends it)
    /// or `v3`.
    pub(crate) snapshot_api: Option<String>,
    /// Most API requests to this cloud per second, minute or hour: `10/s`,
    /// `300/m`, `5000/h` (1 to 10000 per unit). Requests over the limit
    /// wait their turn. No limit when absent.
    pub(crate) rate_limit: Option<String>,
    /// Allow plain `http://` endpoints on non-loopback hosts. Default
    /// `false`: the auth token would travel in clear. `http://` on
    /// `localhost`, `127.0.0.0/8` and `::1` is always allowed (tests, the
    /// simulator, local proxies).
    pub(crate) allow_http: Option<bool>,
    /// Required unless `clouds_yaml` or `from_env` is given. How the agent
    /// authenticates.
    pub(crate) auth: Option<RawAuth>,
    /// Take this cloud from the entry of this name in the first
    /// `clouds.yaml` found (`$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
    /// `$XDG_CONFIG_HOME/openstack/` or `~/.config/openstack/`,
    /// `/etc/openstack/`), with the same entry of a `secure.yaml` in those
    /// places merged over it. `auth` must then be left out; other fields
    /// given here win over the entry's.
    pub(crate) clouds_yaml: Option<String>,
    /// `true`: take this cloud from the `OS_*` environment variables, as
    /// the OpenStack command-line clients do. `auth` must then be left out.
    pub(crate) from_env: Option<bool>,
    /// Region of the service-catalog endpoints to use (e.g. `eu-de`).
    pub(crate) region: Option<String>,
    /// Catalog interface: `public` (default), `internal` or `admin`.
    pub(crate) interface: Option<String>,
    /// PEM file of a private CA to trust for this cloud (in addition to the
    /// built-in roots). Relative to the policy file.
    pub(crate) cacert: Option<String>,
}

/// `clouds.NAME.endpoints:` — base URLs such as
/// `https://evs.eu-de.example.com`: scheme and host (and port), without the
/// `/v2/{project_id}` part, which the agent adds. No query, fragment or
/// credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawEndpoints {
    /// EVS / Cinder: snapshots. Discovered from the Keystone catalog
    /// (types `volumev3`, `block-storage`, `volumev2`, `volume`) when absent.
    pub(crate) volume: Option<String>,
    /// VBS / Cinder: backups. Discovered from the catalog (type `vbs`, else
    /// the volume service) when absent.
    pub(crate) backup: Option<String>,
    /// CSBS: server backups. Required by clouds that `kind: server`
    /// policies use.
    pub(crate) server_backup: Option<String>,
}

/// `clouds.NAME.auth:` — one of three shapes, chosen by `type`:
///
/// ```yaml
/// auth:                        # Keystone v3 password, scoped to project_id
///   type: password
///   auth_url: https://iam.eu-de.example.com/v3
///   user: backup-bot
///   user_domain: OTC00000000001000000000
///   password_file: /run/credentials/vbs-agent.service/password  # or password_env: VBS_PASSWORD
/// auth:                        # a pre-issued token
///   type: token
///   token_file: /run/credentials/vbs-agent.service/token        # or token_env: VBS_TOKEN
/// auth:                        # Huawei Cloud AK/SK: every request is signed
///   type: aksk
///   access_key_credential: access-key                           # or access_key_file / _env
///   secret_key_credential: secret-key                           # or secret_key_file / _env
/// ```
///
/// Each secret is given exactly one way: `*_file`, `*_env`, or
/// `*_credential` (a systemd credential name, read from
/// `$CREDENTIALS_DIRECTORY/NAME`). Fields of another type are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping")]
pub(crate) struct RawAuth {
    /// Required. `password`, `token` or `aksk`.
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// Password auth: the identity endpoint, ending in `/v3`. Token auth
    /// (optional): where to fetch the service catalog for endpoints left out.
    pub(crate) auth_url: Option<String>,
    /// Password auth: the user name.
    pub(crate) user: Option<String>,
    /// Password auth: the user's domain name (on OTC, `OTC00000000001000…`).
    pub(crate) user_domain: Option<String>,
    /// Password auth: file whose content (trailing newline trimmed) is the
    /// password, e.g. a systemd credential.
    pub(crate) password_file: Option<String>,
    /// Password auth: environment variable holding the password.
    pub(crate) password_env: Option<String>,
    /// Token auth: file holding the token.
    pub(crate) token_file: Option<String>,
    /// Token auth: environment variable holding the token.
    pub(crate) token_env: Option<String>,
    /// Password auth: name of a systemd credential holding the password,
    /// read from `$CREDENTIALS_DIRECTORY/NAME`.
    pub(crate) password_credential: Option<String>,
    /// Token auth: name of a systemd credential holding the token.
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
    /// Required, unique. 1 to 32 letters, digits, `_` or `-`, not starting
    /// with `auto` in any case (VBS reserves it). It begins the name of
    /// every backup the policy makes, which is how the agent recognises its
    /// own backups.
    pub(crate) name: Option<String>,
    /// Required. `backup` (snapshot → VBS backup → delete the snapshot),
    /// `snapshot` (snapshot only) or `server` (a CSBS backup of whole
    /// servers, listed under `servers`).
    pub(crate) kind: Option<String>,
    /// Required. The name of an entry under `clouds`.
    pub(crate) cloud: Option<String>,
    /// Required. Cron with seconds: `sec min hour day-of-month month
    /// day-of-week`, e.g. `"0 30 1 * * *"` for 01:30:00 every day. Quote it.
    pub(crate) schedule: Option<String>,
    /// IANA time zone for `schedule`. Default `defaults.timezone`.
    pub(crate) timezone: Option<String>,
    /// Required (except for kind `server`), non-empty. Volume IDs as hyphenated UUIDs
    /// (`c5834fe1-577f-462e-9bf3-1b158e1dde9c`), each listed once. Stored
    /// in lower case.
    pub(crate) volumes: Option<Vec<String>>,
    /// Snapshot volumes even while attached to a server. Default `false`.
    pub(crate) force: Option<bool>,
    /// Text sent as each backup's description: at most 64 characters, no
    /// `<` or `>` (the API refuses them).
    pub(crate) description: Option<String>,
    /// Keep the intermediate snapshot after the backup is made. Default
    /// `false` (it is deleted).
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
    /// Which of this policy's backups to keep; the rest are deleted after
    /// each successful job and by `vbs-agent prune`. No pruning when absent.
    pub(crate) retention: Option<RawRetention>,
    /// Kind `backup`: make every Nth backup of a volume a full one, starting
    /// a new incremental chain (Cinder otherwise chains every backup to the
    /// previous one, and a chain can only be pruned from its tip).
    pub(crate) full_backup_every: Option<u32>,
    /// Kind `backup`: project IDs to share each backup with once it is
    /// available (VBS backup sharing).
    pub(crate) share_to: Option<Vec<String>>,
    /// Replaces `defaults.notify` for this policy.
    pub(crate) notify: Option<RawNotify>,
    /// Recovery point objective: the oldest the newest successful backup of
    /// each target may be before `vbs-agent report` flags it (exit 3), e.g.
    /// `26h`. Default: the schedule's longest gap between two fire times
    /// plus `jitter` and `completion_timeout`. At most `366d`.
    pub(crate) rpo: Option<String>,
    /// Kind `server`, required, non-empty: server (ECS) IDs as hyphenated
    /// UUIDs, each listed once. Stored in lower case.
    pub(crate) servers: Option<Vec<String>>,
    /// Kind `server`: the CSBS provider ID (a UUID). Default
    /// `fc4d5750-22e7-4798-8a46-f48f62c4c1da`, the one CSBS provider.
    pub(crate) provider_id: Option<String>,
}
