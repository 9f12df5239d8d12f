//! The flags of the subcommands that read settings, each naming its `CM_*` environment variable;
//! clap merges the two, a flag winning over its variable. Every value stays a string here so that
//! [`Config::load`](super::Config::load) checks it, whichever source it came from.

use std::path::{Path, PathBuf};

use clap::Args;

/// The config file of an installed server (`deploy/install.sh` writes it). Every subcommand
/// reads it when it exists and neither `--config` nor `CM_CONFIG` names another, so that
/// `token …`, `backup` or `migrate` run on the server find the server's data dir.
pub const SYSTEM_CONFIG: &str = "/etc/claude-manager/config.toml";

/// Command-line and environment settings shared by every subcommand that touches the data dir.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// TOML config file; its keys are the settings of `serve --help`, in lower case (e.g. `bind`,
    /// `data_dir`) [default: /etc/claude-manager/config.toml when it exists].
    #[arg(long, env = "CM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the database and logs [default: `data_dir` of the config file, else ./data].
    #[arg(long, env = "CM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
}

impl CommonArgs {
    /// These settings with [`SYSTEM_CONFIG`] as the config file when none was named and it
    /// exists. Only the command line applies it: tests and library users name their own files.
    pub fn with_system_config(mut self) -> CommonArgs {
        if self.config.is_none() && Path::new(SYSTEM_CONFIG).is_file() {
            self.config = Some(PathBuf::from(SYSTEM_CONFIG));
        }
        self
    }
}

/// Settings of `serve`. Each is a string here and parsed by [`Config::load`](super::Config::load)
/// so that every bad value gets the same one-line message, whichever source it came from.
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
    /// Seconds a new connection may take to send its first request's headers (later requests on
    /// it are bounded by the keep-alive timeout) [default: 10].
    #[arg(long, env = "CM_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<String>,
    /// Seconds a request body may take to arrive after its headers; slower gets 408 [default: 30].
    #[arg(long, env = "CM_BODY_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub body_read_timeout_secs: Option<String>,
    /// Seconds an idle keep-alive connection stays open between requests [default: 75].
    #[arg(long, env = "CM_KEEP_ALIVE_TIMEOUT_SECS", value_name = "SECS")]
    pub keep_alive_timeout_secs: Option<String>,
    /// Open HTTP connections at most (WebSockets count until upgraded); never more than half the
    /// open-file limit [default: 1024].
    #[arg(long, env = "CM_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<String>,
    /// Open HTTP connections per client address at most; trusted proxies are exempt [default: 64].
    #[arg(long, env = "CM_MAX_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub max_connections_per_client: Option<String>,
    /// Seconds a shutdown may take before what is left is killed [default: 10].
    #[arg(long, env = "CM_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// Events buffered per /api/events subscriber before it is told it lagged [default: 1024].
    #[arg(long, env = "CM_EVENTS_QUEUE_LEN", value_name = "N")]
    pub events_queue_len: Option<String>,
    /// Threads that run the sockets, sessions and API (blocking work has its own pool)
    /// [default: 1].
    #[arg(long, env = "CM_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<String>,
    /// Threads that carry the sessions' byte paths, each its own share of the sessions; 0 runs
    /// them on the worker threads [default: 2].
    #[arg(long, env = "CM_SESSION_THREADS", value_name = "N")]
    pub session_threads: Option<String>,
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
    /// The worktree of an isolated run that ended this many days ago, with nothing unmerged, is
    /// removed by the reaper; 0 = only after merge or discard [default: 14].
    #[arg(long, env = "CM_WORKTREE_RETENTION_DAYS", value_name = "DAYS")]
    pub worktree_retention_days: Option<String>,
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
    /// Where each session's cgroup (the whole process tree, killed as one) is created: auto (a
    /// child of the server's own cgroup in the cgroup2 tree), off (no cgroups: a session's
    /// processes are found by session id in /proc), or the absolute path of a cgroup2 directory
    /// the server may write [default: auto].
    #[arg(long, env = "CM_SESSION_CGROUPS", value_name = "auto|off|DIR")]
    pub session_cgroups: Option<String>,
    /// Serve without any authentication. Refused unless bound to a loopback address.
    #[arg(long, env = "CM_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Also POST every notification (agent waits, run ended) to this URL [default: none].
    #[arg(long, env = "CM_NOTIFY_WEBHOOK_URL", value_name = "URL")]
    pub notify_webhook_url: Option<String>,
    /// The webhook's format: json (a JSON object) or ntfy (ntfy's publish format) [default: json].
    #[arg(long, env = "CM_NOTIFY_WEBHOOK_FORMAT", value_name = "json|ntfy")]
    pub notify_webhook_format: Option<String>,
    /// Where push services can reach this server's owner (VAPID `sub`, mailto: or https:)
    /// [default: public_url when https, else mailto:root@localhost].
    #[arg(long, env = "CM_PUSH_CONTACT", value_name = "URI")]
    pub push_contact: Option<String>,
    /// Also accept http:// push endpoints on loopback addresses, for tests [default: 0].
    #[arg(long, env = "CM_PUSH_ALLOW_LOOPBACK", value_name = "0|1")]
    pub push_allow_loopback: Option<String>,
}
