//! The configuration: one TOML file plus `WXGRADES_<SECTION>_<KEY>` environment overrides,
//! validated once into a [`Config`] that is passed down (never a global).
//!
//! Over 600 lines because every setting's default, override and check (with its error text)
//! lives here, one place to read what a setting accepts.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::grades::{AverageAttempt, AverageRules, LevelScores, Scale, ScaleConfig};

mod notices;
pub use notices::{
    subscribe_key_ok, NoticeChannel, NoticesConfig, DEMO_ONCE_TEMPLATE_ID,
    DEMO_SUBSCRIBE_TEMPLATE_ID, SUBSCRIBE_VALUES,
};

/// A configuration problem, always naming the key (or file) at fault.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Which OAuth scope the student pages ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    UserInfo,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::UserInfo),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
        }
    }
}

/// Which message forms `/wx` accepts: `Plain` (明文), `Compatible` (兼容: plain or encrypted),
/// `Safe` (安全: encrypted only; plain bodies are refused, since their signature does not cover
/// the body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    Plain,
    Compatible,
    Safe,
}

/// Which endpoint issues the basic access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    Stable,
    Classic,
}

/// The data file's read cache when `data_cache_mb` is not set, in MiB.
pub const DEFAULT_DATA_CACHE_MB: usize = crate::store::DEFAULT_CACHE_MB;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    public_url: Option<String>,
    data: Option<String>,
    workers: Option<i64>,
    cache_mb: Option<i64>,
    data_cache_mb: Option<i64>,
    trust_proxy: Option<bool>,
    templates_dir: Option<String>,
    log_file: Option<String>,
    verify_dir: Option<String>,
    max_upload_mb: Option<i64>,
    metrics_public: Option<bool>,
    max_connections: Option<i64>,
    metrics_listen: Option<String>,
    #[serde(default)]
    wechat: RawWechat,
    #[serde(default)]
    grades: RawGrades,
    #[serde(default)]
    backup: RawBackup,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    menu: Vec<MenuButton>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    notice: Option<String>,
    contact: Option<String>,
    keep_signins_days: Option<i64>,
    keep_logs_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWechat {
    app_id: Option<String>,
    app_secret: Option<String>,
    token: Option<String>,
    encoding_aes_key: Option<String>,
    message_mode: Option<String>,
    scope: Option<String>,
    api_base: Option<String>,
    open_base: Option<String>,
    grades_template_id: Option<String>,
    grades_template_fields: Option<BTreeMap<String, String>>,
    token_api: Option<String>,
    timeout_secs: Option<i64>,
    notice_rate_per_sec: Option<i64>,
    notices: Option<String>,
    once_template_id: Option<String>,
    subscribe_template_id: Option<String>,
    subscribe_template_fields: Option<BTreeMap<String, String>>,
    mp_base: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrades {
    scale: Option<ScaleConfig>,
    average_attempt: Option<String>,
    level_scores: Option<BTreeMap<String, f64>>,
    rank: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    dir: Option<String>,
    every_hours: Option<i64>,
    keep: Option<i64>,
}

/// One button of the official account's custom menu.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MenuButton {
    pub name: String,
    /// A page of ours (a local path): a VIEW button through web authorization.
    pub page: Option<String>,
    /// A CLICK button's key.
    pub key: Option<String>,
    #[serde(default)]
    pub sub_button: Vec<MenuButton>,
}

#[derive(Debug, Clone)]
pub struct WechatConfig {
    pub app_id: String,
    pub app_secret: String,
    pub token: String,
    pub encoding_aes_key: String,
    pub message_mode: MessageMode,
    pub scope: Scope,
    pub api_base: String,
    pub open_base: String,
    pub grades_template_id: String,
    pub grades_template_fields: BTreeMap<String, String>,
    pub token_api: TokenApi,
    pub timeout_secs: u64,
    pub notice_rate_per_sec: u32,
    /// `notices`, the channels' template ids, `subscribe_template_fields`, `mp_base`.
    pub notices: NoticesConfig,
}

/// `[grades] rank`: within which group a student's place by overall GPA is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankScope {
    #[default]
    None,
    Class,
    Major,
}

impl RankScope {
    /// The config value ("none", "class", "major").
    pub fn as_str(self) -> &'static str {
        match self {
            RankScope::None => "none",
            RankScope::Class => "class",
            RankScope::Major => "major",
        }
    }
}

/// `[privacy]`: the bind page's notice on personal data, whom to ask, and how long sign-ins
/// and the log file's dated days (`log_file.YYYY-MM-DD`) are kept. Empty texts in the file mean the defaults (see `service::privacy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivacyConfig {
    pub notice: String,
    pub contact: String,
    pub keep_signins_days: u32,
    pub keep_logs_days: u32,
}

#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub dir: PathBuf,
    pub every_hours: u64,
    pub keep: usize,
}

/// The file names served from `verify_dir` (WeChat's `MP_verify_<code>.txt` and the like), as a
/// pattern for messages; [`is_verify_file_name`] is the check. One rule for the server's route
/// and `wxgrades verify-file add`.
pub const VERIFY_FILE_RULE: &str = "^[A-Za-z0-9_-]{1,64}\\.txt$";

