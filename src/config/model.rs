//! The validated configuration the rest of the agent works with. Every value
//! here has been checked and every default resolved, so consumers never
//! re-validate or fall back on their own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use url::Url;

use crate::config::secret::SecretSource;
pub use crate::kind::PolicyKind;
use crate::schedule::Schedule;

/// The whole policy file, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `history.db` lives.
    pub state_dir: PathBuf,
    /// Jobs in flight at once, over all policies.
    pub max_concurrent_jobs: usize,
    /// Named clouds, by name.
    pub clouds: BTreeMap<String, Cloud>,
    /// Policies in file order; names are unique.
    pub policies: Vec<Policy>,
    /// Where `/metrics` and `/healthz` are served (loopback only); off when `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Labels that opt a volume or server out of every selector: one
    /// matching pair is enough.
    pub opt_out: BTreeMap<String, String>,
    /// How often the daemon records a coverage snapshot; `None`: never.
    pub coverage_every: Option<Duration>,
    /// Where the history lives.
    pub history: HistoryStore,
}

/// Where the history lives.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryStore {
    /// `history.db` in `state_dir`: one agent on one host.
    Sqlite,
    /// A PostgreSQL database that the agents of an HA pair share, with the
    /// leader lease that lets exactly one of them act.
    Postgres(PostgresHistory),
}

/// `history.postgres`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresHistory {
    /// The connection URL; read when the store opens, never logged.
    pub url: SecretSource,
    /// PEM roots for a server certificate no public root signs.
    pub ca_file: Option<PathBuf>,
    /// How long a leader's lease lasts unless renewed.
    pub lease_ttl: Duration,
}

/// A lease long enough to ride out a slow renewal, short enough that a
/// dead leader's schedules resume within a minute.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

impl Config {
    /// Path of the SQLite history inside `state_dir`.
    pub fn history_path(&self) -> PathBuf {
        self.state_dir.join("history.db")
    }

    /// The policy with this name, if any.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}

/// One cloud account (a project in one region).
#[derive(Debug, Clone)]
pub struct Cloud {
    pub name: String,
    /// The project every call goes to: by ID, or by name for Keystone to
    /// resolve.
    pub project: Project,
    pub endpoints: Endpoints,
    /// API version used for snapshots; the vendor recommends v2.
    pub snapshot_api: ApiVersion,
    /// Which call restores a backup into a volume.
    pub restore_api: RestoreApi,
    /// What volume selectors are matched against.
    pub select_by: SelectBy,
    /// Which service backs up volumes: VBS or CBR.
    pub backup_service: BackupService,
    pub auth: AuthConfig,
    /// Requests to this cloud are spaced to stay within this rate.
    pub rate_limit: Option<RateLimit>,
    /// Where the cloud's settings came from (shown by `check`).
    pub origin: CloudOrigin,
    /// Catalog region (`region` / `region_name` / `OS_REGION_NAME`); `None`
    /// accepts an endpoint of any region.
    pub region: Option<String>,
    /// Catalog interface: `public` (default), `internal` or `admin`.
    pub interface: String,
    /// A PEM file of extra CA certificates trusted for this cloud, besides
    /// the built-in roots.
    pub cacert: Option<PathBuf>,
}

/// The project a cloud's calls go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Project {
    /// By ID: 32 hex digits on Huawei Cloud / OTC and Cinder, lower case.
    Id(String),
    /// By name within a domain, as OTC's own clouds.yaml examples give it
    /// (`project_name: eu-de`). Keystone scopes the password token by name
    /// and domain, and the token's `project.id` is used in every URL.
    Name { name: String, domain: Domain },
}

impl Project {
    /// The ID when it was configured; `None` until Keystone tells it.
    pub fn id(&self) -> Option<&str> {
        match self {
            Project::Id(id) => Some(id),
            Project::Name { .. } => None,
        }
    }
}

impl std::fmt::Display for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Project::Id(id) => f.write_str(id),
            Project::Name { name, domain } => write!(f, "`{name}` in {domain}"),
        }
    }
}

/// A Keystone domain, by name (on OTC the account name, `OTC000000000010000xxxxx`) or ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    Name(String),
    Id(String),
}

impl Domain {
    /// The name or ID, as given.
    pub fn value(&self) -> &str {
        match self {
            Domain::Name(v) | Domain::Id(v) => v,
        }
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Domain::Name(name) => write!(f, "domain `{name}`"),
            Domain::Id(id) => write!(f, "domain ID `{id}`"),
        }
    }
}

