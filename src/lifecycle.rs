//! The life of a session's processes, written once for terminals, agent sessions and headless
//! runs:
//!
//! ```text
//! launch ── cgroup ── spawn (PTY or pipes) ── record running + announce ── register (LiveTrees)
//! wait_child ── reap the leader ── SIGKILL the rest of its tree, remove its cgroup ── report
//! drain (keep_draining) ── record_end (finish + announce + deregister)
//! stop: SIGHUP ─STOP_STEP─▶ SIGTERM ─STOP_STEP─▶ SIGKILL (next_stop_signal), to the whole tree
//! ```
//!
//! The owners (the terminal actor, the run actor) decide *what* an end means (cancelled, timed
//! out, the agent's result); this module does the steps every kind shares, so they cannot drift.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use slog::{error, warn, Logger};

use crate::actors::db::Db;
use crate::actors::events::{EventType, Events};
use crate::db::executions::{self, ExecutionStatus, ExecutionSummary, Finish};
use crate::db::DbError;
use crate::pty::{
    caps, CgroupRoot, ExitInfo, ProcessTree, PtyChild, PtyCommand, PtyError, SpawnedPiped,
    SpawnedPty,
};

/// Pause between the steps of a stop (SIGHUP, SIGTERM, SIGKILL): DESIGN "Processes".
pub const STOP_STEP: Duration = Duration::from_secs(2);
/// After the leader exits, output is drained until it has been quiet this long with nothing
/// left unread (a background job may keep the terminal or pipe open, so its end cannot be
/// relied on)...
pub const DRAIN_QUIET: Duration = Duration::from_millis(500);
/// ...but for no longer than this (a leftover may also keep printing).
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

/// The signal a stop sends `STOP_STEP` after `sent`, if the leader is still there.
pub fn next_stop_signal(sent: Signal) -> Option<Signal> {
    match sent {
        Signal::SIGHUP => Some(Signal::SIGTERM),
        Signal::SIGTERM => Some(Signal::SIGKILL),
        _ => None,
    }
}

/// One step of the stop ladder, for any session's actor: `send(signal)` now, and `next` with
/// the following signal `STOP_STEP` later (SIGHUP → SIGTERM → SIGKILL). The actor's handler
/// for `next` calls this again while the child is still there.
pub fn stop_step<M: ractor::Message>(
    me: &ractor::ActorRef<M>,
    signal: Signal,
    send: impl FnOnce(Signal),
    next: fn(Signal) -> M,
) {
    send(signal);
    if let Some(following) = next_stop_signal(signal) {
        me.send_after(STOP_STEP, move || next(following));
    }
}

/// Whether the exit drain goes on: bytes still unread or arriving, within [`DRAIN_MAX`] of the exit.
pub fn keep_draining(exited_at: Instant, last_output: Instant, unread_bytes: usize) -> bool {
    (unread_bytes > 0 || last_output.elapsed() < DRAIN_QUIET) && exited_at.elapsed() < DRAIN_MAX
}

/// Starts the task that waits for `child` ([`wait_child`]) and hands its exit to `exited` (the
/// actor's cast). Mapped, not awaited inside another block: that would hold the waiting future
/// twice for the session's whole life.
pub fn spawn_waiter<F>(child: PtyChild, log: Logger, exited: F) -> tokio::task::JoinHandle<()>
where
    F: FnOnce(Result<ExitInfo, String>) + Send + 'static,
{
    tokio::spawn(futures_util::FutureExt::map(wait_child(child, log), exited))
}

