//! Settings: where each one comes from and what values it allows.
//!
//! Precedence is flags > environment (`CM_*`) > TOML file (`--config`) > defaults (DESIGN "Ops").
//! clap reads flags and environment together (each flag names its `CM_*` variable), so a flag
//! given on the command line wins over the variable; the TOML file fills what both left unset.
//! Every value is checked here, once, at start: a bad one stops the program with exit code 2 and
//! one line naming the setting, the bad value and what is allowed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

/// Command-line and environment settings shared by every subcommand that touches the data dir.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// TOML config file; its keys are the settings below in lower case (e.g. `bind`, `db_pool_size`).
    #[arg(long, env = "CM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the database and logs [default: ./data].
    #[arg(long, env = "CM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
}

/// Settings of `serve`. Each is a string here and parsed by [`Config::load`] so that every bad
/// value gets the same one-line message, whichever source it came from.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address and port to listen on [default: 127.0.0.1:8000].
    #[arg(long, env = "CM_BIND", value_name = "ADDR:PORT")]
    pub bind: Option<String>,
    /// Least severe log level written: trace, debug, info, warning, error [default: info].
    #[arg(long, env = "CM_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Directory for log files [default: <data-dir>/logs].
    #[arg(long, env = "CM_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<String>,
    /// Size at which a log file is rotated, in bytes [default: 10000000].
    #[arg(long, env = "CM_LOG_MAX_BYTES", value_name = "BYTES")]
    pub log_max_bytes: Option<String>,
    /// Rotated log files kept per log [default: 5].
    #[arg(long, env = "CM_LOG_BACKUPS", value_name = "N")]
    pub log_backups: Option<String>,
    /// SQLite connections in the pool, 1-64 [default: 8].
    #[arg(long, env = "CM_DB_POOL_SIZE", value_name = "N")]
    pub db_pool_size: Option<String>,
    /// How long a request waits for a DB connection before failing with 503 db_busy, in ms [default: 5000].
    #[arg(long, env = "CM_DB_CHECKOUT_TIMEOUT_MS", value_name = "MS")]
    pub db_checkout_timeout_ms: Option<String>,
    /// Largest request body accepted, in bytes; larger gets 413 [default: 1048576].
    #[arg(long, env = "CM_BODY_LIMIT_BYTES", value_name = "BYTES")]
    pub body_limit_bytes: Option<String>,
    /// Seconds a shutdown may take before what is left is killed [default: 10].
    #[arg(long, env = "CM_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// Events buffered per /api/events subscriber before it is told it lagged [default: 1024].
    #[arg(long, env = "CM_EVENTS_QUEUE_LEN", value_name = "N")]
    pub events_queue_len: Option<String>,
    /// Live terminal + agent sessions at most; more gets 429 [default: 64].
    #[arg(long, env = "CM_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<String>,
    /// WebSocket viewers per session at most; more is closed with 4429 [default: 16].
    #[arg(long, env = "CM_MAX_VIEWERS", value_name = "N")]
    pub max_viewers: Option<String>,
    /// Scrollback kept per session for replay, in bytes [default: 1048576].
    #[arg(long, env = "CM_SCROLLBACK_BYTES", value_name = "BYTES")]
    pub scrollback_bytes: Option<String>,
    /// Output queued per terminal viewer before it is switched to catching up from the
    /// scrollback (`resync`), in bytes [default: 262144].
    #[arg(long, env = "CM_VIEWER_QUEUE_BYTES", value_name = "BYTES")]
    pub viewer_queue_bytes: Option<String>,
    /// Directories sessions may start in, `:`-separated [default: the server user's home].
    #[arg(long, env = "CM_ALLOWED_ROOTS", value_name = "DIRS")]
    pub allowed_roots: Option<String>,
    /// Headless agent runs at once at most [default: 4].
    #[arg(long, env = "CM_MAX_CONCURRENT_RUNS", value_name = "N")]
    pub max_concurrent_runs: Option<String>,
    /// A headless agent run is killed after this many seconds [default: 1800 = 30 min].
    #[arg(long, env = "CM_RUN_TIMEOUT_SECS", value_name = "SECS")]
    pub run_timeout_secs: Option<String>,
    /// Parsed agent events stored per run at most; later ones are counted, not kept
    /// [default: 10000].
    #[arg(long, env = "CM_RUN_EVENTS_MAX", value_name = "N")]
    pub run_events_max: Option<String>,
    /// Seconds between reaper passes, 1-3600 [default: 60].
    #[arg(long, env = "CM_REAP_INTERVAL_SECS", value_name = "SECS")]
    pub reap_interval_secs: Option<String>,
    /// Stop terminal sessions idle this long, in seconds; 0 = never [default: 0].
    #[arg(long, env = "CM_TERMINAL_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub terminal_idle_timeout_secs: Option<String>,
    /// Exited sessions stay in memory (output readable, viewers may attach) this long, in
    /// seconds; their execution row stays for good [default: 600].
    #[arg(long, env = "CM_EXITED_RETENTION_SECS", value_name = "SECS")]
    pub exited_retention_secs: Option<String>,
    /// Parsed agent events kept per execution; the reaper prunes the oldest beyond it [default: 10000].
    #[arg(long, env = "CM_EXECUTION_EVENTS_MAX", value_name = "N")]
    pub execution_events_max: Option<String>,
    /// The URL browsers use to reach the server when behind a proxy (e.g. https://cm.example.com).
    #[arg(long, env = "CM_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Proxy addresses whose X-Forwarded-For is believed, comma-separated.
    #[arg(long, env = "CM_TRUSTED_PROXIES", value_name = "ADDRS")]
    pub trusted_proxies: Option<String>,
    /// Further origins (scheme://host[:port]) allowed to open WebSockets and send cookie-authenticated
    /// changes, comma-separated [default: none; the server's own origin is always allowed].
    #[arg(long, env = "CM_ALLOWED_ORIGINS", value_name = "ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Mark the session cookie `Secure`: auto (when public_url is https or a trusted proxy says
    /// https), true, false [default: auto].
    #[arg(long, env = "CM_COOKIE_SECURE", value_name = "auto|true|false")]
    pub cookie_secure: Option<String>,
    /// Browser sessions end after this many seconds without use [default: 604800 = 7 days].
    #[arg(long, env = "CM_SESSION_TTL_SECS", value_name = "SECS")]
    pub session_ttl_secs: Option<String>,
    /// Serve without any authentication. Refused unless bound to a loopback address.
    #[arg(long, env = "CM_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

