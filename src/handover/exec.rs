//! The binary a reload executes, checked before anything is torn down, and the exec itself.
//!
//! The path is `/proc/self/exe` resolved when the process first started (and passed on across
//! reloads in the environment), so installing a new file at that path and reloading runs the new
//! file. The check refuses what `execve` would refuse (missing, not a regular file, not
//! executable, not an ELF or `#!` file), so a broken install leaves the old image serving.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::record::Record;
use super::take::ENV_FD;

/// Where the binary was started from, passed on across reloads (a reload of a reload must still
/// exec the installed path, not the `(deleted)` name of the replaced file).
const ENV_EXE: &str = "CM_HANDOVER_EXE";

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot tell which binary to reload: {0}")]
    NoPath(String),
    #[error("the new binary {path} cannot be executed: {why}")]
    NotExecutable { path: String, why: String },
    #[error("cannot write the handover record: {0}")]
    Record(std::io::Error),
    #[error("exec of {path} failed: {why}")]
    Exec { path: String, why: String },
}

struct Start {
    exe: Option<PathBuf>,
    argv: Vec<OsString>,
}

static START: OnceLock<Start> = OnceLock::new();

/// Remembers the binary's path and arguments; call first thing in `main`.
pub fn remember_start() {
    let exe = std::env::var_os(ENV_EXE)
        .map(PathBuf::from)
        .or_else(|| std::fs::read_link("/proc/self/exe").ok())
        .filter(|p| !p.as_os_str().as_bytes().ends_with(b" (deleted)"));
    let _ = START.set(Start {
        exe,
        argv: std::env::args_os().collect(),
    });
}

/// The path a reload executes.
pub fn exe_path() -> Result<PathBuf, ExecError> {
    START
        .get()
        .and_then(|s| s.exe.clone())
        .ok_or_else(|| ExecError::NoPath("the binary was deleted before the server started".into()))
}

/// Checks that the binary at the start path can be executed. Blocking (a few syscalls).
pub fn preflight() -> Result<PathBuf, ExecError> {
    let path = exe_path()?;
    let bad = |why: String| ExecError::NotExecutable {
        path: path.display().to_string(),
        why,
    };
    let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| bad(e.to_string()))?;
    // SAFETY: a NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(bad(std::io::Error::last_os_error().to_string()));
    }
    let mut head = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| bad(e.to_string()))?;
    if &head != b"\x7fELF" && &head[..2] != b"#!" {
        return Err(bad("not an executable file (no ELF header)".into()));
    }
    Ok(path)
}

/// Executes the next image with `record`, passing `keep` (the fds the record names) across.
/// Returns only on failure. If the new binary cannot be executed after all, the running image
/// is executed again instead (from `/proc/self/exe`, which still names it), told so in the
/// record, so the sessions go on and the reload is reported failed; only if that fails too
/// does this return.
pub fn exec_next(mut record: Record, rings: &[&[u8]], keep: &[BorrowedFd<'_>]) -> ExecError {
    for fd in keep {
        if let Err(e) = inheritable(fd.as_raw_fd()) {
            return ExecError::Record(e);
        }
    }
    let path = match exe_path() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let first = exec_with(&record, rings, &path, &path);
    record.exec_error = Some(first.to_string());
    exec_with(&record, rings, Path::new("/proc/self/exe"), &path)
}

fn exec_with(record: &Record, rings: &[&[u8]], path: &Path, installed: &Path) -> ExecError {
    let memfd = match record.to_memfd(rings) {
        Ok(fd) => fd,
        Err(e) => return ExecError::Record(e),
    };
    if let Err(e) = inheritable(memfd.as_raw_fd()) {
        return ExecError::Record(e);
    }
    std::env::set_var(ENV_FD, memfd.as_raw_fd().to_string());
    std::env::set_var(ENV_EXE, installed);
    std::env::set_var(super::take::ENV_LISTENER, record.listener_fd.to_string());
    crate::pty::env::pass_starting_values();
    std::env::set_var(
        super::adopt::ENV_SEQ,
        format!("{} {}", record.generation, record.reload_seq),
    );
    let argv: Vec<CString> = START
        .get()
        .map(|s| s.argv.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let why = match CString::new(path.as_os_str().as_bytes()) {
        Ok(c) => match nix::unistd::execv(&c, &argv) {
            Err(errno) => errno.desc().to_string(),
            Ok(never) => match never {},
        },
        Err(e) => e.to_string(),
    };
    // Dropping the memfd here closes it: the next attempt writes a fresh one.
    ExecError::Exec {
        path: path.display().to_string(),
        why,
    }
}

/// Clears close-on-exec so the fd survives the exec.
fn inheritable(fd: i32) -> std::io::Result<()> {
    // SAFETY: F_SETFD on an fd we own; 0 clears FD_CLOEXEC.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
