//! Reload = exec-in-place (DESIGN "Sessions outlive the server process").
//!
//! ```text
//! SIGHUP / `claude-manager reload`
//!   └─ preflight: the binary at the path we were started from exists and is executable
//!        (else: the old image serves on, the failure is logged, announced and written to the
//!        status file that `claude-manager reload` reads)
//!   └─ RELOADING=1; WebSockets close with 1012; the accept loop stops (the listening socket
//!      stays open: new connections wait in its backlog, none is refused)
//!   └─ every live session hands over its PTY master, ring (bytes + absolute offsets) and child
//!      (which stays our child: same PID); every running headless run its pipes, parser
//!      position and child (`runs.rs`); the rest stops as a shutdown would
//!   └─ one versioned record (memfd, its fd in CM_HANDOVER_FD) + the fds it names; execve
//! new image: reads the record, takes the listening socket, adopts every session (pidfd),
//!   serves, writes the status file, READY=1.
//! ```
//!
//! `record.rs` is the record and its encoding; `exec.rs` the binary path, the preflight and the
//! exec; `status.rs` the status file and the `reload` command; `take.rs` what the new image
//! inherits.

mod adopt;
pub mod crash;
mod exec;
pub mod fdstore;
mod prepare;
mod record;
mod runs;
mod serving;
mod start;
mod status;
mod take;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

pub use adopt::{
    adopt, announce, inherited_children, move_to_boot, reap_when_gone, record_unreadable, ENV_SEQ,
};
pub use exec::{exec_next, preflight, remember_start, ExecError};
pub use prepare::{Prepared, ReloadMeta};
pub use record::{Record, SessionRecord, RECORD_VERSION};
pub use runs::{InheritedRun, RunRecord};
pub use serving::{begin, write_status, Refused};
pub use start::Continued;
pub use status::{reload_command, ServerStatus};
pub use take::{stop_inherited, take_from_env, Inherited, InheritedSession, Unreadable, ENV_FD};

use crate::protocol::{CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART};

/// Set once a reload is under way: sockets then close with 1012 (come back) instead of 1001.
static RELOADING: AtomicBool = AtomicBool::new(false);

/// Marks the process as reloading (sockets close with 1012 from now on).
pub fn begin_reload() {
    RELOADING.store(true, Ordering::SeqCst);
}

/// Whether a reload is under way.
pub fn reloading() -> bool {
    RELOADING.load(Ordering::SeqCst)
}

/// The close code and reason for a socket the server ends because it stops or reloads.
pub fn going_away() -> (u16, &'static str) {
    if RELOADING.load(Ordering::SeqCst) {
        (
            CLOSE_SERVICE_RESTART,
            "server reloading; reconnect with since",
        )
    } else {
        (CLOSE_GOING_AWAY, "server shutting down")
    }
}

/// What detailed health and `/metrics` say about reloads (one per process).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadReport {
    /// Reloads since the first start (0 for a server that never reloaded).
    pub generation: u64,
    /// Reload requests seen so far (`claude-manager reload` waits for it to grow).
    pub reload_seq: u64,
    /// Sessions this image took over from the one before.
    pub adopted_sessions: u64,
    /// Sessions the record named that could not be taken over (stopped and recorded).
    pub adoption_failures: u64,
    /// When the last reload was asked for (RFC 3339), if ever.
    pub last_reload_at: Option<String>,
    /// `ok` or `failed`, if a reload was ever asked for.
    pub last_reload_outcome: Option<String>,
    /// Why the last reload failed.
    pub last_reload_error: Option<String>,
    /// Fds this process holds in systemd's fd store (two per live session under systemd).
    pub fd_store_fds: u64,
    /// Sends to the fd store that failed since start (those sessions would not survive a crash).
    pub fd_store_failures: u64,
}

static REPORT: Mutex<Option<ReloadReport>> = Mutex::new(None);

/// The current report (all zero before the server started).
pub fn report() -> ReloadReport {
    let mut report = REPORT
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_default();
    report.fd_store_fds = fdstore::held();
    report.fd_store_failures = fdstore::failures();
    report
}

/// Changes the report in place.
pub fn update_report(change: impl FnOnce(&mut ReloadReport)) {
    if let Ok(mut r) = REPORT.lock() {
        change(r.get_or_insert_with(ReloadReport::default));
    }
}