/// Whether `name` matches `^[A-Za-z0-9_-]{1,64}\.txt$`.
pub fn is_verify_file_name(name: &str) -> bool {
    match name.strip_suffix(".txt") {
        Some(stem) => {
            (1..=64).contains(&stem.len())
                && stem
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        }
        None => false,
    }
}

/// The validated configuration of one process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    /// Without a trailing slash.
    pub public_url: String,
    pub data: PathBuf,
    pub workers: usize,
    /// Bound on the rendered-page cache, in MiB (0: no cache).
    pub cache_mb: usize,
    /// The data file's read cache (redb's), in MiB: pages of the file kept in memory.
    pub data_cache_mb: usize,
    pub trust_proxy: bool,
    pub templates_dir: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    /// WeChat's domain-check files (`MP_verify_*.txt`), served at `/<name>`; default: `verify`
    /// beside the data file (`data/verify` with the default `data`).
    pub verify_dir: PathBuf,
    pub max_upload_bytes: u64,
    pub metrics_public: bool,
    /// Open connections beyond this are refused at accept; 0: derived from the open-file limit.
    pub max_connections: usize,
    /// Where `/metrics` is served (then not on `listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub wechat: WechatConfig,
    pub scale: Scale,
    /// `[grades] average_attempt` and `level_scores`: the rules of the 加权平均分.
    pub average: AverageRules,
    /// `[grades] rank`: whether and within which group students see their place.
    pub rank: RankScope,
    pub privacy: PrivacyConfig,
    pub backup: BackupConfig,
    pub menu: Vec<MenuButton>,
    /// Demo mode: WeChat is the built-in simulator under `/_sim/`.
    pub demo: bool,
    /// Seconds an idle or stalled connection may keep a socket (not a config key; tests shorten it).
    pub idle_timeout_secs: u64,
}

impl Config {
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `(environment variable, section, key, kind)` for every key that can be overridden.
const ENV_KEYS: &[(&str, &str, &str, Kind)] = &[
    ("WXGRADES_LISTEN", "", "listen", Kind::Str),
    ("WXGRADES_PUBLIC_URL", "", "public_url", Kind::Str),
    ("WXGRADES_DATA", "", "data", Kind::Str),
    ("WXGRADES_WORKERS", "", "workers", Kind::Int),
    ("WXGRADES_CACHE_MB", "", "cache_mb", Kind::Int),
    ("WXGRADES_DATA_CACHE_MB", "", "data_cache_mb", Kind::Int),
    ("WXGRADES_TRUST_PROXY", "", "trust_proxy", Kind::Bool),
    ("WXGRADES_TEMPLATES_DIR", "", "templates_dir", Kind::Str),
    ("WXGRADES_LOG_FILE", "", "log_file", Kind::Str),
    ("WXGRADES_VERIFY_DIR", "", "verify_dir", Kind::Str),
    ("WXGRADES_MAX_UPLOAD_MB", "", "max_upload_mb", Kind::Int),
    ("WXGRADES_METRICS_PUBLIC", "", "metrics_public", Kind::Bool),
    ("WXGRADES_MAX_CONNECTIONS", "", "max_connections", Kind::Int),
    ("WXGRADES_METRICS_LISTEN", "", "metrics_listen", Kind::Str),
    ("WXGRADES_WECHAT_APP_ID", "wechat", "app_id", Kind::Str),
    (
        "WXGRADES_WECHAT_APP_SECRET",
        "wechat",
        "app_secret",
        Kind::Str,
    ),
    ("WXGRADES_WECHAT_TOKEN", "wechat", "token", Kind::Str),
    (
        "WXGRADES_WECHAT_ENCODING_AES_KEY",
        "wechat",
        "encoding_aes_key",
        Kind::Str,
    ),
    (
        "WXGRADES_WECHAT_MESSAGE_MODE",
        "wechat",
        "message_mode",
        Kind::Str,
    ),
    ("WXGRADES_WECHAT_SCOPE", "wechat", "scope", Kind::Str),
    ("WXGRADES_WECHAT_API_BASE", "wechat", "api_base", Kind::Str),
    (
        "WXGRADES_WECHAT_OPEN_BASE",
        "wechat",
        "open_base",
        Kind::Str,
    ),
    (
        "WXGRADES_WECHAT_GRADES_TEMPLATE_ID",
        "wechat",
        "grades_template_id",
        Kind::Str,
    ),
    (
        "WXGRADES_WECHAT_TOKEN_API",
        "wechat",
        "token_api",
        Kind::Str,
    ),
    (
        "WXGRADES_WECHAT_TIMEOUT_SECS",
        "wechat",
        "timeout_secs",
        Kind::Int,
    ),
    (
        "WXGRADES_WECHAT_NOTICE_RATE_PER_SEC",
        "wechat",
        "notice_rate_per_sec",
        Kind::Int,
    ),
    ("WXGRADES_WECHAT_NOTICES", "wechat", "notices", Kind::Str),
    (
        "WXGRADES_WECHAT_ONCE_TEMPLATE_ID",
        "wechat",
        "once_template_id",
        Kind::Str,
    ),
    (
        "WXGRADES_WECHAT_SUBSCRIBE_TEMPLATE_ID",
        "wechat",
        "subscribe_template_id",
        Kind::Str,
    ),
    ("WXGRADES_WECHAT_MP_BASE", "wechat", "mp_base", Kind::Str),
    ("WXGRADES_GRADES_SCALE", "grades", "scale", Kind::Str),
    ("WXGRADES_BACKUP_DIR", "backup", "dir", Kind::Str),
    (
        "WXGRADES_BACKUP_EVERY_HOURS",
        "backup",
        "every_hours",
        Kind::Int,
    ),
    ("WXGRADES_BACKUP_KEEP", "backup", "keep", Kind::Int),
];

/// Environment variables of ours that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["WXGRADES_CONFIG", "WXGRADES_SKIP_BROWSER", "WXGRADES_LOG"];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// Where the configuration comes from.
pub enum Source<'a> {
    /// A file that must exist.
    File(&'a Path),
    /// The default file, used when present.
    DefaultFile(&'a Path),
    /// Demo mode, whatever files exist.
    Demo,
}

/// Load and validate the configuration. `env` is the process environment (passed in for tests).
pub fn load(source: Source<'_>, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let (text, origin, forced_demo) = match source {
        Source::File(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, p.display().to_string(), false),
            Err(e) => return err(format!("cannot read config file {}: {e}", p.display())),
        },
        Source::DefaultFile(p) => match std::fs::read_to_string(p) {
            Ok(t) => (t, p.display().to_string(), false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), "(no config file)".to_string(), false)
            }
            Err(e) => return err(format!("cannot read config file {}: {e}", p.display())),
        },
        Source::Demo => (String::new(), "(demo)".to_string(), true),
    };
    // First the file alone, for errors that point at its line and column.
    if let Err(e) = toml::from_str::<RawConfig>(&text) {
        return err(format!("{origin}: {}", e.to_string().trim_end()));
    }
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => return err(format!("{origin}: {e}")),
    };
    apply_env(&mut table, env)?;
    let raw: RawConfig = match RawConfig::deserialize(toml::Value::Table(table)) {
        Ok(r) => r,
        Err(e) => return err(format!("{origin}: {}", e.message().trim_end())),
    };
    let has_credentials = raw.wechat.app_id.as_deref().is_some_and(|s| !s.is_empty())
        || raw
            .wechat
            .app_secret
            .as_deref()
            .is_some_and(|s| !s.is_empty());
    let demo =
        forced_demo || (text.trim().is_empty() && !has_credentials && raw.public_url.is_none());
    validate(raw, demo)
}