/// Where a cloud's settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudOrigin {
    /// Written out in the policy file.
    Inline,
    /// An entry of a `clouds.yaml` file.
    CloudsYaml { file: PathBuf, entry: String },
    /// The `OS_*` environment variables.
    Env,
}

impl std::fmt::Display for CloudOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloudOrigin::Inline => f.write_str("the policy file"),
            CloudOrigin::CloudsYaml { file, entry } => {
                write!(f, "cloud `{entry}` of {}", file.display())
            }
            CloudOrigin::Env => f.write_str("the OS_* environment variables"),
        }
    }
}

/// `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
}

impl RateLimit {
    /// The spacing between two requests.
    pub fn interval(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

/// What to do with a slot missed while the agent was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfire {
    /// Run the most recent missed slot once at start.
    RunOnce,
    /// Record it as missed.
    Skip,
}

impl Misfire {
    pub fn as_str(self) -> &'static str {
        match self {
            Misfire::RunOnce => "run_once",
            Misfire::Skip => "skip",
        }
    }
}

/// Job-level retries of a snapshot or backup that ends in `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// Wait between a failed attempt and the next.
    pub delay: Duration,
}

/// `max_concurrent_jobs` when not given.
pub const DEFAULT_MAX_CONCURRENT_JOBS: usize = 16;

/// Service base URLs, without version or project segments
/// (`https://evs.eu-de.otc.t-systems.com`). `None`: taken from the Keystone
/// service catalog (password auth only).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// EVS/Cinder: snapshots.
    pub volume: Option<Url>,
    /// VBS/Cinder: backups.
    pub backup: Option<Url>,
    /// CSBS: server backups (required by `kind: server` policies).
    pub server_backup: Option<Url>,
    /// CBR: vaults, checkpoints and their backups.
    pub cbr: Option<Url>,
    /// ECS/Nova: servers, for selecting them by tag (serves both the ECS
    /// `/v1` and the Nova `/v2.1` API).
    pub compute: Option<Url>,
}

/// `/v2` or `/v3` path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V2,
    V3,
}

impl ApiVersion {
    /// The path segment, e.g. `v2`.
    pub fn segment(self) -> &'static str {
        match self {
            ApiVersion::V2 => "v2",
            ApiVersion::V3 => "v3",
        }
    }
}

/// Which call restores a backup into an existing volume. Both need the
/// volume first: the vendor documents no restore into a new disk, so the
/// agent creates the volume itself and can find it again by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestoreApi {
    /// `POST /v3/{project}/backups/{id}/restore` (Cinder, and VBS's native
    /// OpenStack API): answered 202, then the volume is watched until it
    /// is `available` or `error_restoring`.
    #[default]
    Cinder,
    /// `POST /v2/{project}/cloudbackups/{id}/restore`: answered with a job,
    /// watched at `GET /v1/{project}/jobs/{job_id}` until `SUCCESS` or
    /// `FAIL`, then the volume until it is `available`.
    Vendor,
}

impl RestoreApi {
    /// The name in the policy file and the history.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreApi::Cinder => "cinder",
            RestoreApi::Vendor => "vendor",
        }
    }
}

/// Which service makes a cloud's volume backups. VBS (with CSBS for
/// servers) is open only to projects that used it before July 2025; newer
/// projects have CBR, its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackupService {
    /// VBS (the Cinder backup API), as before CBR existed.
    #[default]
    Vbs,
    /// CBR: checkpoints of a disk vault's volumes.
    Cbr,
    /// CBR when the service catalog offers `cbr` but no `vbs`, else VBS.
    Auto,
}

impl BackupService {
    /// The name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupService::Vbs => "vbs",
            BackupService::Cbr => "cbr",
            BackupService::Auto => "auto",
        }
    }
}

/// What a volume selector is matched against. Both live on the volume, but
/// only Cinder metadata exists on every cloud; EVS tags are what the OTC and
/// Huawei consoles show and edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelectBy {
    /// Cinder volume metadata (`GET /v3/{project}/volumes/detail?metadata=…`):
    /// OTC's Cinder and upstream Cinder.
    #[default]
    Metadata,
    /// The vendor's EVS tags (`POST /v2/{project}/os-vendor-volumes/resource_instances/action`):
    /// OTC and Huawei Cloud only.
    Tags,
}

impl SelectBy {
    /// The name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectBy::Metadata => "metadata",
            SelectBy::Tags => "tags",
        }
    }
}