/// The TOML file: the same settings, lower case, no `CM_` prefix. Unknown keys are an error.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<toml::Value>,
    bind: Option<toml::Value>,
    log_level: Option<toml::Value>,
    log_dir: Option<toml::Value>,
    log_max_bytes: Option<toml::Value>,
    log_backups: Option<toml::Value>,
    db_pool_size: Option<toml::Value>,
    db_checkout_timeout_ms: Option<toml::Value>,
    body_limit_bytes: Option<toml::Value>,
    shutdown_grace_secs: Option<toml::Value>,
    events_queue_len: Option<toml::Value>,
    max_sessions: Option<toml::Value>,
    max_viewers: Option<toml::Value>,
    scrollback_bytes: Option<toml::Value>,
    viewer_queue_bytes: Option<toml::Value>,
    allowed_roots: Option<toml::Value>,
    max_concurrent_runs: Option<toml::Value>,
    run_timeout_secs: Option<toml::Value>,
    run_events_max: Option<toml::Value>,
    reap_interval_secs: Option<toml::Value>,
    terminal_idle_timeout_secs: Option<toml::Value>,
    exited_retention_secs: Option<toml::Value>,
    execution_events_max: Option<toml::Value>,
    public_url: Option<toml::Value>,
    trusted_proxies: Option<toml::Value>,
    allowed_origins: Option<toml::Value>,
    cookie_secure: Option<toml::Value>,
    session_ttl_secs: Option<toml::Value>,
}

/// A setting that cannot be used. Displayed as the one line printed before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting} = {value:?}: {allowed}")]
pub struct ConfigError {
    pub setting: String,
    pub value: String,
    pub allowed: String,
}

impl ConfigError {
    fn new(setting: &str, value: impl Into<String>, allowed: impl Into<String>) -> Self {
        ConfigError {
            setting: setting.to_string(),
            value: value.into(),
            allowed: allowed.into(),
        }
    }
}

