//! From the merged flags and environment and the TOML file to a checked [`Config`]: precedence
//! (flags > environment > file > defaults), the defaults with their reasons, and the checks that
//! turn a bad value into one line naming the setting, the value and what is allowed.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::file::{load_file, value_text};
use super::{origin_of, CgroupSetting, Config, ConfigError, ServeArgs};

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_LOG_MAX_BYTES: u64 = 10_000_000; // 10 MB, as the issue asks
const DEFAULT_LOG_BACKUPS: usize = 5;
const DEFAULT_DB_POOL_SIZE: u32 = 8; // reads in parallel on 2-4 cores with room for a slow one
const DEFAULT_DB_CHECKOUT_TIMEOUT_MS: u64 = 5_000; // fail fast, never the old 30 s hang
const DEFAULT_BODY_LIMIT_BYTES: u64 = 1024 * 1024;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10; // matches TimeoutStopSec in the systemd unit
/// Slowloris guard: a real client sends its headers in one round trip; 10 s allows bad links.
const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// A 1 MiB body (the default body limit) at 35 KB/s.
const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 30;
/// Above nginx's upstream keepalive_timeout (60 s), so a proxy always closes first and never
/// sends on a connection we are closing.
const DEFAULT_KEEP_ALIVE_TIMEOUT_SECS: u64 = 75;
/// Plenty for one owner's browsers and scripts; a flood hits this, not the open-file limit.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Browsers open ~6 connections per host; 64 leaves room for several behind one NAT.
const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
const DEFAULT_EVENTS_QUEUE_LEN: usize = 1024;
// One thread: a keystroke's round trip never wakes a second one (docs/configuration.md).
const DEFAULT_WORKER_THREADS: usize = 1;
/// Two lanes: a session that floods output and one being typed into are on different threads
/// as long as there are no more than two sessions; beyond, each lane takes its share.
const DEFAULT_SESSION_THREADS: usize = 2;
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
/// Two weeks: long enough to come back to a run after a holiday, short enough that abandoned
/// worktrees do not fill the disk.
const DEFAULT_WORKTREE_RETENTION_DAYS: u64 = 14;
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
                value: value_text(v),
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

        let log_max_bytes = parse_num(
            "log_max_bytes (CM_LOG_MAX_BYTES)",
            pick(&args.log_max_bytes, &file.log_max_bytes),
            DEFAULT_LOG_MAX_BYTES,
            1024,
            u64::MAX / 2,
        )?;
        let log_backups = parse_num(
            "log_backups (CM_LOG_BACKUPS)",
            pick(&args.log_backups, &file.log_backups),
            DEFAULT_LOG_BACKUPS,
            0,
            100,
        )?;
        let db_pool_size = parse_num(
            "db_pool_size (CM_DB_POOL_SIZE)",
            pick(&args.db_pool_size, &file.db_pool_size),
            DEFAULT_DB_POOL_SIZE,
            1,
            64,
        )?;
        let db_checkout_timeout = Duration::from_millis(parse_num(
            "db_checkout_timeout_ms (CM_DB_CHECKOUT_TIMEOUT_MS)",
            pick(&args.db_checkout_timeout_ms, &file.db_checkout_timeout_ms),
            DEFAULT_DB_CHECKOUT_TIMEOUT_MS,
            1,
            60_000,
        )?);
        let body_limit_bytes = parse_num(
            "body_limit_bytes (CM_BODY_LIMIT_BYTES)",
            pick(&args.body_limit_bytes, &file.body_limit_bytes),
            DEFAULT_BODY_LIMIT_BYTES,
            1024,
            1024 * 1024 * 1024,
        )?;
        let shutdown_grace = Duration::from_secs(parse_num(
            "shutdown_grace_secs (CM_SHUTDOWN_GRACE_SECS)",
            pick(&args.shutdown_grace_secs, &file.shutdown_grace_secs),
            DEFAULT_SHUTDOWN_GRACE_SECS,
            1,
            600,
        )?);
        let secs = |name: &str, raw, default| {
            parse_num(name, raw, default, 1, 3600).map(Duration::from_secs)
        };
        let header_read_timeout = secs(
            "header_read_timeout_secs (CM_HEADER_READ_TIMEOUT_SECS)",
            pick(
                &args.header_read_timeout_secs,
                &file.header_read_timeout_secs,
            ),
            DEFAULT_HEADER_READ_TIMEOUT_SECS,
        )?;
        let body_read_timeout = secs(
            "body_read_timeout_secs (CM_BODY_READ_TIMEOUT_SECS)",
            pick(&args.body_read_timeout_secs, &file.body_read_timeout_secs),
            DEFAULT_BODY_READ_TIMEOUT_SECS,
        )?;
        let keep_alive_timeout = secs(
            "keep_alive_timeout_secs (CM_KEEP_ALIVE_TIMEOUT_SECS)",
            pick(&args.keep_alive_timeout_secs, &file.keep_alive_timeout_secs),
            DEFAULT_KEEP_ALIVE_TIMEOUT_SECS,
        )?;
        let max_connections = parse_num(
            "max_connections (CM_MAX_CONNECTIONS)",
            pick(&args.max_connections, &file.max_connections),
            DEFAULT_MAX_CONNECTIONS,
            1,
            1_000_000,
        )?;
        let max_connections_per_client = parse_num(
            "max_connections_per_client (CM_MAX_CONNECTIONS_PER_CLIENT)",
            pick(
                &args.max_connections_per_client,
                &file.max_connections_per_client,
            ),
            DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            1,
            1_000_000,
        )?;
        let events_queue_len = parse_num(
            "events_queue_len (CM_EVENTS_QUEUE_LEN)",
            pick(&args.events_queue_len, &file.events_queue_len),
            DEFAULT_EVENTS_QUEUE_LEN,
            1,
            1_000_000,
        )?;
        let worker_threads = parse_num(
            "worker_threads (CM_WORKER_THREADS)",
            pick(&args.worker_threads, &file.worker_threads),
            DEFAULT_WORKER_THREADS,
            1,
            256,
        )?;
        let session_threads = parse_num(
            "session_threads (CM_SESSION_THREADS)",
            pick(&args.session_threads, &file.session_threads),
            DEFAULT_SESSION_THREADS,
            0,
            64,
        )?;
        let max_sessions = parse_num(
            "max_sessions (CM_MAX_SESSIONS)",
            pick(&args.max_sessions, &file.max_sessions),
            DEFAULT_MAX_SESSIONS,
            1,
            100_000,
        )?;
        let max_viewers = parse_num(
            "max_viewers (CM_MAX_VIEWERS)",
            pick(&args.max_viewers, &file.max_viewers),
            DEFAULT_MAX_VIEWERS,
            1,
            1024,
        )?;
        let scrollback_bytes = parse_num(
            "scrollback_bytes (CM_SCROLLBACK_BYTES)",
            pick(&args.scrollback_bytes, &file.scrollback_bytes),
            DEFAULT_SCROLLBACK_BYTES,
            1024,
            256 * 1024 * 1024,
        )?;
        let viewer_queue_bytes = parse_num(
            "viewer_queue_bytes (CM_VIEWER_QUEUE_BYTES)",
            pick(&args.viewer_queue_bytes, &file.viewer_queue_bytes),
            DEFAULT_VIEWER_QUEUE_BYTES,
            4096,
            64 * 1024 * 1024,
        )?;
        let max_concurrent_runs = parse_num(
            "max_concurrent_runs (CM_MAX_CONCURRENT_RUNS)",
            pick(&args.max_concurrent_runs, &file.max_concurrent_runs),
            DEFAULT_MAX_CONCURRENT_RUNS,
            1,
            1024,
        )?;
        let run_timeout = Duration::from_secs(parse_num(
            "run_timeout_secs (CM_RUN_TIMEOUT_SECS)",
            pick(&args.run_timeout_secs, &file.run_timeout_secs),
            DEFAULT_RUN_TIMEOUT_SECS,
            1,
            7 * 86_400,
        )?);
        let run_events_max = parse_num(
            "run_events_max (CM_RUN_EVENTS_MAX)",
            pick(&args.run_events_max, &file.run_events_max),
            DEFAULT_RUN_EVENTS_MAX,
            10,
            1_000_000,
        )?;
        let reap_interval = Duration::from_secs(parse_num(
            "reap_interval_secs (CM_REAP_INTERVAL_SECS)",
            pick(&args.reap_interval_secs, &file.reap_interval_secs),
            DEFAULT_REAP_INTERVAL_SECS,
            1,
            3600,
        )?);
        let idle = parse_num(
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
        let exited_retention = Duration::from_secs(parse_num(
            "exited_retention_secs (CM_EXITED_RETENTION_SECS)",
            pick(&args.exited_retention_secs, &file.exited_retention_secs),
            DEFAULT_EXITED_RETENTION_SECS,
            0,
            7 * 86_400,
        )?);
        let retention_days = parse_num(
            "worktree_retention_days (CM_WORKTREE_RETENTION_DAYS)",
            pick(&args.worktree_retention_days, &file.worktree_retention_days),
            DEFAULT_WORKTREE_RETENTION_DAYS,
            0,
            3650,
        )?;
        let worktree_retention =
            (retention_days > 0).then(|| Duration::from_secs(retention_days * 86_400));
        let execution_events_max = parse_num(
            "execution_events_max (CM_EXECUTION_EVENTS_MAX)",
            pick(&args.execution_events_max, &file.execution_events_max),
            DEFAULT_EXECUTION_EVENTS_MAX,
            1,
            100_000_000,
        )?;

        let allowed_roots = match pick(&args.allowed_roots, &file.allowed_roots) {
            None => vec![crate::pty::home_dir()],
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
        let session_ttl = Duration::from_secs(parse_num(
            "session_ttl_secs (CM_SESSION_TTL_SECS)",
            pick(&args.session_ttl_secs, &file.session_ttl_secs),
            DEFAULT_SESSION_TTL_SECS,
            60,
            366 * 86_400,
        )?);
        let session_cgroups = match pick(&args.session_cgroups, &file.session_cgroups) {
            None => CgroupSetting::Auto,
            Some(r) => match r.value.trim() {
                "auto" => CgroupSetting::Auto,
                "off" => CgroupSetting::Off,
                dir if dir.starts_with('/') => CgroupSetting::Dir(PathBuf::from(dir)),
                _ => {
                    return Err(ConfigError::new(
                        "session_cgroups (CM_SESSION_CGROUPS)",
                        r.value,
                        "one of auto, off, or the absolute path of a cgroup2 directory",
                    ))
                }
            },
        };

        // A switch: on when the flag, the variable or the file says true.
        let insecure_no_auth = args.insecure_no_auth
            || match &file.insecure_no_auth {
                None | Some(toml::Value::Boolean(false)) => false,
                Some(toml::Value::Boolean(true)) => true,
                Some(other) => {
                    return Err(ConfigError::new(
                        "insecure_no_auth (CM_INSECURE_NO_AUTH)",
                        value_text(other),
                        "expected true or false",
                    ))
                }
            };

        let notifications = super::notifications::resolve(
            pick(&args.notify_webhook_url, &file.notify_webhook_url).map(|r| r.value),
            pick(&args.notify_webhook_format, &file.notify_webhook_format).map(|r| r.value),
            pick(&args.push_contact, &file.push_contact).map(|r| r.value),
            pick(&args.push_allow_loopback, &file.push_allow_loopback).map(|r| r.value),
        )?;
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
            header_read_timeout,
            body_read_timeout,
            keep_alive_timeout,
            max_connections,
            max_connections_per_client,
            events_queue_len,
            worker_threads,
            session_threads,
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
            worktree_retention,
            execution_events_max,
            public_url,
            trusted_proxies,
            allowed_origins,
            cookie_secure,
            session_ttl,
            session_cgroups,
            insecure_no_auth,
            hook_program: std::env::current_exe().unwrap_or_else(|_| "claude-manager".into()),
            notifications,
        };
        config.check_auth_binding()?;
        Ok(config)
    }
}

/// A whole number from `min` to `max`, or `default` when no source set it.
fn parse_num<T>(name: &str, raw: Option<Raw>, default: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display + Copy,
{
    let Some(raw) = raw else { return Ok(default) };
    match raw.value.trim().parse::<T>() {
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
