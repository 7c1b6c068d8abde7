//! Configuration: a TOML file, then environment overrides, validated once at start-up.
//!
//! Every setting has a default, so `cairn serve` runs with no file at all. When no
//! account is configured, Cairn creates one on first start (account `123456789012`,
//! IAM user `admin`, a fresh access key) and keeps it in `<data_dir>/accounts.toml`.

use std::collections::HashSet;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;

/// The port Cairn listens on by default, on loopback.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9450";
pub const DEFAULT_ACCOUNT: &str = "123456789012";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting {setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// Refuses a URL setting that does not name an http:// or https:// endpoint.
pub(crate) fn check_http_url(setting: impl Into<String>, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(invalid(
            setting,
            format!("{url:?} is not an http:// or https:// URL"),
        ))
    }
}

pub(crate) fn invalid(setting: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on. Default `127.0.0.1:9450`. Env: `CAIRN_LISTEN`.
    pub listen: String,
    /// Directory for the journal, the history and generated credentials. Default
    /// `./cairn-data`. Env: `CAIRN_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Days of event history LookupEvents keeps; older days are dropped whole.
    /// Default 90. Env: `CAIRN_RETENTION_DAYS`.
    pub retention_days: u32,
    /// Largest request body accepted, in bytes; larger requests are refused before
    /// they are read. Default 8 MiB. Env: `CAIRN_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// Request bodies held in memory at once, in bytes; a request that would go past it is
    /// answered `ThrottlingException`, its body read and dropped. Default 256 MiB. Env:
    /// `CAIRN_MAX_INFLIGHT_BYTES`.
    pub max_inflight_bytes: usize,
    /// Seconds a request's body may take to arrive before it is refused and its share of
    /// `max_inflight_bytes` given back. Default 60.
    pub body_timeout_secs: u64,
    /// Region shown in the start-up banner's example commands. Default `us-east-1`.
    /// Env: `CAIRN_REGION`. Requests use the region they are signed for.
    pub region: String,
    /// Accounts with their users and access keys. Default: none, in which case an
    /// account `123456789012` with user `admin` is generated on first start.
    pub accounts: Vec<AccountConfig>,
    /// Where trail buckets live. Default: directories under `<data_dir>/buckets`.
    pub s3: Option<S3Config>,
    /// Local buckets to create at start (the local store only).
    pub buckets: Vec<String>,
    /// How trails deliver their log files.
    pub delivery: DeliveryConfig,
    /// Digest files of trails with log file validation.
    pub digests: DigestConfig,
    /// Insights detection.
    pub insights: InsightsConfig,
    /// Organizations, for organization trails.
    pub organizations: Vec<OrganizationConfig>,
    /// Webhooks receiving delivery notifications, by the trail's `SnsTopicName` (a
    /// topic name or ARN): `[notifications] "my-topic" = "http://127.0.0.1:8080/hook"`.
    pub notifications: std::collections::BTreeMap<String, String>,
    /// Where alarm notifications go by default.
    pub alerting: crate::loggroups::alarms::AlertingConfig,
    /// Threshold alarms over metric filters' metrics.
    pub alarms: Vec<crate::loggroups::alarms::AlarmConfig>,
    /// The CIS AWS Foundations monitoring pack: `[cis] enabled = true`.
    pub cis: crate::loggroups::alarms::CisConfig,
    /// `/metrics`, for Prometheus.
    pub metrics: MetricsConfig,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A file holding a token that `/metrics` then requires as `Authorization: Bearer
    /// <token>` (Prometheus: `authorization: { credentials_file: … }`). Mode 0600.
    /// Default: none, `/metrics` is open to whoever reaches the listener.
    pub bearer_token_file: Option<PathBuf>,
}

