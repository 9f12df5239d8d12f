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
//! Blocking: [`spawn`] forks and waits for the child's `exec` (well under a millisecond), and
//! reads `/proc`; [`process_start_time`], [`resolve_command`], [`login_shell`] and [`home_dir`]
//! touch the filesystem or NSS. All are quick enough to call from async code.

use std::ffi::{CStr, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{access, getpgrp, AccessFlags, Pid};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// `TERM` for every child: what xterm.js emulates.
const CHILD_TERM: &str = "xterm-256color";
/// `COLORTERM` for every child: xterm.js renders 24-bit colour.
const CHILD_COLORTERM: &str = "truecolor";
/// `LANG` when the server itself has none: output must be UTF-8 for the browser.
const DEFAULT_LANG: &str = "C.UTF-8";
/// Search path when neither the session nor the server has `PATH` (glibc's `execvp` default).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Variables that describe the server's own fds or supervisor channel; a child holds none of
/// those fds, so passing them on would only mislead it.
const SERVER_ONLY_ENV: [&str; 4] = [
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
];
/// Upper bound for the fd loop used when `close_range` is unavailable (Linux < 5.11): the
/// kernel's default `fs.nr_open`, so a huge `RLIMIT_NOFILE` cannot stall the child for minutes.
const FALLBACK_MAX_FD_COUNT: libc::rlim_t = 1 << 20;
/// Field number of `starttime` in `/proc/<pid>/stat` (proc(5)), counting from 1.
const STAT_FIELD_STARTTIME: usize = 22;
/// Field number of `state`, the first field after the parenthesised `comm`.
const STAT_FIELD_STATE: usize = 3;
/// First buffer for `getpwuid_r`, doubled on `ERANGE` up to the maximum: entries are small,
/// but NSS backends (LDAP, sssd) may return long ones.
const PASSWD_BUF_INITIAL_BYTES: usize = 1024;
const PASSWD_BUF_MAX_BYTES: usize = 1 << 20;

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
    /// The session's own variables; they override the server's environment and the terminal
    /// defaults (`TERM`, `COLORTERM`, `LANG`).
    pub env: Vec<(String, String)>,
    pub size: WindowSize,
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

/// What happened to a signal sent to a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    Delivered,
    /// No process is left in the group: nothing to do.
    NoSuchGroup,
    /// The pid now belongs to a different process (its start time differs): not signalled.
    PidReused,
}

/// A freshly started child and the two halves of its terminal.
#[derive(Debug)]
pub struct SpawnedPty {
    pub reader: PtyReader,
    pub writer: PtyWriter,
    pub child: PtyChild,
}

/// The output side of the master. One task should own it and read continuously.
#[derive(Debug)]
pub struct PtyReader {
    master: Arc<AsyncFd<File>>,
}

/// The input and control side of the master. The master fd closes (hanging up the child's
/// terminal) once both the reader and the writer are dropped.
#[derive(Debug)]
pub struct PtyWriter {
    master: Arc<AsyncFd<File>>,
}

/// Changes the terminal size from outside the task that writes input (cloneable), so a resize
/// is never stuck behind input the child is not reading.
#[derive(Debug, Clone)]
pub struct PtyResizer {
    master: Arc<AsyncFd<File>>,
}

impl PtyResizer {
    /// Changes the terminal size; the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: WindowSize) -> Result<(), PtyError> {
        if size.cols == 0 || size.rows == 0 {
            return Err(PtyError::InvalidSize {
                cols: size.cols,
                rows: size.rows,
            });
        }
        set_window_size(self.master.get_ref().as_fd(), size).map_err(PtyError::Resize)
    }
}

/// The child process, leader of its own session and process group.
///
/// Dropping it sends `SIGKILL` to the group (start-time checked once the leader is reaped), so a
/// session cannot leave processes behind even when its owner panics.
#[derive(Debug)]
pub struct PtyChild {
    child: tokio::process::Child,
    pid: i32,
    start_time: Option<u64>,
    exit: Option<ExitInfo>,
}

