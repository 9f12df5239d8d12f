//! Taking over a session from the image before a reload (`src/handover/`): its PTY master fd
//! becomes a [`PtyReader`]/[`PtyWriter`] again, and its child, still our child since the PID did
//! not change, is watched through a `pidfd` and reaped with `waitid`, so its exit status stays
//! exact.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::master::register_master;
use super::signal::process_start_time;
use super::{ExitInfo, ProcessTree, PtyChild, PtyError, SpawnedPty};

/// A process's pidfd, registered with the reactor: readable once the process has exited.
#[derive(Debug)]
pub struct PidFd {
    fd: AsyncFd<OwnedFd>,
}

const P_PIDFD: libc::idtype_t = 3;

impl PidFd {
    /// Opens a pidfd for `pid` (Linux 5.3+).
    pub fn open(pid: i32) -> io::Result<PidFd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the fd was just returned by the kernel and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        // SAFETY: the OwnedFd keeps its fd until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }?;
        Ok(PidFd { fd })
    }

    /// Waits for the process to exit and reaps it if it is our child (a reload). One that is
    /// not (adopted after a crash: its parent was the crashed process, it was re-parented) is
    /// only seen to exit: its exit status is unknown, both fields `None`.
    pub async fn wait(&mut self) -> io::Result<ExitInfo> {
        loop {
            match self.try_reap() {
                Ok(Some(exit)) => return Ok(exit),
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                    // The pidfd turns readable once the process has exited.
                    let _ready = self.fd.readable().await?;
                    return Ok(ExitInfo {
                        code: None,
                        signal: None,
                    });
                }
                Err(e) => return Err(e),
            }
            let mut ready = self.fd.readable().await?;
            ready.clear_ready();
        }
    }

    fn try_reap(&self) -> io::Result<Option<ExitInfo>> {
        // SAFETY: siginfo_t is plain data; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let fd = self.fd.get_ref().as_raw_fd() as libc::id_t;
        // SAFETY: waitid writes one siginfo_t through the pointer, which outlives the call.
        let rc = unsafe { libc::waitid(P_PIDFD, fd, &mut info, libc::WEXITED | libc::WNOHANG) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid the pid and status fields are initialised.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None); // WNOHANG: not exited yet
        }
        Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitInfo {
                code: Some(status),
                signal: None,
            },
            _ => ExitInfo {
                code: None,
                signal: Some(status),
            },
        }))
    }
}

/// Rebuilds a session's PTY from its inherited master and child. Fails (and takes nothing
/// over) when the pid no longer names the recorded process.
pub fn adopt(master: OwnedFd, tree: ProcessTree) -> Result<SpawnedPty, PtyError> {
    let child = adopt_child(tree)?;
    let (reader, writer) = register_master(File::from(master))?;
    Ok(SpawnedPty {
        reader,
        writer,
        child,
    })
}

/// Takes over a child inherited across a reload (a session's or a headless run's), watched
/// through a pidfd. Fails when the pid no longer names the recorded process.
pub fn adopt_child(tree: ProcessTree) -> Result<PtyChild, PtyError> {
    let pidfd = PidFd::open(tree.leader).map_err(|source| PtyError::Wait {
        pid: tree.leader,
        source,
    })?;
    // Checked after the pidfd is open: from here on the pid cannot be reused under us.
    if tree.start_time.is_some() && process_start_time(tree.leader) != tree.start_time {
        return Err(PtyError::Wait {
            pid: tree.leader,
            source: io::Error::other("the pid now names another process"),
        });
    }
    Ok(PtyChild::adopted(tree, pidfd))
}