/// An S3-compatible endpoint holding every trail bucket.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The endpoint URL, e.g. `http://127.0.0.1:9000`. Env: `CAIRN_S3_ENDPOINT`.
    pub endpoint: String,
    /// The signing region. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// Address buckets as `bucket.host` instead of `host/bucket`. Default false.
    #[serde(default)]
    pub virtual_hosted_style: bool,
}

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// How often trails deliver what they received, in milliseconds: 1000 to 900000.
    /// Default 10000. Env: `CAIRN_DELIVERY_INTERVAL_MS`.
    pub interval_ms: u64,
    /// A log file is closed early, and a new one started, at this many bytes of JSON.
    /// Default 64 MiB (AWS caps compressed files at 50 MB).
    pub max_file_bytes: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            interval_ms: 10_000,
            max_file_bytes: 64 << 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    /// How long one digest file covers, in seconds. AWS uses one hour (the default);
    /// shorter periods are for tests and demonstrations. 1 to 3600.
    /// Env: `CAIRN_DIGEST_PERIOD_SECS`.
    pub period_secs: i64,
    /// A region's signing key is replaced after this many days (1 to 365; default 30,
    /// as on AWS). Keys' validity windows overlap by a thirtieth of this.
    pub key_rotation_days: u32,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            period_secs: 3600,
            key_rotation_days: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsightsConfig {
    /// Minutes an account and region are watched before their first Insight can start.
    /// Default 1440 (a day; AWS takes up to 36 hours). Shorter is for tests and
    /// demonstrations: 1 to 10080.
    pub learning_minutes: i64,
    /// A URL that receives each Insights event as EventBridge delivers it (a POST of its
    /// envelope, detail-type `AWS Insight via CloudTrail`), retried until it answers 2xx.
    pub webhook: Option<String>,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        InsightsConfig {
            learning_minutes: 1440,
            webhook: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationConfig {
    /// The organization id, `o-` and 10 to 32 lowercase letters or digits.
    pub id: String,
    pub management_account: String,
    #[serde(default)]
    pub member_accounts: Vec<String>,
}

/// The S3 endpoint's settings, with the secret resolved.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub virtual_hosted_style: bool,
}

impl std::fmt::Debug for S3Settings {
    // The secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// An organization: its management account and its members (the management account
/// included).
#[derive(Clone, Debug)]
pub struct Organization {
    pub id: String,
    pub management_account: String,
    pub accounts: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The 12-digit account id.
    pub id: String,
    /// Users of the account, each with an access key.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Other accounts whose CloudTrail records this account's users may send to the bulk
    /// endpoint (`"*"`: any). Default: none, only the account's own records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_records_for: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The IAM user name (for root keys, any label; records say `root`).
    pub name: String,
    /// Whether these are the account's root credentials. Default false.
    #[serde(default)]
    pub root: bool,
    /// The access key id, 16 to 128 characters of letters and digits.
    pub access_key_id: String,
    /// The secret access key. Give this or `secret_access_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// A file holding the secret access key; it must not be readable by others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// An IAM policy document (JSON) limiting what the user may do. Without one, a user
    /// may do everything in its account. Give this or `policy_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A file holding the policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.to_owned(),
            data_dir: PathBuf::from("cairn-data"),
            retention_days: 90,
            max_body_bytes: 8 << 20,
            max_inflight_bytes: 256 << 20,
            body_timeout_secs: 60,
            region: DEFAULT_REGION.to_owned(),
            accounts: Vec::new(),
            s3: None,
            buckets: Vec::new(),
            delivery: DeliveryConfig::default(),
            digests: DigestConfig::default(),
            insights: InsightsConfig::default(),
            organizations: Vec::new(),
            notifications: Default::default(),
            alerting: Default::default(),
            alarms: Vec::new(),
            cis: Default::default(),
            metrics: Default::default(),
        }
    }
}

/// A user's key, resolved and checked.
#[derive(Clone, Debug)]
pub struct Credential {
    pub account_id: String,
    pub user_name: String,
    pub root: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// From the account: whose records the bulk endpoint takes from this user.
    pub write_records_for: Vec<String>,
    /// What the user may do; `None`: everything in its account.
    pub policy: Option<Arc<Policy>>,
}

/// The configuration after validation: what the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub retention_days: u32,
    pub max_body_bytes: usize,
    pub max_inflight_bytes: usize,
    pub body_timeout_secs: u64,
    pub region: String,
    pub credentials: Vec<Credential>,
    /// True when the credentials were generated for the embedded default.
    pub generated_credentials: bool,
    pub s3: Option<S3Settings>,
    pub buckets: Vec<String>,
    pub delivery: DeliveryConfig,
    pub digests: DigestConfig,
    pub insights: InsightsConfig,
    pub organizations: Vec<Organization>,
    pub notifications: std::collections::BTreeMap<String, String>,
    pub alarms: Vec<crate::loggroups::alarms::AlarmRule>,
    pub cis: crate::loggroups::alarms::CisConfig,
    /// The token `/metrics` requires, if any.
    pub metrics_token: Option<String>,
}

