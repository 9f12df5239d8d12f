//! The one place that starts PTY children and the one place that signals them.
//!
//! A session is a child process in its own session and process group, whose stdin, stdout and
//! stderr are the slave side of a fresh pseudo-terminal; the server keeps the master side, read
//! through tokio's reactor. Each step guards against a failure the previous system had:
//!
//! - Master and slave are opened close-on-exec from the start (`posix_openpt` + `O_CLOEXEC`, never
//!   `openpty`), so a child another thread forks at the same moment cannot inherit them.
//! - In the child, `pre_exec` marks every fd ≥ 3 close-on-exec (`close_range` with
//!   `CLOSE_RANGE_CLOEXEC`, falling back to a loop). Marking rather than closing keeps std's
//!   exec-error pipe open until `exec`, so a failed `exec` is still reported as a spawn error;
//!   once `exec` succeeds the child holds fds 0, 1 and 2 and nothing else (no listening socket,
//!   no other session's master, no database file).
//! - The parent drops every copy of the slave right after the spawn, or the master never sees
//!   the end of output.
//! - The end of output on Linux is `EIO`, reported here as a read of 0 bytes. It never comes
//!   while a background job still holds the terminal, so a session's end is decided by waiting
//!   on the child ([`PtyChild::wait`]), then draining the reader for a short while.
//! - Process groups are signalled by pgid, and a pgid whose leader has been reaped is only
//!   signalled after checking the recorded start time (PID reuse).
//!
//! Blocking: [`spawn()`] forks and waits for the child's `exec` (well under a millisecond), and
//! reads `/proc`; [`process_start_time`], [`resolve_command`], [`login_shell`] and [`home_dir`]
//! touch the filesystem or NSS. All are quick enough to call from async code.
//!
//! One concept per file: `spawn.rs` starts children (allocating the terminal, building the
//! command, the code that runs between fork and exec); `master.rs` is the server's side of the
//! terminal ([`PtyReader`], [`PtyWriter`], [`PtyResizer`]); `child.rs` waits for and reaps a
//! child ([`PtyChild`]); `signal.rs` is the one place that signals process groups; `lookup.rs`
//! finds the executable a command names; `user.rs` reads the user's login shell and home.

mod adopt;
pub mod caps;
mod cgroup;
mod child;
pub mod env;
mod lookup;
mod master;
mod signal;
mod spawn;
#[cfg(test)]
mod test_support;
mod tree;
mod user;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;

pub use adopt::{adopt, adopt_child, PidFd};
pub use caps::Caps;
pub use cgroup::CgroupRoot;
pub use child::{ChildKeeper, PtyChild};
pub use lookup::resolve_command;
pub use master::{PtyReader, PtyResizer, PtyWriter, READ_CHUNK_BYTES};
pub use signal::{process_start_time, signal_group, signal_recorded_group, SignalOutcome};
pub use spawn::{spawn, spawn_piped, SpawnedPiped, SpawnedPty};
pub use tree::ProcessTree;
pub use user::{home_dir, login_shell};

/// Everything that can go wrong starting, driving or signalling a PTY child.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    #[error("command not found or not executable: {program}")]
    CommandNotFound { program: String },
    #[error("working directory {} does not exist or is not a directory", cwd.display())]
    InvalidCwd { cwd: PathBuf },
    #[error("invalid terminal size {cols}x{rows}: both must be at least 1")]
    InvalidSize { cols: u16, rows: u16 },
    #[error("could not allocate a pseudo-terminal ({step}): {source}")]
    Allocate {
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("could not set the terminal size: {0}")]
    Resize(#[source] io::Error),
    #[error("refusing to signal process group {0}: it is not a session's group")]
    ForbiddenProcessGroup(i32),
    #[error("could not send {signal} to process group {pgid}: {source}")]
    Signal {
        pgid: i32,
        signal: Signal,
        #[source]
        source: Errno,
    },
    #[error("session cgroup {}: {source}", dir.display())]
    Cgroup {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not wait for process {pid}: {source}")]
    Wait {
        pid: i32,
        #[source]
        source: io::Error,
    },
}

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub cols: u16,
    pub rows: u16,
}

/// What to run on a new PTY.
#[derive(Debug, Clone)]
pub struct PtyCommand {
    /// A bare name searched in `PATH` (the session's, else the server's), or a path; a relative
    /// path is taken relative to `cwd`, as `exec` in the child would.
    pub program: String,
    /// Arguments after `argv[0]`, passed as they are: no shell ever parses them.
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The session's own variables; they override the allow-listed part of the server's
    /// environment and the terminal defaults (`TERM`, `COLORTERM`, `LANG`, `HISTFILE`); see
    /// [`env`].
    pub env: Vec<(String, String)>,
    pub size: WindowSize,
    /// The session's cgroup (created empty): the child joins it before `exec`, so every
    /// process it ever starts is in it.
    pub cgroup: Option<PathBuf>,
    /// Written to the cgroup before the child joins it (`caps.rs`); none without a cgroup.
    pub caps: Caps,
}

/// How a child ended: exactly one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl From<std::process::ExitStatus> for ExitInfo {
    fn from(status: std::process::ExitStatus) -> Self {
        ExitInfo {
            code: status.code(),
            signal: status.signal(),
        }
    }
}