/// Waits for the leader and reaps it, then ends what is left of its tree (background jobs,
/// processes that ignore SIGHUP) and removes its cgroup, so the session is over when its owner
/// hears of the exit. Dropping the child afterwards is one more, harmless, SIGKILL.
///
/// A block, not an `async fn`, and the ending boxed: this future lives as long as the session,
/// and an `async fn` would hold a second copy of the child (memory per session).
#[allow(clippy::manual_async_fn)] // on purpose: see the doc above
fn wait_child(
    mut child: PtyChild,
    log: Logger,
) -> impl std::future::Future<Output = Result<ExitInfo, String>> + Send {
    async move {
        let exit = child.wait().await.map_err(|e| e.to_string());
        if let Err(e) = Box::pin(child.tree().kill_and_remove()).await {
            warn!(log, "ending the rest of the session's processes failed"; "error" => %e);
        }
        exit
    }
}

/// What was spawned: a PTY (terminals, agent sessions) or pipes (headless runs).
pub trait Spawned {
    fn child(&self) -> &PtyChild;
}

impl Spawned for SpawnedPty {
    fn child(&self) -> &PtyChild {
        &self.child
    }
}

impl Spawned for SpawnedPiped {
    fn child(&self) -> &PtyChild {
        &self.child
    }
}

/// What starting and ending a session's process needs; one per server, cloned into its owners.
#[derive(Clone)]
pub struct Lifecycle {
    pub db: Db,
    pub events: Events,
    pub log: Logger,
    pub boot_id: Arc<str>,
    /// Where session cgroups go; `None` runs sessions without (the `/proc` walk).
    pub cgroups: Option<CgroupRoot>,
    pub live: Arc<LiveTrees>,
}

