//! What a new image inherits: the record named by `CM_HANDOVER_FD` and the fds it names.

use std::collections::HashSet;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::record::{Record, SessionRecord};

/// The environment variable holding the record's fd number.
pub const ENV_FD: &str = "CM_HANDOVER_FD";
/// The listening socket's fd number, also outside the record: even when the record cannot be
/// read, the socket (and the connections waiting in its backlog) is kept.
pub const ENV_LISTENER: &str = "CM_HANDOVER_LISTENER";

/// A record read whole, with ownership of every fd it names.
#[derive(Debug)]
pub struct Inherited {
    pub record: Record,
    pub listener: std::net::TcpListener,
    pub sessions: Vec<InheritedSession>,
    /// Headless runs (`runs.rs`), taken by the run queue at start.
    pub runs: Vec<super::runs::InheritedRun>,
}

#[derive(Debug)]
pub struct InheritedSession {
    pub record: SessionRecord,
    pub master: OwnedFd,
    pub ring: Vec<u8>,
    /// The ring itself, when it came back from systemd's fd store after a crash.
    pub mapped: Option<crate::replay::ReplayBuffer>,
}

impl Inherited {
    /// The process trees of the inherited sessions.
    pub fn trees(&self) -> Vec<crate::pty::ProcessTree> {
        let runs = self.runs.iter().map(|r| &r.record);
        self.sessions
            .iter()
            .map(|s| (s.record.pid, s.record.start_time, &s.record.cgroup))
            .chain(runs.map(|r| (r.pid, r.start_time, &r.cgroup)))
            .map(|(leader, start_time, cgroup)| crate::pty::ProcessTree {
                leader,
                start_time,
                cgroup: cgroup.clone().map(Into::into),
            })
            .collect()
    }

    /// The pids of every inherited child (sessions and runs).
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        let runs = self.runs.iter().map(|r| r.record.pid);
        self.sessions.iter().map(|s| s.record.pid).chain(runs)
    }
}

/// The new image could not start: ends the inherited sessions (killed, reaped), so none is left
/// running unknown; the next start reconciles their records. Blocking.
pub fn stop_inherited(trees: &[crate::pty::ProcessTree]) {
    for tree in trees {
        if tree.signal(nix::sys::signal::Signal::SIGKILL).is_ok() {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(tree.leader), None);
        }
    }
}

/// Why a record could not be read; the sessions it would have named are stopped.
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
pub struct Unreadable {
    pub why: String,
    /// The listening socket, when its own variable still named one.
    pub listener: Option<std::net::TcpListener>,
}

fn unreadable(why: String) -> Unreadable {
    Unreadable {
        why,
        listener: None,
    }
}

/// Reads the record this image was executed with, if any. Call before anything opens a file:
/// when the record cannot be read, every inherited fd (≥ 3) is closed, so no PTY master of an
/// unknown session is held open.
pub fn take_from_env() -> Option<Result<Inherited, Unreadable>> {
    let raw = std::env::var(ENV_FD).ok()?;
    let listener_fd = std::env::var(ENV_LISTENER).ok();
    std::env::remove_var(ENV_FD);
    std::env::remove_var(ENV_LISTENER);
    let result = read(&raw);
    let Err(mut failed) = result else {
        return Some(result);
    };
    let listener = listener_fd
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|fd| *fd >= 3 && is_listening_socket(*fd));
    // Every other inherited fd is closed: nothing opened any before this.
    let (below, above) = match listener {
        Some(fd) => (fd as u32 - 1, fd as u32 + 1),
        None => (u32::MAX, 3),
    };
    // SAFETY: closes inherited fds that nothing in this process uses.
    unsafe {
        if below >= 3 {
            libc::syscall(libc::SYS_close_range, 3u32, below, 0u32);
        }
        libc::syscall(libc::SYS_close_range, above, u32::MAX, 0u32);
    }
    failed.listener = listener.and_then(|fd| own(fd, &mut HashSet::new()).ok().map(Into::into));
    Some(Err(failed))
}

/// Whether `fd` is a socket in the listening state.
fn is_listening_socket(fd: RawFd) -> bool {
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int through the pointer, both outlive the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && accepting == 1
}

fn read(raw: &str) -> Result<Inherited, Unreadable> {
    let fd: RawFd = raw
        .parse()
        .map_err(|_| unreadable(format!("{ENV_FD}={raw:?} is not an fd number")))?;
    let mut seen = HashSet::new();
    let record_fd = own(fd, &mut seen)?;
    let (record, blobs) = Record::from_fd(record_fd).map_err(|e| unreadable(e.to_string()))?;
    let listener = std::net::TcpListener::from(own(record.listener_fd, &mut seen)?);
    listener
        .local_addr()
        .map_err(|e| unreadable(format!("the listening socket is not one: {e}")))?;
    let mut sessions = Vec::with_capacity(record.sessions.len());
    for s in &record.sessions {
        let master = own(s.master_fd, &mut seen)?;
        let at = s.ring_blob_at as usize;
        sessions.push(InheritedSession {
            record: s.clone(),
            master,
            ring: blobs[at..at + s.ring_len as usize].to_vec(),
            mapped: None,
        });
    }
    let runs = super::runs::take_runs(&record.runs, &blobs, &mut seen)?;
    Ok(Inherited {
        record,
        listener,
        sessions,
        runs,
    })
}

/// Takes ownership of an inherited fd after checking that it is open and named only once.
pub(super) fn own(fd: RawFd, seen: &mut HashSet<RawFd>) -> Result<OwnedFd, Unreadable> {
    // SAFETY: F_GETFD only reads the fd's flags.
    if fd < 3 || !seen.insert(fd) || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(unreadable(format!(
            "the record names fd {fd}, which is not an open inherited fd"
        )));
    }
    // SAFETY: checked open, named once in the record, and nothing else in this process uses it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Close-on-exec again: a child must never inherit it.
    // SAFETY: F_SETFD on the fd just taken over.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(owned)
}