/// The validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub log_level: slog::Level,
    pub log_dir: PathBuf,
    pub log_max_bytes: u64,
    pub log_backups: usize,
    pub db_pool_size: u32,
    pub db_checkout_timeout: Duration,
    pub body_limit_bytes: u64,
    pub shutdown_grace: Duration,
    pub events_queue_len: usize,
    pub max_sessions: usize,
    pub max_viewers: usize,
    pub scrollback_bytes: usize,
    pub viewer_queue_bytes: usize,
    pub allowed_roots: Vec<PathBuf>,
    pub max_concurrent_runs: usize,
    pub run_timeout: Duration,
    pub run_events_max: usize,
    pub reap_interval: Duration,
    pub terminal_idle_timeout: Option<Duration>,
    pub exited_retention: Duration,
    pub execution_events_max: u64,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Lower-case `scheme://host[:port]` origins allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// `None` = auto (see [`Config::cookie_secure_for`]).
    pub cookie_secure: Option<bool>,
    pub session_ttl: Duration,
    /// No authentication at all; only ever on a loopback bind ([`Config::check_auth_binding`]).
    pub insecure_no_auth: bool,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_LOG_MAX_BYTES: u64 = 10_000_000; // 10 MB, as the issue asks
const DEFAULT_LOG_BACKUPS: usize = 5;
const DEFAULT_DB_POOL_SIZE: u32 = 8; // reads in parallel on 2-4 cores with room for a slow one
const DEFAULT_DB_CHECKOUT_TIMEOUT_MS: u64 = 5_000; // fail fast, never the old 30 s hang
const DEFAULT_BODY_LIMIT_BYTES: u64 = 1024 * 1024;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10; // matches TimeoutStopSec in the systemd unit
const DEFAULT_EVENTS_QUEUE_LEN: usize = 1024;
const DEFAULT_MAX_SESSIONS: usize = 64;
const DEFAULT_MAX_VIEWERS: usize = 16;
const DEFAULT_SCROLLBACK_BYTES: usize = 1024 * 1024;
// A quarter of the scrollback: a viewer this far behind catches up from the ring instead, so a
// stalled browser costs at most this much memory beyond the shared ring.
const DEFAULT_VIEWER_QUEUE_BYTES: usize = 256 * 1024;
const DEFAULT_MAX_CONCURRENT_RUNS: usize = 4;
/// Issue 4: 30 min per run (the old system killed at 180 s, too short for real work).
const DEFAULT_RUN_TIMEOUT_SECS: u64 = 1800;
/// Events of one run kept in `execution_events`; a long run emits a few hundred.
const DEFAULT_RUN_EVENTS_MAX: usize = 10_000;
const DEFAULT_REAP_INTERVAL_SECS: u64 = 60;
const DEFAULT_EXITED_RETENTION_SECS: u64 = 600; // 10 min, as the issue asks
const DEFAULT_EXECUTION_EVENTS_MAX: u64 = 10_000; // a long agent run's events, a few MB at most
const DEFAULT_SESSION_TTL_SECS: u64 = 7 * 86_400; // 7 days, as the issue asks

/// One setting's value and where it came from, before parsing.
struct Raw {
    value: String,
}

impl Config {
    /// Builds the configuration from flags/env (already merged by clap) and the TOML file.
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        let file = load_file(args.common.config.as_deref())?;
        let pick = |flag: &Option<String>, file_value: &Option<toml::Value>| -> Option<Raw> {
            if let Some(v) = flag {
                return Some(Raw { value: v.clone() });
            }
            file_value.as_ref().map(|v| Raw {
                value: match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|i| match i {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                },
            })
        };

