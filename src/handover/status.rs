//! The status file (`server-status.json` in the data dir): which process serves this data dir,
//! its generation, and the outcome of the last reload. `claude-manager reload` reads it to find
//! the server, signals it, and waits for the reload's outcome there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::backup::DataDirLock;

/// How long `claude-manager reload` waits for the outcome (a reload waits for in-flight requests
/// and for the sessions to hand over: seconds at most).
const RELOAD_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerStatus {
    pub pid: u32,
    pub generation: u64,
    /// Reload requests seen so far (each SIGHUP counts one).
    pub reload_seq: u64,
    pub last_reload_at: Option<String>,
    pub last_reload_outcome: Option<String>,
    pub last_reload_error: Option<String>,
    pub adopted_sessions: u64,
}

pub fn status_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server-status.json")
}

/// Writes the status file atomically (a reader never sees half of it). Blocking.
pub fn write_status(data_dir: &Path, status: &ServerStatus) -> std::io::Result<()> {
    let path = status_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)
}

pub fn read_status(data_dir: &Path) -> Option<ServerStatus> {
    let bytes = std::fs::read(status_path(data_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `claude-manager reload`: asks the server that owns `data_dir` to reload and waits for the
/// outcome. `Ok(line)` when the new image serves; `Err(why)` when the reload failed (the old
/// image serves on) or no server could be asked.
pub fn reload_command(data_dir: &Path) -> Result<String, String> {
    let Some(before) = read_status(data_dir) else {
        return Err(format!(
            "no server status in {} (is a server running on this data dir?)",
            data_dir.display()
        ));
    };
    if DataDirLock::try_acquire(data_dir, "").is_ok() {
        return Err(format!(
            "no server is running on {} (its lock is free)",
            data_dir.display()
        ));
    }
    let pid = i32::try_from(before.pid).map_err(|_| "bad pid in the status file".to_string())?;
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|e| format!("cannot signal server process {pid}: {e}"))?;
    let deadline = std::time::Instant::now() + RELOAD_WAIT;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(POLL);
        let Some(now) = read_status(data_dir) else {
            continue;
        };
        if now.reload_seq <= before.reload_seq {
            continue;
        }
        return match now.last_reload_outcome.as_deref() {
            Some("ok") => Ok(format!(
                "reloaded: pid {} generation {}, {} sessions adopted",
                now.pid, now.generation, now.adopted_sessions
            )),
            _ => Err(format!(
                "reload failed; the server serves on: {}",
                now.last_reload_error.as_deref().unwrap_or("unknown error")
            )),
        };
    }
    Err(format!(
        "no reload outcome from process {pid} within {} s",
        RELOAD_WAIT.as_secs()
    ))
}
