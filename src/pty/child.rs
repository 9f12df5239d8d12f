//! A started child: its pid and recorded start time, waiting for and reaping it, and stopping its
//! whole process tree, also when it is dropped.

use std::path::PathBuf;

use nix::sys::signal::Signal;

use super::signal::{process_start_time, SignalOutcome};
use super::{ExitInfo, ProcessTree, PtyError};

/// The child process, leader of its own session and process group.
///
/// Dropping it sends `SIGKILL` to its whole process tree (start-time checked), so a session
/// cannot leave processes behind even when its owner panics.
#[derive(Debug)]
pub struct PtyChild {
    child: tokio::process::Child,
    pid: i32,
    tree: ProcessTree,
    exit: Option<ExitInfo>,
}

impl PtyChild {
    /// Wraps a child just spawned in its own session (and `cgroup`), recording its start time
    /// for later signals.
    pub(super) fn new(child: tokio::process::Child, cgroup: Option<PathBuf>) -> PtyChild {
        // A child we have not waited for keeps its pid, so `id()` is always set here.
        let pid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .unwrap_or(0);
        PtyChild {
            tree: ProcessTree {
                leader: pid,
                start_time: process_start_time(pid),
                cgroup,
            },
            child,
            pid,
            exit: None,
        }
    }

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
        self.tree.start_time
    }

    /// Every process of the session: what its stops signal.
    pub fn tree(&self) -> &ProcessTree {
        &self.tree
    }

    /// How the child ended, once [`wait`](Self::wait) saw it.
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

    /// Signals the child's whole process tree (background jobs included).
    pub fn signal_tree(&self, signal: Signal) -> Result<SignalOutcome, PtyError> {
        self.tree.signal(signal)
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        // Best effort: Drop has no one to report to, and ESRCH (already gone) is the usual case.
        let _ = self.signal_tree(Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::spawn;
    use crate::pty::test_support::{read_to_end, read_until, sh, within};

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
}