        let data_dir = PathBuf::from(
            pick(&args.common.data_dir, &file.data_dir)
                .map(|r| r.value)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.to_string()),
        );
        let bind_raw = pick(&args.bind, &file.bind)
            .map(|r| r.value)
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        let bind: SocketAddr = bind_raw.parse().map_err(|_| {
            ConfigError::new(
                "bind (CM_BIND)",
                bind_raw.clone(),
                "expected IP:PORT with a port 0-65535, e.g. 127.0.0.1:8000",
            )
        })?;

        let log_level = match pick(&args.log_level, &file.log_level) {
            None => slog::Level::Info,
            Some(r) => parse_level(&r.value).ok_or_else(|| {
                ConfigError::new(
                    "log_level (CM_LOG_LEVEL)",
                    r.value,
                    "one of trace, debug, info, warning, error, critical",
                )
            })?,
        };
        let log_dir = pick(&args.log_dir, &file.log_dir)
            .map(|r| PathBuf::from(r.value))
            .unwrap_or_else(|| data_dir.join("logs"));

        let num = |name: &str, raw: Option<Raw>, default: u64, min: u64, max: u64| {
            parse_num(name, raw, default, min, max)
        };
        let log_max_bytes = num(
            "log_max_bytes (CM_LOG_MAX_BYTES)",
            pick(&args.log_max_bytes, &file.log_max_bytes),
            DEFAULT_LOG_MAX_BYTES,
            1024,
            u64::MAX / 2,
        )?;
        let log_backups = num(
            "log_backups (CM_LOG_BACKUPS)",
            pick(&args.log_backups, &file.log_backups),
            DEFAULT_LOG_BACKUPS as u64,
            0,
            100,
        )? as usize;
        let db_pool_size = num(
            "db_pool_size (CM_DB_POOL_SIZE)",
            pick(&args.db_pool_size, &file.db_pool_size),
            DEFAULT_DB_POOL_SIZE as u64,
            1,
            64,
        )? as u32;
        let db_checkout_timeout = Duration::from_millis(num(
            "db_checkout_timeout_ms (CM_DB_CHECKOUT_TIMEOUT_MS)",
            pick(&args.db_checkout_timeout_ms, &file.db_checkout_timeout_ms),
            DEFAULT_DB_CHECKOUT_TIMEOUT_MS,
            1,
            60_000,
        )?);
        let body_limit_bytes = num(
            "body_limit_bytes (CM_BODY_LIMIT_BYTES)",
            pick(&args.body_limit_bytes, &file.body_limit_bytes),
            DEFAULT_BODY_LIMIT_BYTES,
            1024,
            1024 * 1024 * 1024,
        )?;
        let shutdown_grace = Duration::from_secs(num(
            "shutdown_grace_secs (CM_SHUTDOWN_GRACE_SECS)",
            pick(&args.shutdown_grace_secs, &file.shutdown_grace_secs),
            DEFAULT_SHUTDOWN_GRACE_SECS,
            1,
            600,
        )?);
        let events_queue_len = num(
            "events_queue_len (CM_EVENTS_QUEUE_LEN)",
            pick(&args.events_queue_len, &file.events_queue_len),
            DEFAULT_EVENTS_QUEUE_LEN as u64,
            1,
            1_000_000,
        )? as usize;
        let max_sessions = num(
            "max_sessions (CM_MAX_SESSIONS)",
            pick(&args.max_sessions, &file.max_sessions),
            DEFAULT_MAX_SESSIONS as u64,
            1,
            100_000,
        )? as usize;
        let max_viewers = num(
            "max_viewers (CM_MAX_VIEWERS)",
            pick(&args.max_viewers, &file.max_viewers),
            DEFAULT_MAX_VIEWERS as u64,
            1,
            1024,
        )? as usize;
        let scrollback_bytes = num(
            "scrollback_bytes (CM_SCROLLBACK_BYTES)",
            pick(&args.scrollback_bytes, &file.scrollback_bytes),
            DEFAULT_SCROLLBACK_BYTES as u64,
            1024,
            256 * 1024 * 1024,
        )? as usize;
        let viewer_queue_bytes = num(
            "viewer_queue_bytes (CM_VIEWER_QUEUE_BYTES)",
            pick(&args.viewer_queue_bytes, &file.viewer_queue_bytes),
            DEFAULT_VIEWER_QUEUE_BYTES as u64,
            4096,
            64 * 1024 * 1024,
        )? as usize;
        let max_concurrent_runs = num(
            "max_concurrent_runs (CM_MAX_CONCURRENT_RUNS)",
            pick(&args.max_concurrent_runs, &file.max_concurrent_runs),
            DEFAULT_MAX_CONCURRENT_RUNS as u64,
            1,
            1024,
        )? as usize;
        let run_timeout = Duration::from_secs(num(
            "run_timeout_secs (CM_RUN_TIMEOUT_SECS)",
            pick(&args.run_timeout_secs, &file.run_timeout_secs),
            DEFAULT_RUN_TIMEOUT_SECS,
            1,
            7 * 86_400,
        )?);
        let run_events_max = num(
            "run_events_max (CM_RUN_EVENTS_MAX)",
            pick(&args.run_events_max, &file.run_events_max),
            DEFAULT_RUN_EVENTS_MAX as u64,
            10,
            1_000_000,
        )? as usize;
        let reap_interval = Duration::from_secs(num(
            "reap_interval_secs (CM_REAP_INTERVAL_SECS)",
            pick(&args.reap_interval_secs, &file.reap_interval_secs),
            DEFAULT_REAP_INTERVAL_SECS,
            1,
            3600,
        )?);
        let idle = num(
            "terminal_idle_timeout_secs (CM_TERMINAL_IDLE_TIMEOUT_SECS)",
            pick(
                &args.terminal_idle_timeout_secs,
                &file.terminal_idle_timeout_secs,
            ),
            0,
            0,
            10 * 365 * 86_400,
        )?;
        let terminal_idle_timeout = (idle > 0).then(|| Duration::from_secs(idle));
        let exited_retention = Duration::from_secs(num(
            "exited_retention_secs (CM_EXITED_RETENTION_SECS)",
            pick(&args.exited_retention_secs, &file.exited_retention_secs),
            DEFAULT_EXITED_RETENTION_SECS,
            0,
            7 * 86_400,
        )?);
        let execution_events_max = num(
            "execution_events_max (CM_EXECUTION_EVENTS_MAX)",
            pick(&args.execution_events_max, &file.execution_events_max),
            DEFAULT_EXECUTION_EVENTS_MAX,
            1,
            100_000_000,
        )?;

        let allowed_roots = match pick(&args.allowed_roots, &file.allowed_roots) {
            None => vec![home_dir()],
            Some(r) => parse_roots(&r.value)?,
        };
        let public_url = match pick(&args.public_url, &file.public_url) {
            None => None,
            Some(r) => {
                let v = r.value.trim_end_matches('/').to_string();
                if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() < 10 {
                    return Err(ConfigError::new(
                        "public_url (CM_PUBLIC_URL)",
                        r.value,
                        "expected an http:// or https:// URL, e.g. https://cm.example.com",
                    ));
                }
                Some(v)
            }
        };
        let trusted_proxies = match pick(&args.trusted_proxies, &file.trusted_proxies) {
            None => Vec::new(),
            Some(r) => r
                .value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().map_err(|_| {
                        ConfigError::new(
                            "trusted_proxies (CM_TRUSTED_PROXIES)",
                            s,
                            "expected comma-separated IP addresses, e.g. 127.0.0.1,::1",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let allowed_origins = match pick(&args.allowed_origins, &file.allowed_origins) {
            None => Vec::new(),
            Some(r) => r
                .value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    origin_of(s).filter(|o| o == &s.trim_end_matches('/').to_ascii_lowercase())
                        .ok_or_else(|| {
                            ConfigError::new(
                                "allowed_origins (CM_ALLOWED_ORIGINS)",
                                s,
                                "expected comma-separated origins like https://cm.example.com or http://localhost:3000 (no path)",
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let cookie_secure = match pick(&args.cookie_secure, &file.cookie_secure) {
            None => None,
            Some(r) => match r.value.trim().to_ascii_lowercase().as_str() {
                "auto" => None,
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => {
                    return Err(ConfigError::new(
                        "cookie_secure (CM_COOKIE_SECURE)",
                        r.value,
                        "one of auto, true, false",
                    ))
                }
            },
        };
        let session_ttl = Duration::from_secs(num(
            "session_ttl_secs (CM_SESSION_TTL_SECS)",
            pick(&args.session_ttl_secs, &file.session_ttl_secs),
            DEFAULT_SESSION_TTL_SECS,
            60,
            366 * 86_400,
        )?);

        let config = Config {
            bind,
            data_dir,
            log_level,
            log_dir,
            log_max_bytes,
            log_backups,
            db_pool_size,
            db_checkout_timeout,
            body_limit_bytes,
            shutdown_grace,
            events_queue_len,
            max_sessions,
            max_viewers,
            scrollback_bytes,
            viewer_queue_bytes,
            allowed_roots,
            max_concurrent_runs,
            run_timeout,
            run_events_max,
            reap_interval,
            terminal_idle_timeout,
            exited_retention,
            execution_events_max,
            public_url,
            trusted_proxies,
            allowed_origins,
            cookie_secure,
            session_ttl,
            insecure_no_auth: args.insecure_no_auth,
        };
        config.check_auth_binding()?;
        Ok(config)
    }

    /// Auth may be off only where nobody else can connect: a loopback bind.
    pub fn check_auth_binding(&self) -> Result<(), ConfigError> {
        if self.insecure_no_auth && !self.bind.ip().is_loopback() {
            return Err(ConfigError::new(
                "insecure_no_auth (--insecure-no-auth, CM_INSECURE_NO_AUTH)",
                format!("true with bind {}", self.bind),
                "auth may be disabled only on a loopback address. Remove --insecure-no-auth to enable \
                 token auth (the first start prints an admin token; `claude-manager token create` makes more), \
                 or bind 127.0.0.1",
            ));
        }
        Ok(())
    }

    /// The origin browsers see, from `public_url` (e.g. `https://cm.example.com`).
    pub fn public_origin(&self) -> Option<String> {
        self.public_url.as_deref().and_then(origin_of)
    }

    /// Whether the session cookie gets `Secure`; `request_https` is what a trusted proxy said.
    pub fn cookie_secure_for(&self, request_https: bool) -> bool {
        self.cookie_secure.unwrap_or_else(|| {
            request_https
                || self
                    .public_url
                    .as_deref()
                    .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
        })
    }

    /// Settings for a server in tests or benches: everything default but the paths and the port.
    pub fn for_data_dir(data_dir: &Path) -> Config {
        let args = ServeArgs {
            common: CommonArgs {
                config: None,
                data_dir: Some(data_dir.display().to_string()),
            },
            bind: Some("127.0.0.1:0".into()),
            ..ServeArgs::default()
        };
        // Defaults are valid by construction; this cannot fail for a plain path.
        match Config::load(&args) {
            Ok(c) => c,
            Err(e) => panic!("default config rejected: {e}"),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("claude-manager.db")
    }

    /// Creates the data and log directories and proves they are writable, so a bad path is a
    /// clear exit-2 message at start rather than an error on the first write.
    pub fn prepare_dirs(&self) -> Result<(), ConfigError> {
        for (setting, dir) in [
            ("data_dir (CM_DATA_DIR)", &self.data_dir),
            ("log_dir (CM_LOG_DIR)", &self.log_dir),
        ] {
            ensure_writable_dir(dir).map_err(|why| {
                ConfigError::new(
                    setting,
                    dir.display().to_string(),
                    format!("must be a writable directory ({why})"),
                )
            })?;
        }
        Ok(())
    }
}

/// Reads the TOML file, if one was named. Unknown keys are rejected so a typo never silently
/// falls back to a default.
fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "config (CM_CONFIG)",
            path.display().to_string(),
            format!("must be a readable TOML file ({e})"),
        )
    })?;
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        let why = e.message().replace('\n', " ");
        let key = e
            .message()
            .split('`')
            .nth(1)
            .map(str::to_string)
            .unwrap_or_default();
        ConfigError::new(
            &format!("config file {}", path.display()),
            key,
            format!("{why} (keys are the settings of `serve --help`, lower case, without CM_)"),
        )
    })
}

/// `scheme://authority` of an http(s) URL, lower case; `None` if it is not one.
pub fn origin_of(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

fn parse_num(
    name: &str,
    raw: Option<Raw>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.value.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ConfigError::new(
            name,
            raw.value,
            format!("expected a whole number from {min} to {max}"),
        )),
    }
}

