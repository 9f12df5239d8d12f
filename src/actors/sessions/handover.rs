//! Reload, on the sessions supervisor's side: hand every live session over (old image), and adopt
//! the sessions a handover record names (new image). A session that cannot be adopted is stopped
//! and recorded `interrupted` with the reason, as a shutdown would — never left running unknown.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::rpc::CallResult;
use ractor::ActorRef;
use slog::{info, warn};

use super::{SessionsMsg, SessionsState, CALL_TIMEOUT};
use crate::actors::session_types::{SessionKind, SessionSpec};
use crate::actors::terminal::{SessionHandover, TerminalMsg};
use crate::db::executions::ExecutionStatus;
use crate::handover::InheritedSession;
use crate::pty::{self, ProcessTree, SignalOutcome, WindowSize};
use crate::replay::ReplayBuffer;

/// What adoption did, for the report (detailed health).
#[derive(Debug, Default, Clone, Copy)]
pub struct Adopted {
    pub adopted: u64,
    pub failed: u64,
}

pub fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Terminal => "terminal",
        SessionKind::AgentSession => "agent_session",
    }
}

impl SessionsState {
    /// Asks every live session to hand over, all at once; returns those that did.
    pub(super) async fn hand_over(&mut self) -> Vec<SessionHandover> {
        self.stopping = true;
        let live: Vec<(String, ActorRef<TerminalMsg>)> = self
            .sessions
            .iter()
            .filter(|(_, e)| !e.exited)
            .map(|(id, e)| (id.clone(), e.actor.clone()))
            .collect();
        let calls = live.iter().map(|(_, actor)| {
            let actor = actor.clone();
            async move { actor.call(TerminalMsg::HandOver, Some(CALL_TIMEOUT)).await }
        });
        let replies = futures_util::future::join_all(calls).await;
        let mut out = Vec::new();
        for ((id, _), reply) in live.into_iter().zip(replies) {
            let Ok(CallResult::Success(Some(handed))) = reply else {
                continue;
            };
            if let Some(entry) = self.sessions.remove(&id) {
                self.counter(entry.kind).fetch_sub(1, Ordering::Relaxed);
                entry.actor.stop(Some("handed over".into()));
            }
            out.push(handed);
        }
        info!(self.log, "sessions handed over"; "sessions" => out.len());
        out
    }

    /// Takes over the sessions a handover record names.
    pub(super) async fn adopt(
        &mut self,
        me: &ActorRef<SessionsMsg>,
        sessions: Vec<InheritedSession>,
    ) -> Adopted {
        let mut report = Adopted::default();
        for s in sessions {
            let r = &s.record;
            let tree = ProcessTree {
                leader: r.pid,
                start_time: r.start_time,
                cgroup: r.cgroup.clone().map(Into::into),
            };
            let (id, execution_id) = (r.id.clone(), r.execution_id);
            match self.adopt_one(me, s, tree.clone()).await {
                Ok(()) => report.adopted += 1,
                Err(why) => {
                    report.failed += 1;
                    warn!(self.log, "could not adopt a session; stopping it";
                          "session_id" => &id, "error" => &why);
                    self.stop_unadoptable(execution_id, tree, why).await;
                }
            }
        }
        info!(self.log, "sessions adopted"; "adopted" => report.adopted, "failed" => report.failed);
        report
    }

    async fn adopt_one(
        &mut self,
        me: &ActorRef<SessionsMsg>,
        s: InheritedSession,
        tree: ProcessTree,
    ) -> Result<(), String> {
        let kept = s.record.clone();
        let r = s.record;
        let kind = match r.kind.as_str() {
            "terminal" => SessionKind::Terminal,
            "agent_session" => SessionKind::AgentSession,
            other => return Err(format!("unknown session kind {other:?}")),
        };
        let spec = SessionSpec {
            kind,
            name: r.name,
            argv: r.argv,
            cwd: r.cwd.into(),
            env: Vec::new(),
            size: WindowSize {
                cols: r.cols,
                rows: r.rows,
            },
            task_id: r.task_id,
            agent_id: r.agent_id,
            conversation_id: r.conversation_id,
            idle_timeout: r.idle_timeout_ms.map(Duration::from_millis),
            // The worktree and the cgroup's caps were made when the session first started.
            worktree: None,
            caps: Default::default(),
            size_held_by: r.size_held_by,
            title: r.title,
        };
        let mut ring = match s.mapped {
            Some(ring) => ring,
            None => ReplayBuffer::resume(self.args.deps.scrollback_bytes, r.ring_start, &s.ring),
        };
        // In systemd's fd store again (a reload made a new ring), before the master moves.
        crate::handover::crash::keep(&mut ring, &kept, s.master.as_fd(), &self.log);
        let lane = self.args.deps.lanes.pick();
        let spawned = super::within(lane.as_ref(), || pty::adopt(s.master, tree.clone()))
            .map_err(|e| e.to_string())?;
        self.args
            .deps
            .lifecycle
            .live
            .insert(r.execution_id, tree.clone());
        let execution = (r.execution_id, r.created_at);
        self.admit(me, r.id, spec, spawned, execution, (Some(ring), lane))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// A new session's ring; under systemd it goes into the fd store with the session's master
    /// and record at once, so the session survives a crash (`src/handover/crash.rs`).
    pub(super) fn kept_ring(
        &self,
        id: &str,
        spec: &SessionSpec,
        execution_id: i64,
        created_at: &str,
        tree: &ProcessTree,
        spawned: &pty::SpawnedPty,
    ) -> Option<ReplayBuffer> {
        let mut ring = ReplayBuffer::new(self.args.deps.scrollback_bytes);
        if crate::handover::fdstore::enabled() {
            let record =
                crate::handover::crash::session_record(id, spec, execution_id, created_at, tree);
            match spawned.writer.resizer().dup_master() {
                Ok(master) => {
                    crate::handover::crash::keep(&mut ring, &record, master.as_fd(), &self.log)
                }
                Err(e) => warn!(self.log, "cannot keep the session in the fd store";
                                "session_id" => id, "error" => %e),
            }
        }
        Some(ring)
    }

    /// A session the record named that cannot go on: killed, reaped, recorded.
    async fn stop_unadoptable(&mut self, execution_id: i64, tree: ProcessTree, why: String) {
        let pid = tree.leader;
        let killed = tokio::task::spawn_blocking(move || {
            let delivered = matches!(tree.signal(Signal::SIGKILL), Ok(SignalOutcome::Delivered));
            if delivered {
                // Still our child (same PID across the exec): reap it, or it stays a zombie.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            }
            let _ = tree.remove_cgroup();
        });
        let _ = killed.await;
        let why = format!("server reloaded: the session could not be taken over ({why})");
        let lifecycle = &self.args.deps.lifecycle;
        let status = ExecutionStatus::Interrupted;
        lifecycle
            .record_without_exit(execution_id, status, why)
            .await;
    }
}