fn apply_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    for (name, value) in env {
        if !name.starts_with("WXGRADES_") || ENV_NOT_KEYS.contains(&name.as_str()) {
            continue;
        }
        let Some(&(_, section, key, kind)) = ENV_KEYS.iter().find(|(n, ..)| *n == name) else {
            if name.starts_with("WXGRADES_WECHAT_")
                || name.starts_with("WXGRADES_BACKUP_")
                || name.starts_with("WXGRADES_GRADES_")
            {
                return err(format!(
                    "environment variable {name} names no configuration key"
                ));
            }
            continue;
        };
        let v = match kind {
            Kind::Str => toml::Value::String(value.clone()),
            Kind::Int => match value.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => return err(format!("{name}: expected a whole number, got {value:?}")),
            },
            Kind::Bool => match value.trim() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => return err(format!("{name}: expected true or false, got {value:?}")),
            },
        };
        if section.is_empty() {
            table.insert(key.to_string(), v);
        } else {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(t) => {
                    t.insert(key.to_string(), v);
                }
                _ => return err(format!("{section}: expected a table")),
            }
        }
    }
    Ok(())
}

fn positive(key: &str, v: Option<i64>, default: i64, max: i64) -> Result<i64, ConfigError> {
    let n = v.unwrap_or(default);
    if n < 1 || n > max {
        return err(format!(
            "{key}: expected a whole number from 1 to {max}, got {n}"
        ));
    }
    Ok(n)
}

fn base_url(key: &str, v: &str) -> Result<String, ConfigError> {
    let v = v.trim().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(v.to_string()),
        _ => err(format!(
            "{key}: expected an http:// or https:// URL such as \"https://jw.example.edu.cn\", got {v:?}"
        )),
    }
}