impl Settings {
    /// The organization an account belongs to, if any.
    pub fn organization_of(&self, account: &str) -> Option<&Organization> {
        self.organizations
            .iter()
            .find(|o| o.accounts.iter().any(|a| a == account))
    }
}

impl Config {
    /// Reads a config file (or the defaults when `path` is None), then applies the
    /// `CAIRN_*` environment overrides.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => {
                let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => Config::default(),
        };
        if let Some(v) = env("CAIRN_LISTEN") {
            config.listen = v;
        }
        if let Some(v) = env("CAIRN_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(n) = env_number(&env, "CAIRN_RETENTION_DAYS", "retention_days")? {
            config.retention_days = n;
        }
        if let Some(n) = env_number(&env, "CAIRN_MAX_BODY_BYTES", "max_body_bytes")? {
            config.max_body_bytes = n;
        }
        if let Some(n) = env_number(&env, "CAIRN_MAX_INFLIGHT_BYTES", "max_inflight_bytes")? {
            config.max_inflight_bytes = n;
        }
        if let Some(v) = env("CAIRN_REGION") {
            config.region = v;
        }
        if let Some(n) = env_number(&env, "CAIRN_DIGEST_PERIOD_SECS", "digests.period_secs")? {
            config.digests.period_secs = n;
        }
        if let Some(n) = env_number(&env, "CAIRN_DELIVERY_INTERVAL_MS", "delivery.interval_ms")? {
            config.delivery.interval_ms = n;
        }
        if let Some(v) = env("CAIRN_S3_ENDPOINT") {
            match config.s3.as_mut() {
                Some(s3) => s3.endpoint = v,
                None => {
                    return Err(invalid(
                        "s3.endpoint (CAIRN_S3_ENDPOINT)",
                        "set the [s3] section (with its access key) in the config file first",
                    ))
                }
            }
        }
        Ok(config)
    }

    /// Validates every setting and resolves credentials, generating the default account
    /// in the data directory when none is configured.
    pub fn settle(self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!(
                    "{:?} is not an address:port such as {DEFAULT_LISTEN}",
                    self.listen
                ),
            )
        })?;
        if !(1..=3650).contains(&self.retention_days) {
            return Err(invalid("retention_days", "must be between 1 and 3650"));
        }
        if !(1024..=64 << 20).contains(&self.max_body_bytes) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if !(self.max_body_bytes..=1 << 40).contains(&self.max_inflight_bytes) {
            return Err(invalid(
                "max_inflight_bytes",
                format!(
                    "must be between max_body_bytes ({}), so that the largest request can be taken, and 1 TiB",
                    self.max_body_bytes
                ),
            ));
        }
        if !(1..=3600).contains(&self.body_timeout_secs) {
            return Err(invalid("body_timeout_secs", "must be between 1 and 3600"));
        }
        if !valid_region(&self.region) {
            return Err(invalid(
                "region",
                format!("{:?} is not a region name such as us-east-1", self.region),
            ));
        }
        fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::Io {
            context: format!(
                "setting data_dir: cannot create {}",
                self.data_dir.display()
            ),
            source,
        })?;

        let (accounts, generated) = if self.accounts.is_empty() {
            (default_accounts(&self.data_dir)?, true)
        } else {
            (self.accounts, false)
        };
        let credentials = resolve_credentials(&accounts)?;
        if !(1000..=900_000).contains(&self.delivery.interval_ms) {
            return Err(invalid(
                "delivery.interval_ms",
                "must be between 1000 and 900000",
            ));
        }
        if !(1024..=1 << 30).contains(&self.delivery.max_file_bytes) {
            return Err(invalid(
                "delivery.max_file_bytes",
                "must be between 1024 and 1073741824",
            ));
        }
        if !(1..=3600).contains(&self.digests.period_secs) {
            return Err(invalid(
                "digests.period_secs",
                "must be between 1 and 3600 (longer would sign with keys the AWS CLI does not look up)",
            ));
        }
        if !(1..=10_080).contains(&self.insights.learning_minutes) {
            return Err(invalid(
                "insights.learning_minutes",
                "must be between 1 and 10080",
            ));
        }
        if let Some(url) = &self.insights.webhook {
            check_http_url("insights.webhook", url)?;
        }
        if !(1..=365).contains(&self.digests.key_rotation_days) {
            return Err(invalid(
                "digests.key_rotation_days",
                "must be between 1 and 365",
            ));
        }
        for (b, bucket) in self.buckets.iter().enumerate() {
            if let Err(message) = crate::trails::names::check_bucket_name(bucket) {
                return Err(invalid(format!("buckets[{b}]"), message));
            }
        }
        let s3 = self.s3.map(resolve_s3).transpose()?;
        let organizations = resolve_organizations(&self.organizations)?;
        let alarms = crate::loggroups::alarms::resolve(&self.alerting, &self.alarms, &self.cis)?;
        let metrics_token = self
            .metrics
            .bearer_token_file
            .as_deref()
            .map(|path| {
                read_secret_file(path)
                    .and_then(|t| {
                        if t.is_empty() {
                            Err(format!("{} is empty", path.display()))
                        } else {
                            Ok(t)
                        }
                    })
                    .map_err(|m| invalid("metrics.bearer_token_file", m))
            })
            .transpose()?;
        Ok(Settings {
            listen,
            data_dir: self.data_dir,
            retention_days: self.retention_days,
            max_body_bytes: self.max_body_bytes,
            max_inflight_bytes: self.max_inflight_bytes,
            body_timeout_secs: self.body_timeout_secs,
            region: self.region,
            credentials,
            generated_credentials: generated,
            s3,
            buckets: self.buckets,
            delivery: self.delivery,
            digests: self.digests,
            insights: self.insights,
            organizations,
            notifications: self.notifications,
            alarms,
            cis: self.cis,
            metrics_token,
        })
    }
}

