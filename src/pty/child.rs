//! A started child: its pid and recorded start time, waiting for and reaping it, and stopping its
//! whole process tree, also when it is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::Signal;

use super::signal::{process_start_time, SignalOutcome};
use super::{ExitInfo, ProcessTree, PtyError};

/// The child process, leader of its own session and process group.
///
/// Dropping it sends `SIGKILL` to its whole process tree (start-time checked), so a session
/// cannot leave processes behind even when its owner panics.
#[derive(Debug)]
pub struct PtyChild {
    waitable: Waitable,
    pid: i32,
    tree: ProcessTree,
    exit: Option<ExitInfo>,
    /// Set by [`ChildKeeper::keep`]: the child is handed over to the next image (reload), so
    /// dropping this handle neither kills nor reaps it.
    kept: Arc<AtomicBool>,
}

/// How the child is waited for: spawned by this image (tokio's handle), or inherited from the
/// image before a reload (a pidfd; it is still our child, so `waitid` gives the exact status).
#[derive(Debug)]
enum Waitable {
    Spawned(Option<tokio::process::Child>),
    Adopted(super::adopt::PidFd),
}

/// Lets the owner of a child that a task is waiting on hand it over instead of killing it.
#[derive(Debug, Clone)]
pub struct ChildKeeper(Arc<AtomicBool>);

impl ChildKeeper {
    /// From now on, dropping the child leaves it running and unreaped (for the next image).
    pub fn keep(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
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
            waitable: Waitable::Spawned(Some(child)),
            pid,
            exit: None,
            kept: Arc::default(),
        }
    }

    /// A child inherited across a reload (still our child), watched through `pidfd`.
    pub(super) fn adopted(tree: ProcessTree, pidfd: super::adopt::PidFd) -> PtyChild {
        PtyChild {
            pid: tree.leader,
            tree,
            waitable: Waitable::Adopted(pidfd),
            exit: None,
            kept: Arc::default(),
        }
    }

    /// The handle that hands this child over instead of killing it when it is dropped.
    pub fn keeper(&self) -> ChildKeeper {
        ChildKeeper(self.kept.clone())
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
        let pid = self.pid;
        let wait_error = |source| PtyError::Wait { pid, source };
        let exit = match &mut self.waitable {
            Waitable::Spawned(Some(child)) => {
                ExitInfo::from(child.wait().await.map_err(wait_error)?)
            }
            Waitable::Spawned(None) => return Err(wait_error(std::io::ErrorKind::NotFound.into())),
            Waitable::Adopted(pidfd) => pidfd.wait().await.map_err(wait_error)?,
        };
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
        if self.kept.load(Ordering::SeqCst) {
            // Handed over: tokio must not reap it in the background before the exec.
            if let Waitable::Spawned(child) = &mut self.waitable {
                std::mem::forget(child.take());
            }
            return;
        }
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