fn validate(raw: RawConfig, demo: bool) -> Result<Config, ConfigError> {
    let listen = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".to_string());
    if listen.parse::<std::net::SocketAddr>().is_err() {
        return err(format!(
            "listen: expected an address such as \"127.0.0.1:8080\", got {listen:?}"
        ));
    }
    let public_url = match (&raw.public_url, demo) {
        (Some(u), _) => base_url("public_url", u)?,
        (None, true) => format!("http://{listen}"),
        (None, false) => {
            return err(
                "public_url: required outside demo mode (e.g. \"https://jw.example.edu.cn\")",
            )
        }
    };
    let workers = positive("workers", raw.workers, 64, 4096)? as usize;
    let cache_mb = match raw.cache_mb.unwrap_or(32) {
        n @ 0..=65_536 => n as usize,
        n => {
            return err(format!(
                "cache_mb: expected a whole number from 0 to 65536, got {n}"
            ))
        }
    };
    let data_cache_mb = match raw.data_cache_mb.unwrap_or(DEFAULT_DATA_CACHE_MB as i64) {
        n @ 0..=65_536 => n as usize,
        n => {
            return err(format!(
                "data_cache_mb: expected a whole number from 0 to 65536, got {n}"
            ))
        }
    };
    let max_upload_mb = positive("max_upload_mb", raw.max_upload_mb, 20, 1024)? as u64;
    let max_connections = match raw.max_connections.unwrap_or(0) {
        n @ 0..=1_000_000 => n as usize,
        n => {
            return err(format!(
                "max_connections: expected 0 (derived from the open-file limit) or a whole number up to 1000000, got {n}"
            ))
        }
    };
    let metrics_listen = match raw.metrics_listen.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(a) => match a.parse::<std::net::SocketAddr>() {
            Ok(addr) if Some(addr) == listen.parse().ok() => {
                return err("metrics_listen: must differ from listen")
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                return err(format!(
                    "metrics_listen: expected an address such as \"127.0.0.1:9100\", got {a:?}"
                ))
            }
        },
    };
    let w = raw.wechat;
    let scope = match w.scope.as_deref() {
        None => {
            if demo {
                Scope::UserInfo
            } else {
                Scope::Base
            }
        }
        Some(s) => match Scope::parse(s) {
            Some(sc) => sc,
            None => {
                return err(format!(
                    "wechat.scope: expected \"snsapi_base\" or \"snsapi_userinfo\", got {s:?}"
                ))
            }
        },
    };
    let token_api = match w.token_api.as_deref().unwrap_or("stable") {
        "stable" => TokenApi::Stable,
        "classic" => TokenApi::Classic,
        other => {
            return err(format!(
                "wechat.token_api: expected \"stable\" or \"classic\", got {other:?}"
            ))
        }
    };
    let sim = format!("{public_url}/_sim");
    let (app_id, app_secret, token, aes_key) = if demo {
        (
            w.app_id.unwrap_or_else(|| DEMO_APP_ID.to_string()),
            w.app_secret.unwrap_or_else(|| DEMO_APP_SECRET.to_string()),
            w.token.unwrap_or_else(|| DEMO_TOKEN.to_string()),
            w.encoding_aes_key
                .unwrap_or_else(|| DEMO_ENCODING_AES_KEY.to_string()),
        )
    } else {
        let app_id = w.app_id.unwrap_or_default();
        if !app_id.starts_with("wx")
            || app_id.len() < 10
            || !app_id.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return err("wechat.app_id: required outside demo mode: the official account's AppID, \"wx\" and 16 letters or digits");
        }
        let secret = w.app_secret.unwrap_or_default();
        if secret.trim().is_empty() {
            return err(
                "wechat.app_secret: required outside demo mode (or set WXGRADES_WECHAT_APP_SECRET)",
            );
        }
        (
            app_id,
            secret,
            w.token.unwrap_or_default(),
            w.encoding_aes_key.unwrap_or_default(),
        )
    };
    if !token.is_empty()
        && (token.len() < 3
            || token.len() > 32
            || !token.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return err(
            "wechat.token: expected 3 to 32 letters or digits, as set in 公众号 服务器配置",
        );
    }
    if !aes_key.is_empty()
        && (aes_key.len() != 43
            || !aes_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'))
    {
        return err("wechat.encoding_aes_key: expected 43 characters (letters and digits) as shown in 公众号 服务器配置, or empty");
    }
    let message_mode = match (w.message_mode.as_deref(), aes_key.is_empty()) {
        (None, true) | (Some("plain"), _) => MessageMode::Plain,
        (None, false) | (Some("safe"), false) => MessageMode::Safe,
        (Some("compatible"), false) => MessageMode::Compatible,
        (Some(m @ ("safe" | "compatible")), true) => {
            return err(format!("wechat.message_mode: {m:?} needs wechat.encoding_aes_key (the EncodingAESKey of 公众号 服务器配置)"))
        }
        (Some(other), _) => {
            return err(format!(
                "wechat.message_mode: expected \"plain\", \"compatible\" or \"safe\", got {other:?}"
            ))
        }
    };
    let api_base = match (&w.api_base, demo) {
        (Some(u), _) => base_url("wechat.api_base", u)?,
        (None, true) => sim.clone(),
        (None, false) => "https://api.weixin.qq.com".to_string(),
    };
    let open_base = match (&w.open_base, demo) {
        (Some(u), _) => base_url("wechat.open_base", u)?,
        (None, true) => sim.clone(),
        (None, false) => "https://open.weixin.qq.com".to_string(),
    };
    let notices = notices::validate(
        notices::RawNotices {
            notices: w.notices,
            once_template_id: w.once_template_id,
            subscribe_template_id: w.subscribe_template_id,
            subscribe_template_fields: w.subscribe_template_fields,
            mp_base: w.mp_base,
        },
        demo,
        &sim,
    )?;
    let timeout_secs = positive("wechat.timeout_secs", w.timeout_secs, 5, 60)? as u64;
    let notice_rate = positive(
        "wechat.notice_rate_per_sec",
        w.notice_rate_per_sec,
        20,
        1000,
    )? as u32;
    let mut fields = w.grades_template_fields.unwrap_or_default();
    if fields.is_empty() && demo {
        // The simulator shows these keys with Chinese labels, as WeChat shows a template's.
        for k in ["first", "name", "term", "courses", "remark"] {
            fields.insert(k.into(), k.into());
        }
    } else if fields.is_empty() {
        fields.insert("term".into(), "keyword1".into());
        fields.insert("courses".into(), "keyword2".into());
    }
    for k in fields.keys() {
        if ![
            "term",
            "courses",
            "first",
            "remark",
            "name",
            "student_id",
            "count",
        ]
        .contains(&k.as_str())
        {
            return err(format!("wechat.grades_template_fields: unknown value {k:?}; expected some of term, courses, name, student_id, count, first, remark"));
        }
    }
    let scale = match &raw.grades.scale {
        None => Scale::standard4(),
        Some(sc) => match Scale::from_config(sc) {
            Ok(s) => s,
            Err(e) => return err(format!("grades.scale: {e}")),
        },
    };
    let average = AverageRules {
        attempt: match raw
            .grades
            .average_attempt
            .as_deref()
            .map(AverageAttempt::parse)
        {
            None => AverageAttempt::default(),
            Some(Ok(a)) => a,
            Some(Err(e)) => return err(format!("grades.average_attempt: {e}")),
        },
        levels: match &raw.grades.level_scores {
            None => LevelScores::default(),
            Some(t) => match LevelScores::from_config(t) {
                Ok(l) => l,
                Err(e) => return err(format!("grades.level_scores: {e}")),
            },
        },
    };
    let rank = match raw
        .grades
        .rank
        .as_deref()
        .map(|r| r.trim().to_ascii_lowercase())
    {
        None => RankScope::None,
        Some(r) if r == "none" => RankScope::None,
        Some(r) if r == "class" => RankScope::Class,
        Some(r) if r == "major" => RankScope::Major,
        Some(r) => {
            return err(format!(
                "grades.rank: expected \"none\", \"class\" or \"major\", got {r:?}"
            ))
        }
    };
    let p = raw.privacy;
    let privacy = PrivacyConfig {
        notice: p.notice.unwrap_or_default().trim().to_string(),
        contact: p.contact.unwrap_or_default().trim().to_string(),
        keep_signins_days: positive("privacy.keep_signins_days", p.keep_signins_days, 180, 3650)?
            as u32,
        keep_logs_days: positive("privacy.keep_logs_days", p.keep_logs_days, 30, 3650)? as u32,
    };
    let b = raw.backup;
    let every_hours = match b.every_hours {
        Some(n) if !(0..=24 * 365).contains(&n) => {
            return err(format!(
                "backup.every_hours: expected 0 (off) to 8760, got {n}"
            ))
        }
        Some(n) => n as u64,
        None => 24,
    };
    let keep = positive("backup.keep", b.keep, 14, 10_000)? as usize;
    let data = PathBuf::from(raw.data.unwrap_or_else(|| {
        if demo {
            "data/demo.redb".to_string()
        } else {
            "data/wxgrades.redb".to_string()
        }
    }));
    let backup_dir = match b.dir {
        Some(d) => PathBuf::from(d),
        None => data
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("backups"),
    };
    check_menu(&raw.menu)?;
    let verify_dir = match raw.verify_dir.filter(|v| !v.trim().is_empty()) {
        Some(d) => PathBuf::from(d),
        None => data
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("verify"),
    };
    let empty_none = |s: Option<String>| s.filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    Ok(Config {
        listen,
        public_url,
        data,
        workers,
        cache_mb,
        data_cache_mb,
        trust_proxy: raw.trust_proxy.unwrap_or(false),
        templates_dir: empty_none(raw.templates_dir),
        log_file: empty_none(raw.log_file),
        verify_dir,
        max_upload_bytes: max_upload_mb * 1024 * 1024,
        metrics_public: raw.metrics_public.unwrap_or(false),
        max_connections,
        metrics_listen,
        wechat: WechatConfig {
            app_id,
            app_secret,
            token,
            encoding_aes_key: aes_key,
            message_mode,
            scope,
            api_base,
            open_base,
            grades_template_id: w.grades_template_id.unwrap_or_else(|| {
                if demo {
                    DEMO_TEMPLATE_ID.to_string()
                } else {
                    String::new()
                }
            }),
            grades_template_fields: fields,
            token_api,
            timeout_secs,
            notice_rate_per_sec: notice_rate,
            notices,
        },
        scale,
        average,
        rank,
        privacy,
        backup: BackupConfig {
            dir: backup_dir,
            every_hours,
            keep,
        },
        menu: if raw.menu.is_empty() {
            default_menu(demo)
        } else {
            raw.menu
        },
        demo,
        idle_timeout_secs: 20,
    })
}