/// Starts `command` on a new PTY. Must be called within a tokio runtime.
pub fn spawn(command: &PtyCommand) -> Result<SpawnedPty, PtyError> {
    let WindowSize { cols, rows } = command.size;
    if cols == 0 || rows == 0 {
        return Err(PtyError::InvalidSize { cols, rows });
    }
    if !command.cwd.is_dir() {
        return Err(PtyError::InvalidCwd {
            cwd: command.cwd.clone(),
        });
    }
    let resolved = resolve_program(&command.program, &command.cwd, &command.env)?;

    let (master, slave) = open_pty()?;
    set_window_size(master.as_fd(), command.size).map_err(|source| PtyError::Allocate {
        step: "set window size",
        source,
    })?;
    let master = register_master(master)?;

    let spawned = {
        let mut child_command = tokio::process::Command::new(&resolved);
        child_command
            .arg0(&command.program)
            .args(&command.args)
            .current_dir(&command.cwd)
            .env("TERM", CHILD_TERM)
            .env("COLORTERM", CHILD_COLORTERM);
        for name in SERVER_ONLY_ENV {
            child_command.env_remove(name);
        }
        if std::env::var_os("LANG").is_none() {
            child_command.env("LANG", DEFAULT_LANG);
        }
        child_command.envs(command.env.iter().map(|(k, v)| (k, v)));
        let stdio = |slave: &File| {
            slave
                .try_clone()
                .map(Stdio::from)
                .map_err(|source| PtyError::Allocate {
                    step: "duplicate slave",
                    source,
                })
        };
        child_command
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(Stdio::from(slave));
        // SAFETY: `become_session_leader` makes only async-signal-safe system calls and does not
        // allocate, as required between fork and exec.
        unsafe {
            child_command.pre_exec(become_session_leader);
        }
        child_command.spawn()
        // `child_command` drops here, and with it the last parent-side copies of the slave.
    };
    let child = spawned.map_err(|source| PtyError::Spawn {
        program: command.program.clone(),
        source,
    })?;
    // A child we have not waited for keeps its pid, so `id()` is always set here.
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(0);
    Ok(SpawnedPty {
        reader: PtyReader {
            master: Arc::clone(&master),
        },
        writer: PtyWriter { master },
        child: PtyChild {
            start_time: process_start_time(pid),
            child,
            pid,
            exit: None,
        },
    })
}

/// The program's path: relative to `cwd` if it has a `/`, else looked up on the session's PATH.
fn resolve_program(
    program: &str,
    cwd: &Path,
    env: &[(String, String)],
) -> Result<PathBuf, PtyError> {
    let session_path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| OsString::from(value));
    let program_path = if program.contains('/') {
        cwd.join(program).into_os_string()
    } else {
        OsString::from(program)
    };
    program_path
        .to_str()
        .and_then(|p| resolve_command(p, session_path.as_deref()))
        .ok_or_else(|| PtyError::CommandNotFound {
            program: program.to_string(),
        })
}

/// A headless child (agent runs): stdin, stdout and stderr are pipes; no PTY.
pub struct SpawnedPiped {
    pub child: PtyChild,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: tokio::process::ChildStderr,
}

/// Starts `command` with pipes instead of a PTY, leader of its own session and process group
/// (stopped as a group like every session), holding fds 0-2 only. `size` is ignored.
pub fn spawn_piped(command: &PtyCommand) -> Result<SpawnedPiped, PtyError> {
    if !command.cwd.is_dir() {
        return Err(PtyError::InvalidCwd {
            cwd: command.cwd.clone(),
        });
    }
    let resolved = resolve_program(&command.program, &command.cwd, &command.env)?;
    let mut child_command = tokio::process::Command::new(&resolved);
    child_command
        .arg0(&command.program)
        .args(&command.args)
        .current_dir(&command.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in SERVER_ONLY_ENV {
        child_command.env_remove(name);
    }
    if std::env::var_os("LANG").is_none() {
        child_command.env("LANG", DEFAULT_LANG);
    }
    child_command.envs(command.env.iter().map(|(k, v)| (k, v)));
    // SAFETY: `become_session_leader_without_tty` makes only async-signal-safe system calls.
    unsafe {
        child_command.pre_exec(become_session_leader_without_tty);
    }
    let mut child = child_command.spawn().map_err(|source| PtyError::Spawn {
        program: command.program.clone(),
        source,
    })?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .unwrap_or(0);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        // Unreachable with Stdio::piped(); the child is killed by PtyChild's drop below.
        drop(PtyChild {
            start_time: process_start_time(pid),
            child,
            pid,
            exit: None,
        });
        return Err(PtyError::Spawn {
            program: command.program.clone(),
            source: io::Error::other("pipes missing"),
        });
    };
    Ok(SpawnedPiped {
        child: PtyChild {
            start_time: process_start_time(pid),
            child,
            pid,
            exit: None,
        },
        stdin,
        stdout,
        stderr,
    })
}

