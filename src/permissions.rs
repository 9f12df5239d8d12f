//! Private by default: the data dir holds agent env values (API keys), terminal output tails
//! and token hashes, so nobody but the server user may read it (docs/security.md "Files").
//!
//! The process runs with umask 077, so every directory and file it creates — data dir, database,
//! WAL, logs, backups — is 0700/0600 whatever umask it was started with; children get the
//! starting umask back (`pty::env`). Paths that already exist with looser modes are not changed
//! behind the operator's back: the server warns at start and detailed health lists them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use slog::{warn, Logger};

use crate::config::Config;

/// The umask the server runs with: nothing for group or others.
const PRIVATE_UMASK: libc::mode_t = 0o077;

/// Sets the private umask for this process; returns the one it was started with.
pub fn make_private_by_default() -> libc::mode_t {
    // SAFETY: umask only swaps the process's mask; it cannot fail.
    unsafe { libc::umask(PRIVATE_UMASK) }
}

/// A path of ours that group or others may read, write or enter.
#[derive(Debug, Clone, Serialize)]
pub struct LoosePath {
    pub path: String,
    /// The permission bits in octal, e.g. "0644".
    pub mode: String,
}

/// The data dir, the log dir, and the database, WAL, logs and lock inside them whose mode
/// gives group or others any access. Blocking (filesystem).
pub fn loose_paths(config: &Config) -> Vec<LoosePath> {
    let mut paths: Vec<PathBuf> = vec![config.data_dir.clone(), config.log_dir.clone()];
    paths.extend(entries_of(&config.data_dir, "claude-manager"));
    paths.extend(entries_of(&config.log_dir, ""));
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let mode = std::fs::symlink_metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| LoosePath {
                path: path.display().to_string(),
                mode: format!("{mode:04o}"),
            })
        })
        .collect()
}

/// The entries of `dir` whose names start with `prefix`: the database (and WAL, shm) and lock
/// in the data dir, every log file in the log dir.
fn entries_of(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

/// Logs one warning naming every loose path and the command that fixes it.
pub fn warn_if_loose(config: &Config, log: &Logger) {
    let loose = loose_paths(config);
    if loose.is_empty() {
        return;
    }
    let listed: Vec<String> = loose
        .iter()
        .map(|l| format!("{} ({})", l.path, l.mode))
        .collect();
    warn!(log, "data files are readable by other users; they hold agent secrets and terminal output";
          "paths" => listed.join(", "),
          "fix" => format!("chmod -R go-rwx {}", config.data_dir.display()));
}
