//! systemd's file descriptor store: what lets sessions survive a crash (DESIGN "Sessions outlive
//! the server process").
//!
//! Under systemd (`$NOTIFY_SOCKET` set) every session's PTY master and its scrollback ring (a
//! memfd mapping, `src/replay/mapping.rs`, which also holds the session's record) are sent to the
//! store as soon as the session exists (`FDSTORE=1`, `FDNAME=cm.<kind>.<id>.pty|ring`, the fd
//! as SCM_RIGHTS), and removed when it ends (`FDSTOREREMOVE=1`). When the main process dies
//! (`kill -9`, OOM, abort), systemd keeps them; the restarted server receives them at fd 3…
//! (`$LISTEN_FDS`, `$LISTEN_FDNAMES`, `$LISTEN_PID`) and adopts the sessions whose child is
//! still the same process (`take_listen_fds`, `crash.rs`). Without `$NOTIFY_SOCKET` every call
//! is a no-op and a crash reconciles as before.

use std::collections::HashSet;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use nix::sys::socket::{sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag};
use nix::sys::socket::{SockType, UnixAddr};

/// The fd names of one session: `cm.<kind>.<id>.pty` and `cm.<kind>.<id>.ring`.
pub fn fd_name(kind: &str, id: &str, what: &str) -> String {
    format!("cm.{kind}.{id}.{what}")
}

/// Splits a name made by [`fd_name`] into kind, id and what.
pub fn parse_fd_name(name: &str) -> Option<(&str, &str, &str)> {
    let rest = name.strip_prefix("cm.")?;
    let (kind, rest) = rest.split_once('.')?;
    let (id, what) = rest.rsplit_once('.')?;
    Some((kind, id, what))
}

/// Names stored by this process and not removed since (detailed health, `/metrics`).
static HELD: Mutex<Option<HashSet<String>>> = Mutex::new(None);
/// Sends that failed (logged by the caller).
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Whether a service manager listens (`$NOTIFY_SOCKET`).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// Fds this process holds in the store.
pub fn held() -> u64 {
    HELD.lock()
        .map(|h| h.as_ref().map_or(0, |h| h.len()) as u64)
        .unwrap_or(0)
}

/// Failed sends to the store since start.
pub fn failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

fn send(text: &str, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let bytes = path.as_encoded_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => UnixAddr::new_abstract(name),
        None => UnixAddr::new(bytes),
    }?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let iov = [IoSlice::new(text.as_bytes())];
    let raw: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
        Vec::new()
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    sendmsg(
        sock.as_raw_fd(),
        &iov,
        &cmsgs,
        MsgFlags::empty(),
        Some(&addr),
    )?;
    Ok(())
}

/// Puts `fd` into the store under `name`, replacing what was stored under it (a reload makes a
/// new ring for the same session). A no-op without a service manager.
pub fn store(name: &str, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let result = send(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), None)
        .and_then(|()| send(&format!("FDSTORE=1\nFDNAME={name}"), Some(fd)));
    match &result {
        Ok(()) => {
            if let Ok(mut h) = HELD.lock() {
                h.get_or_insert_with(HashSet::new).insert(name.to_string());
            }
        }
        Err(_) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

/// Takes the fds stored under `name` out of the store (the session ended).
pub fn remove(name: &str) -> std::io::Result<()> {
    if !enabled() {
        return Ok(());
    }
    if let Ok(mut h) = HELD.lock() {
        if let Some(h) = h.as_mut() {
            h.remove(name);
        }
    }
    send(&format!("FDSTOREREMOVE=1\nFDNAME={name}"), None).inspect_err(|_| {
        FAILURES.fetch_add(1, Ordering::Relaxed);
    })
}

/// The fds the service manager passed to this process (`$LISTEN_FDS` at 3…, named by
/// `$LISTEN_FDNAMES`), if `$LISTEN_PID` is ours. The variables are removed, so a reload
/// (same PID) does not take them twice. Call before anything opens a file.
pub fn take_listen_fds() -> Vec<(String, OwnedFd)> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
    for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(var);
    }
    if pid.and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return Vec::new();
    }
    let Some(count) = count.and_then(|c| c.parse::<i32>().ok()) else {
        return Vec::new();
    };
    let mut names = names.split(':');
    (0..count.clamp(0, 65_536))
        .filter_map(|i| {
            let fd = 3 + i;
            let name = names.next().unwrap_or("unknown").to_string();
            // SAFETY: F_GETFD only reads the flags of an fd number.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return None;
            }
            // SAFETY: passed to us by the service manager for this process; nothing else in the
            // process knows the number yet.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: F_SETFD on the fd just taken: a child must never inherit it.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            Some((name, owned))
        })
        .collect()
}