/// Regions are opaque names here (records imported from elsewhere may carry any): 1 to 64
/// lowercase letters, digits and hyphens, not starting or ending with a hyphen.
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && !region.starts_with('-')
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn resolve_credentials(accounts: &[AccountConfig]) -> Result<Vec<Credential>, ConfigError> {
    let mut seen_accounts = HashSet::new();
    let mut seen_keys = HashSet::new();
    let mut out = Vec::new();
    for (a, account) in accounts.iter().enumerate() {
        if account.id.len() != 12 || !account.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                format!("accounts[{a}].id"),
                format!("{:?} is not a 12-digit account id", account.id),
            ));
        }
        if !seen_accounts.insert(account.id.clone()) {
            return Err(invalid(
                format!("accounts[{a}].id"),
                format!("account {} is configured twice", account.id),
            ));
        }
        for (w, other) in account.write_records_for.iter().enumerate() {
            if other != "*" && (other.len() != 12 || !other.bytes().all(|b| b.is_ascii_digit())) {
                return Err(invalid(
                    format!("accounts[{a}].write_records_for[{w}]"),
                    format!("{other:?} is neither a 12-digit account id nor \"*\""),
                ));
            }
        }
        for (u, user) in account.users.iter().enumerate() {
            let at = |field: &str| format!("accounts[{a}].users[{u}].{field}");
            if user.name.is_empty()
                || user.name.len() > 64
                || !user
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            {
                return Err(invalid(
                    at("name"),
                    "must be 1-64 letters, digits or +=,.@_-",
                ));
            }
            let key = &user.access_key_id;
            if !(16..=128).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(
                    at("access_key_id"),
                    "must be 16-128 letters and digits",
                ));
            }
            if !seen_keys.insert(key.clone()) {
                return Err(invalid(
                    at("access_key_id"),
                    format!("access key {key} is configured twice"),
                ));
            }
            let secret = resolve_secret(
                user.secret_access_key.as_deref(),
                user.secret_access_key_file.as_deref(),
                &at(""),
            )?;
            if secret.len() < 16 {
                return Err(invalid(
                    at("secret_access_key"),
                    "must be at least 16 characters",
                ));
            }
            let policy = resolve_policy(user, &at)?;
            out.push(Credential {
                account_id: account.id.clone(),
                user_name: user.name.clone(),
                root: user.root,
                access_key_id: key.clone(),
                secret_access_key: secret,
                write_records_for: account.write_records_for.clone(),
                policy,
            });
        }
    }
    Ok(out)
}