/// Opens a master/slave pair, both close-on-exec from the first instant.
fn open_pty() -> Result<(File, File), PtyError> {
    let step = |step: &'static str| {
        move |errno: Errno| PtyError::Allocate {
            step,
            source: errno.into(),
        }
    };
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(step("posix_openpt"))?;
    grantpt(&master).map_err(step("grantpt"))?;
    unlockpt(&master).map_err(step("unlockpt"))?;
    let slave_path = ptsname_r(&master).map_err(step("ptsname_r"))?;
    // std adds O_CLOEXEC to every open; it is spelled out because it is the point.
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .map_err(|source| PtyError::Allocate {
            step: "open slave",
            source,
        })?;
    Ok((File::from(OwnedFd::from(master)), slave))
}

fn register_master(master: File) -> Result<Arc<AsyncFd<File>>, PtyError> {
    let flags = fcntl(master.as_fd(), FcntlArg::F_GETFL).map_err(|errno| PtyError::Allocate {
        step: "get master flags",
        source: errno.into(),
    })?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|errno| PtyError::Allocate {
        step: "set master non-blocking",
        source: errno.into(),
    })?;
    // SAFETY: the `File` owns its fd and keeps returning that same fd until it is dropped,
    // which happens only when the `AsyncFd` is.
    let registered =
        unsafe { AsyncFd::register_with_interest(master, Interest::READABLE | Interest::WRITABLE) };
    registered
        .map(Arc::new)
        .map_err(|error| PtyError::Allocate {
            step: "register with the reactor",
            source: error.into(),
        })
}

fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let winsize = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &winsize) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs in the child between fork and exec, after std has put the slave on fds 0, 1 and 2:
/// new session, the slave as its controlling terminal, every other fd closed at exec.
fn become_session_leader() -> io::Result<()> {
    // SAFETY: plain system calls on integers and a stack-allocated struct; no allocation, no
    // locks (async-signal-safe, as fork in a threaded process requires).
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    mark_fds_cloexec();
    Ok(())
}

/// `pre_exec` of a headless child (pipes, no PTY): a new session (so its own process group,
/// signalled as a whole), no controlling terminal, every fd ≥ 3 closed at exec.
fn become_session_leader_without_tty() -> io::Result<()> {
    // SAFETY: as in `become_session_leader`: async-signal-safe system calls only.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    mark_fds_cloexec();
    Ok(())
}

