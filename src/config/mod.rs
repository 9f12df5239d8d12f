//! Settings: where each one comes from and what values it allows.
//!
//! Precedence is flags > environment (`CM_*`) > TOML file (`--config`) > defaults (DESIGN "Ops").
//! clap reads flags and environment together (each flag names its `CM_*` variable), so a flag
//! given on the command line wins over the variable; the TOML file fills what both left unset.
//! Every value is checked here, once, at start: a bad one stops the program with exit code 2 and
//! one line naming the setting, the bad value and what is allowed.
//!
//! One concept per file: `args.rs` declares the flags and their `CM_*` variables, `file.rs` reads
//! the TOML file, `resolve.rs` applies the precedence and the defaults and checks every value
//! ([`Config::load`]); this file holds the resolved [`Config`] and what the server asks of it.

mod args;
mod file;
mod notifications;
mod resolve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use args::{CommonArgs, ServeArgs, SYSTEM_CONFIG};
pub use notifications::{NotificationSettings, WebhookFormat};
pub use resolve::{DEFAULT_BIND, DEFAULT_DATA_DIR};

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

/// `session_cgroups`: where each session's cgroup goes, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSetting {
    /// A child of the server's own cgroup in the cgroup2 hierarchy, when it is writable.
    Auto,
    /// No cgroups: a session's processes are found by session id in `/proc`.
    Off,
    /// This cgroup2 directory.
    Dir(PathBuf),
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
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub events_queue_len: usize,
    pub worker_threads: usize,
    /// Session lanes (`actors/lanes.rs`); 0: sessions run on the worker threads.
    pub session_threads: usize,
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
    /// `None` = worktrees are removed only after merge or discard.
    pub worktree_retention: Option<Duration>,
    pub execution_events_max: u64,
    pub public_url: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Lower-case `scheme://host[:port]` origins allowed besides the server's own.
    pub allowed_origins: Vec<String>,
    /// `None` = auto (see [`Config::cookie_secure_for`]).
    pub cookie_secure: Option<bool>,
    pub session_ttl: Duration,
    /// Where session cgroups are created (`src/pty/cgroup.rs`).
    pub session_cgroups: CgroupSetting,
    /// No authentication at all; only ever on a loopback bind ([`Config::check_auth_binding`]).
    pub insecure_no_auth: bool,
    /// The program agents run as their hook command and MCP server (`claude-manager hook`,
    /// `claude-manager mcp`): this binary. Not a setting; tests point it at the built binary.
    pub hook_program: PathBuf,
    /// Web Push and the webhook (src/push/).
    pub notifications: NotificationSettings,
}

impl Config {
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

    /// Refuses to go on unless the data dir already holds a database (with `need_db`) or at
    /// least exists: only `serve` and `migrate --create` may start a new, empty one. The message
    /// says how to name the server's data dir, since the usual cause is a command run without
    /// the settings the server runs with.
    pub fn require_existing(&self, need_db: bool) -> Result<(), ConfigError> {
        let (present, missing) = if need_db {
            (
                self.db_path().is_file(),
                "holds no database (claude-manager.db)",
            )
        } else {
            (self.data_dir.is_dir(), "does not exist")
        };
        if present {
            return Ok(());
        }
        Err(ConfigError::new(
            "data_dir (--data-dir, CM_DATA_DIR)",
            self.data_dir.display().to_string(),
            format!(
                "{missing}. Pass --data-dir DIR or --config FILE naming the server's data dir \
                 (an installed server reads {SYSTEM_CONFIG}), or create a new database with \
                 `claude-manager migrate --create`"
            ),
        ))
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

fn ensure_writable_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