fn resolve_s3(s3: S3Config) -> Result<S3Settings, ConfigError> {
    check_http_url("s3.endpoint", &s3.endpoint)?;
    let secret_access_key = resolve_secret(
        s3.secret_access_key.as_deref(),
        s3.secret_access_key_file.as_deref(),
        "s3.",
    )?;
    Ok(S3Settings {
        endpoint: s3.endpoint,
        region: s3.region,
        access_key_id: s3.access_key_id,
        secret_access_key,
        virtual_hosted_style: s3.virtual_hosted_style,
    })
}

fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

fn resolve_organizations(
    organizations: &[OrganizationConfig],
) -> Result<Vec<Organization>, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (o, org) in organizations.iter().enumerate() {
        let id_ok = org.id.strip_prefix("o-").is_some_and(|rest| {
            (10..=32).contains(&rest.len())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if !id_ok {
            return Err(invalid(
                format!("organizations[{o}].id"),
                format!(
                    "{:?} is not an organization id such as o-a1b2c3d4e5",
                    org.id
                ),
            ));
        }
        let mut accounts = vec![org.management_account.clone()];
        accounts.extend(org.member_accounts.iter().cloned());
        for (a, account) in accounts.iter().enumerate() {
            let setting = if a == 0 {
                format!("organizations[{o}].management_account")
            } else {
                format!("organizations[{o}].member_accounts[{}]", a - 1)
            };
            if !is_account_id(account) {
                return Err(invalid(
                    setting,
                    format!("{account:?} is not a 12-digit account id"),
                ));
            }
            // An account belongs to at most one organization.
            if !seen.insert(account.clone()) {
                return Err(invalid(
                    setting,
                    format!("account {account} is in more than one organization"),
                ));
            }
        }
        out.push(Organization {
            id: org.id.clone(),
            management_account: org.management_account.clone(),
            accounts,
        });
    }
    Ok(out)
}

/// A user's policy, given inline or in a file, parsed and checked.
fn resolve_policy(
    user: &UserConfig,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<Arc<Policy>>, ConfigError> {
    let (text, setting) = match (&user.policy, &user.policy_file) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(invalid(
                at("policy"),
                "give policy or policy_file, not both",
            ))
        }
        (Some(text), None) => (text.clone(), at("policy")),
        (None, Some(path)) => (
            fs::read_to_string(path).map_err(|e| {
                invalid(
                    at("policy_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?,
            at("policy_file"),
        ),
    };
    if user.root {
        return Err(invalid(
            setting,
            "the root user may do everything in its account; policies apply to IAM users",
        ));
    }
    Policy::parse(&text)
        .map(|policy| Some(Arc::new(policy)))
        .map_err(|e| invalid(setting, format!("the policy {e}")))
}

/// A whole-number override from the environment variable `var` for `setting`.
fn env_number<T: std::str::FromStr>(
    env: &impl Fn(&str) -> Option<String>,
    var: &str,
    setting: &str,
) -> Result<Option<T>, ConfigError> {
    env(var)
        .map(|v| {
            v.parse().map_err(|_| {
                invalid(
                    format!("{setting} ({var})"),
                    format!("{v:?} is not a whole number"),
                )
            })
        })
        .transpose()
}

/// A secret given inline or in a file (one of the two); `at` prefixes the setting names.
fn resolve_secret(
    inline: Option<&str>,
    file: Option<&Path>,
    at: &str,
) -> Result<String, ConfigError> {
    match (inline, file) {
        (Some(secret), None) => Ok(secret.to_owned()),
        (None, Some(path)) => {
            read_secret_file(path).map_err(|m| invalid(format!("{at}secret_access_key_file"), m))
        }
        (Some(_), Some(_)) => Err(invalid(
            format!("{at}secret_access_key"),
            "give secret_access_key or secret_access_key_file, not both",
        )),
        (None, None) => Err(invalid(
            format!("{at}secret_access_key"),
            "missing (or give secret_access_key_file)",
        )),
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by group or others; chmod 600 it",
            path.display()
        ));
    }
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct GeneratedAccounts {
    accounts: Vec<AccountConfig>,
}

/// The embedded default's account: loaded from `<data_dir>/accounts.toml`, created there
/// (mode 0600) on first start.
fn default_accounts(data_dir: &Path) -> Result<Vec<AccountConfig>, ConfigError> {
    let path = data_dir.join("accounts.toml");
    if path.exists() {
        let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let generated: GeneratedAccounts =
            toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.to_string(),
            })?;
        return Ok(generated.accounts);
    }
    let accounts = vec![AccountConfig {
        id: DEFAULT_ACCOUNT.to_owned(),
        write_records_for: Vec::new(),
        users: vec![UserConfig {
            name: "admin".to_owned(),
            root: false,
            access_key_id: format!(
                "AKIA{}",
                random_string(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            ),
            secret_access_key: Some(random_string(
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            )),
            secret_access_key_file: None,
            policy: None,
            policy_file: None,
        }],
    }];
    let text = format!(
        "# Generated by cairn on first start: the embedded default's account.\n# Configure accounts in a config file instead to manage them yourself.\n{}",
        toml::to_string(&GeneratedAccounts { accounts: accounts.clone() }).expect("accounts serialize")
    );
    write_private(&path, text.as_bytes()).map_err(|source| ConfigError::Io {
        context: format!("writing {}", path.display()),
        source,
    })?;
    Ok(accounts)
}

pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// Writes a file only its owner can read, replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn settle(text: &str) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cairn.toml");
        let text = text.replace("DATA", &dir.path().join("data").display().to_string());
        fs::write(&file, text).unwrap();
        Config::load(Some(&file), no_env)?.settle()
    }

    const GOOD: &str = r#"
data_dir = "DATA"
[[accounts]]
id = "111122223333"
[[accounts.users]]
name = "alice"
access_key_id = "AKIAALICE0000000001"
secret_access_key = "alice-secret-0123456789"
"#;

    #[test]
    fn a_good_file_settles() {
        let settings = settle(GOOD).unwrap();
        assert_eq!(settings.credentials.len(), 1);
        assert_eq!(settings.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(settings.retention_days, 90);
        assert!(!settings.generated_credentials);
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            (GOOD.replace("111122223333", "12345"), "accounts[0].id"),
            (
                GOOD.replace("AKIAALICE0000000001", "short"),
                "accounts[0].users[0].access_key_id",
            ),
            (format!("retention_days = 0\n{GOOD}"), "retention_days"),
            (format!("listen = \"nowhere\"\n{GOOD}"), "listen"),
            (format!("colour = \"blue\"\n{GOOD}"), "colour"),
            (
                format!("{GOOD}[insights]\nwebhook = \"ftp://x\"\n"),
                "insights.webhook",
            ),
            (
                format!("{GOOD}[insights]\nlearning_minutes = 0\n"),
                "insights.learning_minutes",
            ),
            (
                GOOD.replace("secret_access_key = \"alice-secret-0123456789\"", ""),
                "secret_access_key",
            ),
        ];
        for (text, setting) in cases {
            let message = settle(&text).unwrap_err().to_string();
            assert!(
                message.contains(setting),
                "{message:?} should name {setting}"
            );
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |name: &str| match name {
            "CAIRN_LISTEN" => Some("127.0.0.1:1234".to_owned()),
            "CAIRN_RETENTION_DAYS" => Some("7".to_owned()),
            _ => None,
        };
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.listen, "127.0.0.1:1234");
        assert_eq!(config.retention_days, 7);
        let bad = |name: &str| (name == "CAIRN_RETENTION_DAYS").then(|| "lots".to_owned());
        assert!(Config::load(None, bad)
            .unwrap_err()
            .to_string()
            .contains("retention_days"));
    }

    #[test]
    fn the_default_account_is_generated_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let first = config.clone().settle().unwrap();
        let second = config.settle().unwrap();
        assert!(first.generated_credentials);
        assert_eq!(first.credentials[0].account_id, DEFAULT_ACCOUNT);
        assert_eq!(
            first.credentials[0].access_key_id,
            second.credentials[0].access_key_id
        );
        let mode = fs::metadata(dir.path().join("accounts.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn world_readable_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, "alice-secret-0123456789").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        let text = GOOD.replace(
            "secret_access_key = \"alice-secret-0123456789\"",
            &format!("secret_access_key_file = \"{}\"", secret.display()),
        );
        assert!(settle(&text).unwrap_err().to_string().contains("chmod 600"));
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(settle(&text).is_ok());
    }
}
