//! A session's process tree: every process that belongs to it, wherever it went.
//!
//! With a cgroup (`cgroup.rs`) membership is exact: everything the child started, even a
//! process that called `setsid()`, is in it, and `SIGKILL` is one write to `cgroup.kill`.
//! Without one, the tree is every process whose session id or process group is the leader's pid
//! (the leader called `setsid`, so both equal its pid), found by walking `/proc`. A pid is
//! never signalled on the strength of its number alone: if a process holds the leader's pid
//! with another start time, the pid was reused and nothing is sent; members must have started
//! no earlier than the leader. What escapes the walk: a process that called `setsid()` itself
//! (documented in docs/operations.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getpgrp, getsid, Pid};

use super::cgroup;
use super::signal::{read_stat, SignalOutcome};
use super::PtyError;

/// How long [`ProcessTree::kill_and_remove`] waits for killed processes to leave the cgroup.
const CGROUP_EMPTY_WAIT: Duration = Duration::from_secs(2);
/// How often it looks (the kernel offers no cheaper wait than polling or inotify).
const CGROUP_EMPTY_POLL: Duration = Duration::from_millis(10);

/// Everything needed to find a session's processes again, in this run or after a restart
/// (stored on the execution row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessTree {
    /// The leader's pid: also the session id and process group of everything it started.
    pub leader: i32,
    /// The leader's `starttime`, checked before anything is signalled by number.
    pub start_time: Option<u64>,
    /// The session's cgroup, when the server runs sessions in cgroups.
    pub cgroup: Option<PathBuf>,
}

impl ProcessTree {
    /// Sends `signal` to every process of the tree. `NoSuchGroup` when none is left,
    /// `PidReused` when the leader's pid now names another process (nothing is sent).
    pub fn signal(&self, signal: Signal) -> Result<SignalOutcome, PtyError> {
        match &self.cgroup {
            Some(dir) if dir.is_dir() => self.signal_cgroup(dir, signal),
            // A removed cgroup was empty (rmdir of a populated one fails): no /proc walk, which
            // every session end would otherwise pay once more when its child is dropped.
            Some(_) => Ok(SignalOutcome::NoSuchGroup),
            None => self.signal_session(signal),
        }
    }

    /// Removes the session's (empty) cgroup; a no-op without one.
    pub fn remove_cgroup(&self) -> std::io::Result<()> {
        match &self.cgroup {
            Some(dir) => cgroup::remove(dir),
            None => Ok(()),
        }
    }

    /// Ends what is left of the tree (`SIGKILL`) and removes its cgroup once it is empty (it
    /// empties within milliseconds; a process stuck in the kernel may keep it longer, and then
    /// the empty directory is left for the next start's reconciliation).
    pub async fn kill_and_remove(&self) -> Result<(), PtyError> {
        self.signal(Signal::SIGKILL)?;
        let Some(dir) = &self.cgroup else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + CGROUP_EMPTY_WAIT;
        while cgroup::populated(dir) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(CGROUP_EMPTY_POLL).await;
        }
        if super::caps::oom_kills(dir) > 0 {
            // Its memory cap ended it: the (empty) cgroup is the record of that until the end
            // is written (`Lifecycle::record_end` reads it, then removes it).
            return Ok(());
        }
        cgroup::remove(dir).map_err(|source| PtyError::Cgroup {
            dir: dir.clone(),
            source,
        })
    }

    fn signal_cgroup(&self, dir: &Path, signal: Signal) -> Result<SignalOutcome, PtyError> {
        if !cgroup::populated(dir) {
            return Ok(SignalOutcome::NoSuchGroup);
        }
        // `cgroup.kill` ends everything at once, including processes forked meanwhile; kernels
        // before 5.14 lack it and get the loop below.
        if signal == Signal::SIGKILL && cgroup::kill(dir).is_ok() {
            return Ok(SignalOutcome::Delivered);
        }
        self.send_each(cgroup::procs(dir), signal)
    }

    fn signal_session(&self, signal: Signal) -> Result<SignalOutcome, PtyError> {
        if self.is_the_servers_own() {
            return Err(PtyError::ForbiddenProcessGroup(self.leader));
        }
        match self.session_members() {
            None => Ok(SignalOutcome::PidReused),
            Some(members) => self.send_each(members, signal),
        }
    }

    /// Init, everyone, or the server's own session or group: never a session's tree.
    fn is_the_servers_own(&self) -> bool {
        let own_session = getsid(None).map(Pid::as_raw).unwrap_or(0);
        self.leader <= 1 || self.leader == own_session || self.leader == getpgrp().as_raw()
    }

    /// Processes in the leader's session or group; `None` if its pid was reused.
    fn session_members(&self) -> Option<Vec<i32>> {
        if self.is_the_servers_own() {
            return Some(Vec::new());
        }
        if let (Some(recorded), Some(now)) = (self.start_time, read_stat(self.leader)) {
            if now.start_time != recorded {
                return None;
            }
        }
        let entries = std::fs::read_dir("/proc").ok()?;
        let members = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| {
                read_stat(pid).is_some_and(|s| {
                    (s.session == self.leader || s.pgrp == self.leader)
                        && !s.zombie()
                        && self.start_time.is_none_or(|leader| s.start_time >= leader)
                })
            })
            .collect();
        Some(members)
    }

    fn send_each(&self, pids: Vec<i32>, signal: Signal) -> Result<SignalOutcome, PtyError> {
        let mut delivered = false;
        for pid in pids {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) => delivered = true,
                Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(PtyError::Signal {
                        pgid: self.leader,
                        signal,
                        source,
                    })
                }
            }
        }
        Ok(if delivered {
            SignalOutcome::Delivered
        } else {
            SignalOutcome::NoSuchGroup
        })
    }
}