/// Marks every fd ≥ 3 close-on-exec (`close_range`, or a loop on kernels before 5.11).
/// Async-signal-safe: runs between fork and exec.
fn mark_fds_cloexec() {
    // SAFETY: plain system calls on integers and a stack-allocated struct; no allocation.
    unsafe {
        let first_fd: libc::c_uint = 3;
        let marked = libc::syscall(
            libc::SYS_close_range,
            first_fd,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if marked != 0 {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let fd_count = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(FALLBACK_MAX_FD_COUNT)
            } else {
                FALLBACK_MAX_FD_COUNT
            };
            for fd in first_fd as libc::c_int..fd_count as libc::c_int {
                // EBADF for fds that are not open is expected and harmless.
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

impl PtyReader {
    /// Reads output into `buf`; `Ok(0)` means the end of output (every holder of the slave has
    /// closed it). Cancel-safe: no bytes are lost if the future is dropped.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.master.readable().await?;
            match ready.try_io(|master| {
                let mut file: &File = master.get_ref();
                file.read(buf)
            }) {
                Ok(Ok(n)) => return Ok(n),
                // Linux reports a hung-up PTY as EIO, not as a 0-byte read.
                Ok(Err(error)) if error.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
    }
}

impl PtyWriter {
    /// Writes all of `bytes` as input to the child. Waits while the child is not reading (the
    /// PTY input queue is full), so bound it with a timeout or run it off the actor's loop.
    /// Not cancel-safe: a dropped future may have written part of `bytes`.
    pub async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut ready = self.master.writable().await?;
            match ready.try_io(|master| {
                let mut file: &File = master.get_ref();
                file.write(bytes)
            }) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(error)) => return Err(error),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Changes the terminal size; the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: WindowSize) -> Result<(), PtyError> {
        self.resizer().resize(size)
    }

    /// A handle that resizes this terminal; it keeps the master open while held.
    pub fn resizer(&self) -> PtyResizer {
        PtyResizer {
            master: Arc::clone(&self.master),
        }
    }
}

impl PtyChild {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The child's process group: its own pid, since it called `setsid` before exec.
    pub fn pgid(&self) -> i32 {
        self.pid
    }

    /// `starttime` from `/proc/<pid>/stat`, recorded at spawn; stored with the pid so a later
    /// signal can tell the same process from a reused pid.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    /// How the child ended, once [`wait`](Self::wait) or [`try_wait`](Self::try_wait) saw it.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        self.exit
    }

    /// Waits for the child to exit and reaps it. Cancel-safe; returns the same answer again
    /// once the child has been reaped.
    pub async fn wait(&mut self) -> Result<ExitInfo, PtyError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self.child.wait().await.map_err(|source| PtyError::Wait {
            pid: self.pid,
            source,
        })?;
        let exit = ExitInfo::from(status);
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Reaps the child if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitInfo>, PtyError> {
        if self.exit.is_none() {
            let status = self.child.try_wait().map_err(|source| PtyError::Wait {
                pid: self.pid,
                source,
            })?;
            self.exit = status.map(ExitInfo::from);
        }
        Ok(self.exit)
    }

    /// Signals the child's whole process group (background jobs included).
    pub fn signal_group(&self, signal: Signal) -> Result<SignalOutcome, PtyError> {
        match (self.exit, self.start_time) {
            // Until we reap it, the leader (even as a zombie) keeps its pid from being reused.
            (None, _) => signal_group(self.pgid(), signal),
            (Some(_), Some(start_time)) => signal_recorded_group(self.pgid(), start_time, signal),
            (Some(_), None) => Ok(SignalOutcome::NoSuchGroup),
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        // Best effort: Drop has no one to report to, and ESRCH (already gone) is the usual case.
        let _ = self.signal_group(Signal::SIGKILL);
    }
}

/// Sends `signal` to process group `pgid`. A group that no longer exists is
/// `Ok(SignalOutcome::NoSuchGroup)`. Refuses pgid ≤ 1 and the server's own group, where
/// `killpg` would hit the server or every process.
pub fn signal_group(pgid: i32, signal: Signal) -> Result<SignalOutcome, PtyError> {
    if pgid <= 1 || pgid == getpgrp().as_raw() {
        return Err(PtyError::ForbiddenProcessGroup(pgid));
    }
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) => Ok(SignalOutcome::Delivered),
        Err(Errno::ESRCH) => Ok(SignalOutcome::NoSuchGroup),
        Err(source) => Err(PtyError::Signal {
            pgid,
            signal,
            source,
        }),
    }
}

/// Signals a group known only by a stored pgid and its leader's recorded start time.
///
/// If a process with that pid exists but started at another time, the pid was reused: nothing
/// is sent. If none exists, the group is signalled: Linux does not hand out a pid while it is
/// still some process's group id, so the group is either ours or gone.
pub fn signal_recorded_group(
    pgid: i32,
    start_time: u64,
    signal: Signal,
) -> Result<SignalOutcome, PtyError> {
    match process_start_time(pgid) {
        Some(current) if current != start_time => Ok(SignalOutcome::PidReused),
        _ => signal_group(pgid, signal),
    }
}

/// The `starttime` of a process (clock ticks after boot), or `None` if there is no such process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Parses `/proc/<pid>/stat`. The command name in field 2 may contain spaces, `)` and even
/// non-UTF-8 bytes, so the fields are counted from the last `)`.
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    let comm_end = stat.iter().rposition(|&b| b == b')')?;
    let after_comm = std::str::from_utf8(&stat[comm_end + 1..]).ok()?;
    after_comm
        .split_ascii_whitespace()
        .nth(STAT_FIELD_STARTTIME - STAT_FIELD_STATE)?
        .parse()
        .ok()
}

