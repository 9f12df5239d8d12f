//! The TOML config file (`--config`, `CM_CONFIG`): the same settings as the flags, lower case,
//! without the `CM_` prefix. Values are read as TOML and handed on as the text a flag would give.

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;

/// The TOML file: the same settings, lower case, no `CM_` prefix. Unknown keys are an error.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) data_dir: Option<toml::Value>,
    pub(super) bind: Option<toml::Value>,
    pub(super) log_level: Option<toml::Value>,
    pub(super) log_dir: Option<toml::Value>,
    pub(super) log_max_bytes: Option<toml::Value>,
    pub(super) log_backups: Option<toml::Value>,
    pub(super) db_pool_size: Option<toml::Value>,
    pub(super) db_checkout_timeout_ms: Option<toml::Value>,
    pub(super) body_limit_bytes: Option<toml::Value>,
    pub(super) shutdown_grace_secs: Option<toml::Value>,
    pub(super) header_read_timeout_secs: Option<toml::Value>,
    pub(super) body_read_timeout_secs: Option<toml::Value>,
    pub(super) keep_alive_timeout_secs: Option<toml::Value>,
    pub(super) max_connections: Option<toml::Value>,
    pub(super) max_connections_per_client: Option<toml::Value>,
    pub(super) events_queue_len: Option<toml::Value>,
    pub(super) worker_threads: Option<toml::Value>,
    pub(super) session_threads: Option<toml::Value>,
    pub(super) max_sessions: Option<toml::Value>,
    pub(super) max_viewers: Option<toml::Value>,
    pub(super) scrollback_bytes: Option<toml::Value>,
    pub(super) viewer_queue_bytes: Option<toml::Value>,
    pub(super) allowed_roots: Option<toml::Value>,
    pub(super) max_concurrent_runs: Option<toml::Value>,
    pub(super) run_timeout_secs: Option<toml::Value>,
    pub(super) run_events_max: Option<toml::Value>,
    pub(super) reap_interval_secs: Option<toml::Value>,
    pub(super) terminal_idle_timeout_secs: Option<toml::Value>,
    pub(super) exited_retention_secs: Option<toml::Value>,
    pub(super) worktree_retention_days: Option<toml::Value>,
    pub(super) execution_events_max: Option<toml::Value>,
    pub(super) public_url: Option<toml::Value>,
    pub(super) trusted_proxies: Option<toml::Value>,
    pub(super) allowed_origins: Option<toml::Value>,
    pub(super) cookie_secure: Option<toml::Value>,
    pub(super) session_ttl_secs: Option<toml::Value>,
    pub(super) insecure_no_auth: Option<toml::Value>,
    pub(super) session_cgroups: Option<toml::Value>,
    pub(super) notify_webhook_url: Option<toml::Value>,
    pub(super) notify_webhook_format: Option<toml::Value>,
    pub(super) push_contact: Option<toml::Value>,
    pub(super) push_allow_loopback: Option<toml::Value>,
}

/// Reads the TOML file, if one was named. Unknown keys are rejected so a typo never silently
/// falls back to a default.
pub(super) fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
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

/// A file value as the text a flag would have given: strings as they are, arrays joined with
/// commas (`allowed_roots = ["/a", "/b"]`), anything else in TOML syntax.
pub(super) fn value_text(value: &toml::Value) -> String {
    match value {
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
    }
}