/// How the agent authenticates to a cloud.
#[derive(Debug, Clone)]
pub enum AuthConfig {
    /// A pre-issued token, read from a file or environment variable at use.
    Token {
        token: SecretSource,
        /// Keystone v3 URL; when given, endpoints left out come from its
        /// service catalog (`GET /auth/catalog`).
        auth_url: Option<Url>,
    },
    /// Keystone v3 password auth scoped to the cloud's project.
    Password {
        /// Identity base URL including `/v3`, e.g. `https://iam.eu-de.otc.t-systems.com/v3`.
        auth_url: Url,
        user: String,
        /// The user's domain name (on OTC, `OTC000000000010000xxxxx`).
        user_domain: String,
        password: SecretSource,
    },
    /// Huawei Cloud access key / secret key: every request is signed
    /// (`SDK-HMAC-SHA256`); there is no token.
    AkSk {
        access_key: SecretSource,
        secret_key: SecretSource,
    },
}

impl AuthConfig {
    /// Whether this auth yields a Keystone service catalog, so endpoints
    /// may be left out: password auth, or token auth with `auth_url`.
    pub fn has_catalog(&self) -> bool {
        matches!(
            self,
            AuthConfig::Password { .. }
                | AuthConfig::Token {
                    auth_url: Some(_),
                    ..
                }
        )
    }
}

/// Polling cadence for a resource that is still working.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollSettings {
    /// First wait after the create call.
    pub initial: Duration,
    /// Upper bound for the wait between two polls.
    pub max: Duration,
    /// Growth factor per poll (≥ 1.0).
    pub factor: f64,
}

/// One policy, with defaults resolved.
#[derive(Debug, Clone)]
pub struct Policy {
    /// 1–32 characters of letters, digits, `_` and `-`; not starting with `auto`.
    pub name: String,
    /// Name of an entry in [`Config::clouds`] (checked).
    pub cloud: String,
    pub schedule: Schedule,
    pub timezone: Tz,
    /// Free text sent as the backup description (≤ 64 characters, no `<` or `>`).
    pub description: Option<String>,
    /// How long a job may take from first call to terminal status.
    pub completion_timeout: Duration,
    pub poll: PollSettings,
    /// Start each job at a random moment in `[slot, slot + jitter)`.
    pub jitter: Duration,
    pub misfire: Misfire,
    pub retries: Retries,
    /// What to keep; `None`: the policy never deletes anything.
    pub retention: Option<Retention>,
    /// Whom to tell about outcomes; `None`: nobody.
    pub notify: Option<Notify>,
    /// Recovery point objective as written; `None`: derived from the
    /// schedule (see [`crate::audit::effective_rpo`]).
    pub rpo: Option<Duration>,
    /// Targets named by their labels, besides (or instead of) the listed
    /// ones.
    pub select: Option<Selector>,
    /// What the policy makes, with the settings only that kind has.
    pub work: Work,
}

impl Policy {
    /// What the policy makes.
    pub fn kind(&self) -> PolicyKind {
        self.work.kind()
    }

    /// The targets listed by ID in the policy file: the volumes, or for
    /// kind `server` the servers. A policy with a selector has more, known
    /// only when the selector is resolved against the cloud.
    pub fn targets(&self) -> &[String] {
        self.work.targets()
    }
}

/// What a policy makes, with the settings only that kind has, so a setting
/// cannot be read for a kind it means nothing to.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Snapshot → VBS backup → snapshot cleanup, per volume.
    Backup(BackupWork),
    /// A snapshot per volume, kept on the block store.
    Snapshot(SnapshotWork),
    /// A CSBS backup per server.
    Server(ServerWork),
    /// A backup restored into a volume per source volume.
    Restore(super::drill::RestoreWork),
}

impl Work {
    /// The kind this work is of.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Work::Backup(_) => PolicyKind::Backup,
            Work::Snapshot(_) => PolicyKind::Snapshot,
            Work::Server(_) => PolicyKind::Server,
            Work::Restore(_) => PolicyKind::Restore,
        }
    }

    /// The volumes, or the servers: one job each.
    pub fn targets(&self) -> &[String] {
        match self {
            Work::Backup(w) => &w.volumes,
            Work::Snapshot(w) => &w.volumes,
            Work::Server(w) => &w.servers,
            Work::Restore(w) => &w.volumes,
        }
    }
}