fn parse_level(s: &str) -> Option<slog::Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(slog::Level::Trace),
        "debug" => Some(slog::Level::Debug),
        "info" => Some(slog::Level::Info),
        "warn" | "warning" => Some(slog::Level::Warning),
        "error" => Some(slog::Level::Error),
        "critical" | "crit" => Some(slog::Level::Critical),
        _ => None,
    }
}

fn parse_roots(s: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let mut roots = Vec::new();
    for part in s.split([':', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let path = Path::new(part);
        let canonical = std::fs::canonicalize(path)
            .ok()
            .filter(|p| p.is_dir())
            .ok_or_else(|| {
                ConfigError::new(
                    "allowed_roots (CM_ALLOWED_ROOTS)",
                    part,
                    "every entry must be an existing directory (entries separated by ':')",
                )
            })?;
        roots.push(canonical);
    }
    if roots.is_empty() {
        return Err(ConfigError::new(
            "allowed_roots (CM_ALLOWED_ROOTS)",
            s,
            "expected at least one existing directory",
        ));
    }
    Ok(roots)
}

/// The server user's home directory (passwd entry first: $HOME can be unset under systemd).
pub fn home_dir() -> PathBuf {
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::getuid()) {
        if user.dir.is_dir() {
            return user.dir;
        }
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn ensure_writable_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