fn default_menu(demo: bool) -> Vec<MenuButton> {
    let view = |name: &str, page: &str| MenuButton {
        name: name.into(),
        page: Some(page.into()),
        key: None,
        sub_button: vec![],
    };
    if !demo {
        return vec![view("查成绩", "/grades")];
    }
    // Demo mode shows both kinds of button: a page, and a key answered by the message endpoint.
    vec![
        view("查成绩", "/grades"),
        MenuButton {
            name: "最新成绩".into(),
            page: None,
            key: Some("GRADES".into()),
            sub_button: vec![],
        },
        MenuButton {
            name: "账号".into(),
            page: None,
            key: None,
            sub_button: vec![view("绑定学号", "/bind"), view("解除绑定", "/unbind")],
        },
    ]
}

/// WeChat's limits of the custom menu (公众号 自定义菜单), the one statement of them: checked
/// here when the config is read, and again by `service::menu` on the JSON it sends.
pub mod menu_limits {
    /// Top-level buttons.
    pub const MAX_TOP: usize = 3;
    /// Sub-buttons under one top button.
    pub const MAX_SUB: usize = 5;
    /// Bytes of a top button's name.
    pub const TOP_NAME_BYTES: usize = 16;
    /// Bytes of a sub-button's name.
    pub const SUB_NAME_BYTES: usize = 60;
    /// Bytes of a CLICK button's key.
    pub const KEY_BYTES: usize = 128;
    /// Bytes of a VIEW button's URL.
    pub const URL_BYTES: usize = 1024;
}