impl Lifecycle {
    /// Starts the process of execution `id` (already recorded `pending`) in a cgroup of its
    /// own, records it `running` and announces it, and registers it for the last resort. A
    /// failure to start is recorded `failed` with the reason, and returned.
    pub async fn launch<S: Spawned>(
        &self,
        id: i64,
        mut command: PtyCommand,
        spawn: impl FnOnce(&PtyCommand) -> Result<S, PtyError>,
    ) -> Result<S, PtyError> {
        let spawned = self.cgroup_for(id, &command.caps).and_then(|cgroup| {
            command.cgroup = cgroup;
            spawn(&command)
        });
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(e) => {
                if let Some(dir) = &command.cgroup {
                    let _ = std::fs::remove_dir(dir);
                }
                self.record_without_exit(id, ExecutionStatus::Failed, e.to_string())
                    .await;
                return Err(e);
            }
        };
        let tree = spawned.child().tree().clone();
        self.live.insert(id, tree.clone());
        let started = self
            .db
            .write(move |c| {
                let (pid, start) = (tree.leader as i64, tree.start_time.map(|t| t as i64));
                executions::mark_running(c, id, pid, start, pid)?;
                if let Some(dir) = &tree.cgroup {
                    executions::record_cgroup(c, id, &dir.display().to_string())?;
                }
                executions::get_summary(c, id)
            })
            .await;
        // The child runs now: a failed DB write is logged, not a reason to kill it.
        match started {
            Ok(Some(row)) => self.events.publish(EventType::ExecutionStarted, &row),
            Ok(None) => {}
            Err(e) => {
                error!(self.log, "recording a start failed"; "execution_id" => id, "error" => %e)
            }
        }
        Ok(spawned)
    }

    /// The session's cgroup, created empty with its caps written; `None` without cgroups.
    fn cgroup_for(
        &self,
        id: i64,
        caps: &caps::Caps,
    ) -> Result<Option<std::path::PathBuf>, PtyError> {
        let Some(root) = &self.cgroups else {
            if caps.is_empty() {
                return Ok(None);
            }
            // Refused before the session was recorded (`caps_unenforceable`); never run uncapped.
            return Err(PtyError::Cgroup {
                dir: std::path::PathBuf::new(),
                source: std::io::Error::other("caps asked, but sessions run without cgroups"),
            });
        };
        let dir = root
            .create(&format!("{}-{id}", self.boot_id))
            .map_err(|source| PtyError::Cgroup {
                dir: root.dir().to_path_buf(),
                source,
            })?;
        caps::apply(&dir, caps).map_err(|source| {
            let _ = std::fs::remove_dir(&dir);
            PtyError::Cgroup {
                dir: dir.clone(),
                source,
            }
        })?;
        Ok(Some(dir))
    }

    /// Why `caps` cannot be enforced here, as `(field, message)`; `None` when they can (or
    /// none is asked). Checked before a session is recorded, so the request is refused (422).
    pub fn caps_unenforceable(&self, caps: &caps::Caps) -> Option<(&'static str, String)> {
        let first = if caps.memory_max_bytes.is_some() {
            "memory_max_bytes"
        } else {
            "pids_max"
        };
        match &self.cgroups {
            _ if caps.is_empty() => None,
            None => Some((
                first,
                "caps need session cgroups, and this server runs sessions without them \
                 (session_cgroups; see docs/operations.md)"
                    .into(),
            )),
            Some(root) => root
                .controllers()
                .missing_for(caps)
                .map(|(field, controller)| {
                    (
                        field,
                        format!(
                        "the cgroup v2 {controller} controller is not delegated to this server's \
                         session cgroups ({}), so this cap cannot be enforced (see \
                         docs/operations.md)",
                        root.dir().display()
                    ),
                    )
                }),
        }
    }

    /// Records the end of an execution that has no exit of its own to tell (it never started,
    /// its actor failed, it could not be taken over): [`Self::record_end`] with only a reason.
    pub async fn record_without_exit(&self, id: i64, status: ExecutionStatus, reason: String) {
        self.record_end(id, Finish::without_exit(status, reason), |_| Ok(()))
            .await;
    }

    /// Records how execution `id` ended (with `also`, in the same write), announces
    /// `execution.finished`, and forgets its tree. Returns the row when this call ended it;
    /// `None` when it had already ended (the first outcome recorded is the one kept).
    pub async fn record_end(
        &self,
        id: i64,
        finish: Finish,
        also: impl FnOnce(&rusqlite::Connection) -> Result<(), DbError> + Send + 'static,
    ) -> Option<ExecutionSummary> {
        let mut finish = finish;
        // A cgroup left after the tree ended is the record of a cap kill (`ProcessTree::
        // kill_and_remove`): say so unless the end already has a reason, then remove it.
        if let Some(tree) = self.live.remove(id) {
            if let Some(why) = tree.cgroup.as_deref().and_then(caps::cap_kill_reason) {
                if finish.status == ExecutionStatus::Failed && finish.reason.is_none() {
                    finish.reason = Some(why);
                }
                let _ = tree.remove_cgroup();
            }
        }
        let row = self
            .db
            .write(move |c| {
                also(c)?;
                crate::db::approvals::settle_attention(c, id)?;
                if executions::finish(c, id, &finish)? {
                    executions::get_summary(c, id)
                } else {
                    Ok(None)
                }
            })
            .await;
        match row {
            Ok(Some(row)) => {
                self.events
                    .publish_about(EventType::ExecutionFinished, Some(id), None, &row);
                crate::approvals::publish_settled(&self.events, &row);
                Some(row)
            }
            Ok(None) => None,
            Err(e) => {
                error!(self.log, "recording an end failed"; "execution_id" => id, "error" => %e);
                None
            }
        }
    }
}

/// The trees of this run's live sessions and runs, by execution id: what the shutdown's last
/// resort kills. A std mutex, held only for an insert, a remove or a copy (never across `.await`).
#[derive(Debug, Default)]
pub struct LiveTrees(Mutex<HashMap<i64, ProcessTree>>);

impl LiveTrees {
    pub fn insert(&self, execution_id: i64, tree: ProcessTree) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(execution_id, tree);
        }
    }

    pub fn remove(&self, execution_id: i64) -> Option<ProcessTree> {
        self.0.lock().ok()?.remove(&execution_id)
    }

    pub fn snapshot(&self) -> Vec<ProcessTree> {
        self.0
            .lock()
            .map(|map| map.values().cloned().collect())
            .unwrap_or_default()
    }
}