/// Kind `backup`: a VBS backup of each volume, made from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupWork {
    /// Volume IDs (lower-case hyphenated UUIDs, unique within the policy).
    pub volumes: Vec<String>,
    /// Snapshot (and back up) attached volumes.
    pub force: bool,
    /// Keep the intermediate snapshot instead of deleting it after the backup.
    pub keep_snapshot: bool,
    /// Projects each available backup is shared with (lower-case IDs).
    pub share_to: Vec<String>,
    /// Every Nth backup of a volume is full; `None`: incremental whenever
    /// an earlier backup is available.
    pub full_backup_every: Option<u32>,
    /// The CBR disk vault (name or ID) the volumes are backed up in, on a
    /// cloud whose backup service is CBR.
    pub vault: Option<String>,
    /// Add the policy's volumes that are missing from the vault to it,
    /// rather than fail them.
    pub add_to_vault: bool,
}

/// Kind `snapshot`: a snapshot of each volume, kept until retention
/// removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotWork {
    /// Volume IDs (lower-case hyphenated UUIDs, unique within the policy).
    pub volumes: Vec<String>,
    /// Snapshot attached volumes.
    pub force: bool,
}

/// Kind `server`: a CSBS backup of each whole server (on a CBR cloud, a
/// backup in a server vault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerWork {
    /// Server IDs (lower-case hyphenated UUIDs, unique within the policy).
    pub servers: Vec<String>,
    /// The CSBS provider the servers are protected by.
    pub provider_id: String,
    /// The CBR server vault (name or ID), on a CBR cloud.
    pub vault: Option<String>,
    /// Add the servers missing from the vault to it, rather than fail them.
    pub add_to_vault: bool,
}

/// The one CSBS provider (`provider_id` when not given).
pub const DEFAULT_CSBS_PROVIDER: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";

/// Retention rules; a backup is kept if any rule keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: u32,
    pub max_age: Option<Duration>,
    pub keep_hourly: u32,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub keep_yearly: u32,
    /// How long the newest backup of a target that no longer exists
    /// (`target_gone`) is kept whatever the rules say; `None`: for ever.
    pub gone_keep_newest_for: Option<Duration>,
}

/// `select:` — a policy's targets named by their labels: Cinder metadata
/// or vendor tags, as the cloud's `select_by` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Every condition must hold (AND); never empty.
    pub all_of: Vec<LabelMatch>,
    /// IDs never selected, whatever their labels.
    pub exclude: Vec<String>,
}

impl std::fmt::Display for Selector {
    /// `backup=nightly,tier=*`: the rule as the history records it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, m) in self.all_of.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// One condition on a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    pub key: String,
    /// The value wanted; `None` (written `"*"`): the key with any value.
    pub value: Option<String>,
}

impl LabelMatch {
    /// Whether `labels` satisfy this condition.
    pub fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        match (&self.value, labels.get(&self.key)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(have)) => want == have,
        }
    }
}

impl std::fmt::Display for LabelMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value.as_deref().unwrap_or("*"))
    }
}

/// The label that opts a target out of selectors when `opt_out` is not
/// given: `backup: none`.
pub const DEFAULT_OPT_OUT: (&str, &str) = ("backup", "none");

/// How often the daemon records coverage when `coverage_every` is not given.
pub const DEFAULT_COVERAGE_EVERY: Duration = Duration::from_secs(3600);

/// Where and when to tell operators about outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    /// Gets each notification as a JSON POST.
    pub webhook: Option<Url>,
    /// Program and arguments run for each notification (never empty when set).
    pub command: Option<Vec<String>>,
    /// The outcomes notified.
    pub on: Vec<NotifyOn>,
    /// Longest time one delivery may take.
    pub timeout: Duration,
}

impl Notify {
    /// Whether `outcome` is notified.
    pub fn wants(&self, outcome: NotifyOn) -> bool {
        self.on.contains(&outcome)
    }
}

/// An outcome a notification can be sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyOn {
    /// A job ended `failed` or `timed_out`.
    Failure,
    /// A target's newest good backup is older than the policy's RPO.
    RpoBreach,
    /// A job succeeded.
    Success,
    /// A restore job of a drill policy ended `failed` or `timed_out` (sent
    /// instead of `failure`).
    DrillFailure,
    /// A coverage snapshot found a volume or server of the policy's cloud
    /// that no policy covers and none opted out (once per target).
    Unprotected,
}

impl NotifyOn {
    /// Every outcome, for messages.
    pub const ALL: [NotifyOn; 5] = [
        NotifyOn::Failure,
        NotifyOn::RpoBreach,
        NotifyOn::Success,
        NotifyOn::DrillFailure,
        NotifyOn::Unprotected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOn::Failure => "failure",
            NotifyOn::RpoBreach => "rpo_breach",
            NotifyOn::Success => "success",
            NotifyOn::DrillFailure => "drill_failure",
            NotifyOn::Unprotected => "unprotected",
        }
    }
}