fn check_menu(menu: &[MenuButton]) -> Result<(), ConfigError> {
    use menu_limits::MAX_TOP;
    if menu.len() > MAX_TOP {
        return err(format!(
            "menu: WeChat allows at most {MAX_TOP} buttons, got {}",
            menu.len()
        ));
    }
    for (i, b) in menu.iter().enumerate() {
        check_button(&format!("menu[{i}]"), b, true)?;
    }
    Ok(())
}

fn check_button(at: &str, b: &MenuButton, top: bool) -> Result<(), ConfigError> {
    use menu_limits::{KEY_BYTES, MAX_SUB, SUB_NAME_BYTES, TOP_NAME_BYTES};
    let limit = if top { TOP_NAME_BYTES } else { SUB_NAME_BYTES };
    if b.name.trim().is_empty() || b.name.len() > limit {
        return err(format!(
            "{at}.name: expected 1 to {limit} bytes, got {:?}",
            b.name
        ));
    }
    if !b.sub_button.is_empty() {
        if !top {
            return err(format!(
                "{at}.sub_button: sub-buttons cannot have sub-buttons"
            ));
        }
        if b.sub_button.len() > MAX_SUB {
            return err(format!(
                "{at}.sub_button: WeChat allows at most {MAX_SUB}, got {}",
                b.sub_button.len()
            ));
        }
        if b.page.is_some() || b.key.is_some() {
            return err(format!(
                "{at}: a button with sub_button takes neither page nor key"
            ));
        }
        for (i, s) in b.sub_button.iter().enumerate() {
            check_button(&format!("{at}.sub_button[{i}]"), s, false)?;
        }
        return Ok(());
    }
    match (&b.page, &b.key) {
        (Some(p), None) => {
            if crate::http::next::local_path(p).as_deref() != Some(p.as_str()) {
                return err(format!(
                    "{at}.page: expected a local path such as \"/grades\", got {p:?}"
                ));
            }
        }
        (None, Some(k)) => {
            if k.is_empty() || k.len() > KEY_BYTES {
                return err(format!("{at}.key: expected 1 to {KEY_BYTES} bytes"));
            }
        }
        _ => {
            return err(format!(
                "{at}: give exactly one of page (a VIEW button) or key (a CLICK button)"
            ))
        }
    }
    Ok(())
}

pub const DEMO_APP_ID: &str = "wxd3m0a99c0ffee123";
pub const DEMO_APP_SECRET: &str = "demo-secret-not-for-production";
pub const DEMO_TOKEN: &str = "wxgradesdemo";
pub const DEMO_ENCODING_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
/// The grade-notice template of demo mode (the simulator accepts any template id).
pub const DEMO_TEMPLATE_ID: &str = "demo-grades-released";