/// Finds the executable `program` would run: a name containing `/` is checked as a path
/// (relative to the server's cwd), any other name is searched in `path_env` (absolute
/// entries only), or in the server's `PATH` when `None`. `None` if nothing executable matches.
pub fn resolve_command(program: &str, path_env: Option<&OsStr>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable_file(&path).then_some(path);
    }
    let server_path = std::env::var_os("PATH");
    let search = path_env
        .or(server_path.as_deref())
        .unwrap_or(OsStr::new(DEFAULT_PATH));
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    path.is_file() && access(path, AccessFlags::X_OK).is_ok()
}

/// The current user's login shell from the passwd entry, else `$SHELL`, else `/bin/sh`.
pub fn login_shell() -> String {
    current_user_entry()
        .map(|entry| entry.shell)
        .filter(|shell| !shell.is_empty())
        .and_then(|shell| shell.into_string().ok())
        .or_else(|| {
            std::env::var("SHELL")
                .ok()
                .filter(|shell| !shell.is_empty())
        })
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

/// The current user's home directory from the passwd entry, else `$HOME`, else `/`.
pub fn home_dir() -> PathBuf {
    current_user_entry()
        .map(|entry| entry.dir)
        .filter(|dir| !dir.is_empty())
        .or_else(|| std::env::var_os("HOME").filter(|home| !home.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

struct PasswdEntry {
    dir: OsString,
    shell: OsString,
}

/// The passwd entry of the current uid, through NSS. (nix's `User` would do this, but needs
/// nix's `user` feature, which the crate does not enable.)
fn current_user_entry() -> Option<PasswdEntry> {
    let mut buf_len = PASSWD_BUF_INITIAL_BYTES;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; buf_len];
        // SAFETY: `passwd` is plain data (integers and pointers), valid when zeroed.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local; `buf.len()` is the buffer's true size.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf_len < PASSWD_BUF_MAX_BYTES {
            buf_len *= 2;
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        let field = |ptr: *const libc::c_char| {
            if ptr.is_null() {
                return OsString::new();
            }
            // SAFETY: getpwuid_r filled `entry` with NUL-terminated strings inside `buf`,
            // which is still alive here.
            OsStr::from_bytes(unsafe { CStr::from_ptr(ptr) }.to_bytes()).to_owned()
        };
        return Some(PasswdEntry {
            dir: field(entry.pw_dir),
            shell: field(entry.pw_shell),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// Bound on every wait for a child's event; generous because CI machines stall.
    const EVENT_TIMEOUT_SECS: u64 = 10;
    const SIZE: WindowSize = WindowSize { cols: 80, rows: 24 };

    fn command(program: &str, args: &[&str]) -> PtyCommand {
        PtyCommand {
            program: program.to_owned(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            cwd: PathBuf::from("/"),
            env: Vec::new(),
            size: SIZE,
        }
    }

    fn sh(script: &str) -> PtyCommand {
        command("sh", &["-c", script])
    }

    async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
        match tokio::time::timeout(Duration::from_secs(EVENT_TIMEOUT_SECS), future).await {
            Ok(value) => value,
            Err(_) => panic!("timed out after {EVENT_TIMEOUT_SECS} s waiting for {what}"),
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    }

    /// Reads into `out` until it holds `needle`; panics on end of output first.
    async fn read_until(reader: &mut PtyReader, out: &mut Vec<u8>, needle: &[u8]) {
        let what = format!("{:?}", String::from_utf8_lossy(needle));
        within(&what, async {
            let mut buf = [0u8; 4096];
            while !contains(out, needle) {
                let n = reader.read(&mut buf).await.expect("read from master");
                assert!(n > 0, "output ended before {what}: {out:?}");
                out.extend_from_slice(&buf[..n]);
            }
        })
        .await
    }

    async fn read_to_end(reader: &mut PtyReader) -> Vec<u8> {
        within("end of output", async {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf).await.expect("read from master") {
                    0 => return out,
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await
    }

    async fn kill_and_reap(child: &mut PtyChild) -> ExitInfo {
        child.signal_group(Signal::SIGKILL).expect("kill group");
        within("child exit", child.wait()).await.expect("wait")
    }

    fn open_fds(pid: i32) -> BTreeSet<i32> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("list child fds")
            .map(|entry| {
                let name = entry.expect("fd entry").file_name();
                name.to_string_lossy().parse().expect("numeric fd")
            })
            .collect()
    }

    /// Waits until `cat` has echoed a line: past its start-up (where libc opens locale files
    /// for a moment) and blocked reading its terminal, so its fd table is settled.
    async fn settle_cat(spawned: &mut SpawnedPty) {
        spawned.writer.write_all(b"ping\n").await.expect("write");
        let mut out = Vec::new();
        read_until(&mut spawned.reader, &mut out, b"ping\r\nping\r\n").await;
    }

    fn assert_holds_only_its_terminal(pid: i32) {
        let fds = open_fds(pid);
        let targets: Vec<_> = fds
            .iter()
            .map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")))
            .collect();
        assert_eq!(fds, BTreeSet::from([0, 1, 2]), "fds of {pid}: {targets:?}");
        let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("readlink fd 0");
        assert!(stdin.starts_with("/dev/pts/"), "fd 0 is {stdin:?}");
    }

    #[tokio::test]
    async fn input_echoes_back_through_cat() {
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&command("cat", &[])).expect("spawn cat");
        writer.write_all(b"hello\n").await.expect("write");
        let mut out = Vec::new();
        // Once echoed by the line discipline, once printed by cat; ONLCR makes "\n" "\r\n".
        read_until(&mut reader, &mut out, b"hello\r\nhello\r\n").await;
        writer.write_all(&[0x04]).await.expect("send EOF"); // ^D: end of input in cooked mode
        let exit = within("cat exit", child.wait()).await.expect("wait");
        assert_eq!(
            exit,
            ExitInfo {
                code: Some(0),
                signal: None
            }
        );
        read_to_end(&mut reader).await;
    }

    /// The line discipline rewrites bytes in cooked mode (CR→NL, ^C→SIGINT, echo), so this runs
    /// the child the way a full-screen program does: it switches its own terminal to raw, then
    /// says READY. What remains to prove is that our read and write paths are 8-bit clean.
    #[tokio::test]
    async fn every_byte_value_passes_through_a_raw_mode_child() {
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&sh("stty raw -echo && printf READY && exec cat")).expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"READY").await;
        let input: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
        writer.write_all(&input).await.expect("write");
        let ready_end = out.windows(5).position(|w| w == b"READY").expect("marker") + 5;
        within("all bytes back", async {
            let mut buf = [0u8; 4096];
            while out.len() - ready_end < input.len() {
                let n = reader.read(&mut buf).await.expect("read");
                assert!(n > 0, "output ended early");
                out.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        assert_eq!(&out[ready_end..], &input[..]);
        let exit = kill_and_reap(&mut child).await;
        assert_eq!(exit.signal, Some(libc::SIGKILL));
    }

    #[tokio::test]
    async fn initial_size_and_resize_are_seen_by_the_child() {
        let mut cmd = sh("stty size; read line; stty size");
        cmd.size = WindowSize {
            cols: 111,
            rows: 33,
        };
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&cmd).expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"33 111\r\n").await;
        writer
            .resize(WindowSize {
                cols: 120,
                rows: 40,
            })
            .expect("resize");
        writer.write_all(b"\n").await.expect("write");
        read_until(&mut reader, &mut out, b"40 120\r\n").await;
        let exit = within("exit", child.wait()).await.expect("wait");
        assert_eq!(exit.code, Some(0));
    }

    #[tokio::test]
    async fn zero_sizes_are_rejected() {
        let mut cmd = command("true", &[]);
        cmd.size = WindowSize { cols: 0, rows: 24 };
        assert!(matches!(spawn(&cmd), Err(PtyError::InvalidSize { .. })));
    }

    #[tokio::test]
    async fn exit_code_is_captured() {
        let mut spawned = spawn(&sh("exit 3")).expect("spawn");
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(
            exit,
            ExitInfo {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(spawned.child.exit_info(), Some(exit));
        assert_eq!(spawned.child.wait().await.expect("second wait"), exit);
    }

    #[tokio::test]
    async fn death_by_signal_is_captured() {
        let mut spawned = spawn(&sh("kill -TERM $$")).expect("spawn");
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(
            exit,
            ExitInfo {
                code: None,
                signal: Some(libc::SIGTERM)
            }
        );
    }

    #[tokio::test]
    async fn child_holds_only_its_terminal_even_when_the_server_leaks_fds() {
        // An fd without close-on-exec, as a careless library or the launcher could leave.
        // SAFETY: open(2) with a NUL-terminated path; the fd is closed below.
        let leaked = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(leaked >= 3);
        let spawned = spawn(&command("cat", &[]));
        // SAFETY: `leaked` was opened above and nothing else owns it.
        unsafe { libc::close(leaked) };
        let mut spawned = spawned.expect("spawn cat");
        settle_cat(&mut spawned).await;
        assert_holds_only_its_terminal(spawned.child.pid());
        kill_and_reap(&mut spawned.child).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_spawns_from_threads_each_hold_only_their_terminal() {
        const THREAD_COUNT: usize = 5;
        let runtime = tokio::runtime::Handle::current();
        let start = std::sync::Barrier::new(THREAD_COUNT);
        let mut spawned: Vec<SpawnedPty> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREAD_COUNT)
                .map(|_| {
                    scope.spawn(|| {
                        let _runtime = runtime.enter();
                        start.wait();
                        spawn(&command("cat", &[])).expect("spawn cat")
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("spawning thread"))
                .collect()
        });
        for each in &mut spawned {
            settle_cat(each).await;
            assert_holds_only_its_terminal(each.child.pid());
        }
        for each in &mut spawned {
            kill_and_reap(&mut each.child).await;
        }
    }

    #[tokio::test]
    async fn output_without_trailing_newline_arrives_before_the_end() {
        let script = "head -c 100000 /dev/zero | tr '\\0' x; printf tail-without-newline";
        let mut spawned = spawn(&sh(script)).expect("spawn");
        let out = read_to_end(&mut spawned.reader).await;
        assert_eq!(out.len(), 100_000 + "tail-without-newline".len());
        assert!(out.ends_with(b"xtail-without-newline"));
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(exit.code, Some(0));
    }

    #[tokio::test]
    async fn environment_has_terminal_defaults_and_session_overrides() {
        let mut cmd = sh(r#"printf '%s|%s|%s|%s|' "$TERM" "$COLORTERM" "$SESSION_VAR" "$LANG""#);
        cmd.env = vec![
            ("SESSION_VAR".to_owned(), "from session".to_owned()),
            ("COLORTERM".to_owned(), "overridden".to_owned()),
        ];
        let mut spawned = spawn(&cmd).expect("spawn");
        let out = String::from_utf8(read_to_end(&mut spawned.reader).await).expect("utf-8");
        let fields: Vec<&str> = out.split('|').collect();
        assert_eq!(
            &fields[..3],
            ["xterm-256color", "overridden", "from session"]
        );
        assert!(!fields[3].is_empty(), "LANG is set: {out:?}");
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[tokio::test]
    async fn child_runs_in_cwd_with_argv_passed_verbatim() {
        let mut cmd = command(
            "sh",
            &["-c", r#"printf '%s|%s|' "$PWD" "$1""#, "argv0", "a b;$(x)"],
        );
        cmd.cwd = PathBuf::from("/tmp");
        let mut spawned = spawn(&cmd).expect("spawn");
        let out = read_to_end(&mut spawned.reader).await;
        assert_eq!(out, b"/tmp|a b;$(x)|");
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[tokio::test]
    async fn missing_command_and_cwd_fail_before_spawning() {
        let missing = command("no-such-command-claude-manager", &[]);
        assert!(matches!(
            spawn(&missing),
            Err(PtyError::CommandNotFound { .. })
        ));
        let mut bad_cwd = command("true", &[]);
        bad_cwd.cwd = PathBuf::from("/no/such/dir");
        assert!(matches!(spawn(&bad_cwd), Err(PtyError::InvalidCwd { .. })));
    }

    #[tokio::test]
    async fn child_is_session_leader_with_the_pty_as_controlling_terminal() {
        // `ps` prints the session id, process group and controlling tty of the shell itself.
        let mut spawned = spawn(&sh("ps -o sid=,pgid=,tty= -p $$")).expect("spawn");
        let pid = spawned.child.pid();
        let out = String::from_utf8(read_to_end(&mut spawned.reader).await).expect("utf-8");
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields[..2], [pid.to_string(), pid.to_string()]);
        assert!(fields[2].starts_with("pts/"), "tty is {out:?}");
        assert_eq!(spawned.child.pgid(), pid);
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[tokio::test]
    async fn dropping_the_child_kills_jobs_left_in_its_group() {
        // The background job ignores SIGHUP, so it outlives the shell and keeps the terminal
        // open: the end of output only comes once Drop has killed the group.
        let mut spawned = spawn(&sh("trap '' HUP; sleep 30 & printf started")).expect("spawn");
        let mut out = Vec::new();
        read_until(&mut spawned.reader, &mut out, b"started").await;
        let exit = within("shell exit", spawned.child.wait())
            .await
            .expect("wait");
        assert_eq!(exit.code, Some(0));
        drop(spawned.child);
        read_to_end(&mut spawned.reader).await;
    }

    #[tokio::test]
    async fn signals_check_the_recorded_start_time() {
        let mut spawned = spawn(&command("sleep", &["30"])).expect("spawn");
        let pgid = spawned.child.pgid();
        let start_time = spawned.child.start_time().expect("start time recorded");
        assert_eq!(process_start_time(pgid), Some(start_time));
        assert_eq!(
            signal_recorded_group(pgid, start_time + 1, Signal::SIGKILL).expect("signal"),
            SignalOutcome::PidReused
        );
        assert_eq!(
            signal_recorded_group(pgid, start_time, Signal::SIGKILL).expect("signal"),
            SignalOutcome::Delivered
        );
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(exit.signal, Some(libc::SIGKILL));
        assert_eq!(
            spawned.child.signal_group(Signal::SIGTERM).expect("signal"),
            SignalOutcome::NoSuchGroup
        );
    }

    #[test]
    fn signalling_init_everyone_or_ourselves_is_refused() {
        let own_group = getpgrp().as_raw();
        for pgid in [-1, 0, 1, own_group] {
            assert!(matches!(
                signal_group(pgid, Signal::SIGTERM),
                Err(PtyError::ForbiddenProcessGroup(_))
            ));
        }
    }

    #[test]
    fn pty_fds_are_close_on_exec_from_the_start() {
        let (master, slave) = open_pty().expect("open pty");
        for fd in [master.as_fd(), slave.as_fd()] {
            let flags = fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD");
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
    }

    #[test]
    fn start_time_is_field_22_even_with_parens_in_the_name() {
        // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
        let stat = b"4242 (evil) (name) x) S 1 4242 4242 0 -1 4194560 \
            100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000 200 18446744073709551615\n";
        assert_eq!(parse_start_time(stat), Some(987_654_321));
        let non_utf8 = b"7 (\xff\xfe)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 1 1\n";
        assert_eq!(parse_start_time(non_utf8), Some(55));
        assert_eq!(parse_start_time(b"7 (short) R 1 2"), None);
        assert_eq!(parse_start_time(b"no parens at all"), None);
    }

    #[test]
    fn start_time_of_a_live_process_and_of_none() {
        let own_pid = i32::try_from(std::process::id()).expect("pid fits");
        assert!(process_start_time(own_pid).is_some());
        assert_eq!(process_start_time(0), None);
        assert_eq!(process_start_time(-5), None);
    }

    #[test]
    fn commands_resolve_through_path_or_as_paths() {
        let path = OsStr::new("relative/dir::/bin:/usr/bin");
        let sh = resolve_command("sh", Some(path)).expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert_eq!(
            resolve_command("sh", Some(OsStr::new("/nonexistent"))),
            None
        );
        assert_eq!(
            resolve_command("no-such-command-claude-manager", None),
            None
        );
        assert_eq!(resolve_command("", None), None);
        assert_eq!(
            resolve_command("/bin/sh", None),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve_command("/tmp", None), None, "a directory");
        let script = std::env::temp_dir().join(format!("pty-resolve-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").expect("write script");
        let script_str = script.to_str().expect("utf-8 temp path");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(resolve_command(script_str, None), None, "not executable");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(resolve_command(script_str, None), Some(script.clone()));
        std::fs::remove_file(&script).expect("remove script");
    }

    #[test]
    fn login_shell_and_home_dir_are_absolute() {
        assert!(login_shell().starts_with('/'));
        assert!(home_dir().is_absolute());
    }
}