/// The commented starter file `wxgrades init` writes.
pub const STARTER: &str = include_str!("config_starter.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        // A directory per call: tests run in parallel and texts can have the same length.
        let dir = std::env::temp_dir().join(format!(
            "wxg-cfg-{}-{}",
            std::process::id(),
            crate::secret::random_hex::<6>()
        ));
        let _ = std::fs::create_dir_all(&dir);
        let p = dir.join("c.toml");
        std::fs::write(&p, text).map_err(|e| ConfigError(e.to_string()))?;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        load(Source::File(&p), &env)
    }

    const OK: &str = "public_url = \"https://jw.example.edu.cn/\"\n[wechat]\napp_id = \"wx1234567890abcdef\"\napp_secret = \"s\"\n";

    #[test]
    fn minimal_production_config() {
        let c = load_str(OK, &[]).unwrap();
        assert!(!c.demo);
        assert_eq!(c.public_url, "https://jw.example.edu.cn");
        assert_eq!(c.wechat.api_base, "https://api.weixin.qq.com");
        assert_eq!(c.workers, 64);
        assert!(c.https());
    }

    #[test]
    fn cache_mb_defaults_to_32_and_may_be_0() {
        assert_eq!(load_str(OK, &[]).unwrap().cache_mb, 32);
        let c = load_str(&format!("cache_mb = 0\n{OK}"), &[]).unwrap();
        assert_eq!(c.cache_mb, 0);
        let e = load_str(&format!("cache_mb = -1\n{OK}"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("cache_mb:"), "{e}");
        let c = load_str(OK, &[("WXGRADES_CACHE_MB", "8")]).unwrap();
        assert_eq!(c.cache_mb, 8);
    }

    #[test]
    fn data_cache_mb_defaults_small_and_is_checked() {
        assert_eq!(
            load_str(OK, &[]).unwrap().data_cache_mb,
            DEFAULT_DATA_CACHE_MB
        );
        let c = load_str(&format!("data_cache_mb = 64\n{OK}"), &[]).unwrap();
        assert_eq!(c.data_cache_mb, 64);
        let e = load_str(&format!("data_cache_mb = -1\n{OK}"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("data_cache_mb:"), "{e}");
        let c = load_str(OK, &[("WXGRADES_DATA_CACHE_MB", "4")]).unwrap();
        assert_eq!(c.data_cache_mb, 4);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_str(&format!("{OK}colour = 1\n"), &[]).unwrap_err().0;
        assert!(e.contains("colour"), "{e}");
        let e = load_str(&format!("{OK}timeout = 1\n"), &[]).unwrap_err().0;
        assert!(e.contains("timeout"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load_str(&format!("workers = 0\n{OK}"), &[]).unwrap_err().0;
        assert!(e.starts_with("workers:"), "{e}");
        let e = load_str(&OK.replace("[wechat]", "[wechat]\nscope = \"all\""), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("wechat.scope"), "{e}");
        let e = load_str("[wechat]\napp_id = \"wx1234567890abcdef\"\n", &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("public_url"), "{e}");
    }

    #[test]
    fn message_mode_defaults_to_safe_with_a_key_and_needs_one() {
        let key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let with = |extra: &str| OK.replace("[wechat]", &format!("[wechat]\n{extra}"));
        assert_eq!(
            load_str(OK, &[]).unwrap().wechat.message_mode,
            MessageMode::Plain
        );
        let keyed = with(&format!("encoding_aes_key = \"{key}\""));
        assert_eq!(
            load_str(&keyed, &[]).unwrap().wechat.message_mode,
            MessageMode::Safe
        );
        let c = load_str(
            &with(&format!(
                "encoding_aes_key = \"{key}\"\nmessage_mode = \"compatible\""
            )),
            &[],
        );
        assert_eq!(c.unwrap().wechat.message_mode, MessageMode::Compatible);
        for m in ["safe", "compatible"] {
            let e = load_str(&with(&format!("message_mode = \"{m}\"")), &[])
                .unwrap_err()
                .0;
            assert!(
                e.starts_with("wechat.message_mode") && e.contains("encoding_aes_key"),
                "{e}"
            );
        }
        let e = load_str(&with("message_mode = \"aes\""), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("wechat.message_mode"), "{e}");
    }

    #[test]
    fn env_overrides_file() {
        let c = load_str(
            OK,
            &[
                ("WXGRADES_WECHAT_APP_SECRET", "from-env"),
                ("WXGRADES_WORKERS", "8"),
            ],
        )
        .unwrap();
        assert_eq!(c.wechat.app_secret, "from-env");
        assert_eq!(c.workers, 8);
        let e = load_str(OK, &[("WXGRADES_WORKERS", "many")]).unwrap_err().0;
        assert!(e.contains("WXGRADES_WORKERS"), "{e}");
        let e = load_str(OK, &[("WXGRADES_WECHAT_SECRET", "x")])
            .unwrap_err()
            .0;
        assert!(e.contains("WXGRADES_WECHAT_SECRET"), "{e}");
    }

    #[test]
    fn a_department_scale_from_the_config() {
        let c = load_str(
            &format!("{OK}[grades]\nscale = {{ bands = [[90, 4.0], [80, 3.0], [70, 2.0], [60, 1.0], [0, 0.0]], levels = {{ \"优秀\" = 4.0, \"良好\" = 3.5, \"中等\" = 2.5, \"及格\" = 1.5, \"不及格\" = 0.0 }} }}\n"),
            &[],
        )
        .unwrap();
        let gp = |s: &str| {
            c.scale
                .grade_point(&crate::grades::Score::parse(s).unwrap())
        };
        assert_eq!(gp("85"), Some(300));
        assert_eq!(gp("良好"), Some(350));
        let e = load_str(
            &format!("{OK}[grades]\nscale = {{ bands = [[60, 1.0], [90, 4.0]] }}\n"),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(e.starts_with("grades.scale"), "{e}");
        let e = load_str(&format!("{OK}[grades]\nscale = \"standard5\"\n"), &[])
            .unwrap_err()
            .0;
        assert!(e.contains("standard5"), "{e}");
    }

    #[test]
    fn rank_and_privacy_from_the_config() {
        let c = load_str(OK, &[]).unwrap();
        assert_eq!(c.rank, RankScope::None);
        assert_eq!(
            c.privacy,
            PrivacyConfig {
                notice: String::new(),
                contact: String::new(),
                keep_signins_days: 180,
                keep_logs_days: 30,
            }
        );
        let c = load_str(
            &format!("{OK}[grades]\nrank = \"Major\"\n[privacy]\nnotice = \" 说明 \"\ncontact = \"教务处\"\nkeep_signins_days = 30\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.rank, RankScope::Major);
        assert_eq!(c.privacy.notice, "说明");
        assert_eq!(c.privacy.contact, "教务处");
        assert_eq!(c.privacy.keep_signins_days, 30);
        let e = load_str(&format!("{OK}[grades]\nrank = \"school\"\n"), &[])
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("grades.rank") && e.contains("\"class\""),
            "{e}"
        );
        let e = load_str(&format!("{OK}[privacy]\nkeep_signins_days = 0\n"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("privacy.keep_signins_days"), "{e}");
        let e = load_str(&format!("{OK}[privacy]\nkeep = 3\n"), &[])
            .unwrap_err()
            .0;
        assert!(e.contains("keep"), "{e}");
    }

    #[test]
    fn log_retention_from_the_config() {
        assert_eq!(load_str(OK, &[]).unwrap().privacy.keep_logs_days, 30);
        for n in [1, 90, 3650] {
            let c = load_str(&format!("{OK}[privacy]\nkeep_logs_days = {n}\n"), &[]).unwrap();
            assert_eq!(c.privacy.keep_logs_days, n);
            assert_eq!(c.privacy.keep_signins_days, 180);
        }
        for bad in ["0", "-1", "3651", "\"30\"", "1.5"] {
            let e = load_str(&format!("{OK}[privacy]\nkeep_logs_days = {bad}\n"), &[])
                .unwrap_err()
                .0;
            assert!(e.contains("keep_logs_days"), "{bad}: {e}");
        }
        // The starter file sets it, with a comment.
        let starter = include_str!("config_starter.toml");
        assert!(starter.contains("\nkeep_logs_days = 30\n"), "{starter}");
    }

    #[test]
    fn average_rules_from_the_config() {
        use crate::grades::{AverageAttempt, FiveLevel};
        let c = load_str(OK, &[]).unwrap();
        assert_eq!(c.average.attempt, AverageAttempt::Best);
        assert_eq!(c.average.levels.of(FiveLevel::Medium), 7500);
        let c = load_str(
            &format!("{OK}[grades]\naverage_attempt = \"first\"\nlevel_scores = {{ \"优秀\" = 90, good = 80.5 }}\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.average.attempt, AverageAttempt::First);
        assert_eq!(c.average.levels.of(FiveLevel::Excellent), 9000);
        assert_eq!(c.average.levels.of(FiveLevel::Good), 8050);
        assert_eq!(c.average.levels.of(FiveLevel::Pass), 6500);
        let e = load_str(&format!("{OK}[grades]\naverage_attempt = \"last\"\n"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("grades.average_attempt"), "{e}");
        let e = load_str(
            &format!("{OK}[grades]\nlevel_scores = {{ excellent = 120 }}\n"),
            &[],
        )
        .unwrap_err()
        .0;
        assert!(e.starts_with("grades.level_scores"), "{e}");
    }

    #[test]
    fn starter_file_is_valid() {
        let c = load_str(STARTER, &[("WXGRADES_WECHAT_APP_SECRET", "x")]);
        assert!(c.is_ok(), "{:?}", c.err());
    }

    #[test]
    fn demo_when_nothing_is_configured() {
        let c = load(Source::Demo, &[]).unwrap();
        assert!(c.demo);
        assert_eq!(c.wechat.api_base, "http://127.0.0.1:8080/_sim");
    }

    #[test]
    fn max_connections_and_metrics_listen() {
        let c = load_str(OK, &[]).unwrap();
        assert_eq!((c.max_connections, c.metrics_listen), (0, None));
        let c = load_str(
            &format!("max_connections = 500\nmetrics_listen = \"127.0.0.1:9100\"\n{OK}"),
            &[],
        )
        .unwrap();
        assert_eq!(c.max_connections, 500);
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let e = load_str(&format!("metrics_listen = \"nowhere\"\n{OK}"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("metrics_listen:"), "{e}");
        let e = load_str(&format!("metrics_listen = \"127.0.0.1:8080\"\n{OK}"), &[])
            .unwrap_err()
            .0;
        assert!(e.contains("differ"), "{e}");
        let e = load_str(&format!("max_connections = -1\n{OK}"), &[])
            .unwrap_err()
            .0;
        assert!(e.starts_with("max_connections:"), "{e}");
        let c = load_str(OK, &[("WXGRADES_MAX_CONNECTIONS", "64")]).unwrap();
        assert_eq!(c.max_connections, 64);
    }
}
