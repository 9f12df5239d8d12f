//! The sessions supervisor: the registry of terminal and agent sessions, and what happens when
//! one of them fails.
//!
//! ```text
//! Sessions supervisor (this actor, child of the root supervisor)
//!   └── TerminalActor × N   one per session (kind terminal or agent_session), never restarted
//! ```
//!
//! It creates sessions (execution row, PTY spawn, actor), enforces `max_sessions`, keeps exited
//! sessions in memory for a while (their output can still be read), and handles failure: when a
//! session actor dies before recording its outcome, its process group is killed, its execution
//! is recorded `failed` with the reason, and the event is published. Every other session is left
//! untouched (ractor's default would stop this supervisor: STACK.md "Traps").

use crate::actors::events::EventType;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use slog::{error, info, Logger};

mod agent;
pub use agent::AgentSessionRequest;

use super::lanes::{within, LaneTicket};
use super::session_types::{
    new_session_id, Activity, SessionError, SessionExited, SessionInfo, SessionKind, SessionSpec,
};
use super::terminal::{SessionDeps, TerminalActor, TerminalArgs, TerminalMsg};
use crate::db::executions::{self, ExecutionStatus, NewExecution};
use crate::pty::{self, PtyCommand, PtyError};
use crate::replay::ReplayBuffer;
use crate::state::Metrics;

mod handle;
mod handover;
mod reap;
mod worktree;
pub use handle::Sessions;
pub use handover::{kind_name, Adopted};
pub use reap::{ReapPolicy, ReapReport};

/// Exited sessions kept in memory (with their replay) for late viewers; the oldest goes first.
const RECENTLY_EXITED_MAX: usize = 32;
/// How long a handler waits for a session actor's answer before giving up (503).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown lets the sessions' stop sequences run (SIGHUP, SIGTERM at 2 s, SIGKILL at
/// 4 s, then the output drain) before stopping what is left: inside the 10 s default grace.
const SHUTDOWN_STOP_DEADLINE: Duration = Duration::from_millis(5_000);

pub enum SessionsMsg {
    Create(
        Box<SessionSpec>,
        RpcReplyPort<Result<SessionInfo, SessionError>>,
    ),
    /// The agent's live session, or a new one (`true`); serialised here, so never two.
    AgentSession(
        Box<agent::AgentSessionRequest>,
        RpcReplyPort<Result<(SessionInfo, bool), SessionError>>,
    ),
    Lookup(
        SessionKind,
        String,
        RpcReplyPort<Option<ActorRef<TerminalMsg>>>,
    ),
    List(SessionKind, RpcReplyPort<Vec<ActorRef<TerminalMsg>>>),
    /// Forget an exited session (DELETE on it).
    Remove(SessionKind, String),
    /// From a session actor: its outcome is recorded.
    Exited(String),
    /// The restart policy's backoff for this agent's session is over: start it again.
    RestartAgent(i64),
    /// Shutdown: stop every session (they record `interrupted`), then reply.
    StopAll(RpcReplyPort<()>),
    /// Shutdown's stop sequences had their time: stop what is left and reply.
    StopAllDeadline,
    /// From the reaper: stop idle sessions, forget long-exited ones (`reap.rs`).
    Reap(ReapPolicy, RpcReplyPort<ReapReport>),
    /// Reload: every live session hands over (`handover.rs`); no new session starts after it.
    HandOver(RpcReplyPort<Vec<super::terminal::SessionHandover>>),
    /// The new image takes over the sessions of a handover record.
    Adopt(
        Vec<crate::handover::InheritedSession>,
        RpcReplyPort<Adopted>,
    ),
}

#[derive(Clone)]
pub struct SessionsArgs {
    /// Shared, not copied into every session (memory per session).
    pub deps: Arc<SessionDeps>,
    pub metrics: Arc<Metrics>,
    pub boot_id: Arc<str>,
    pub max_sessions: usize,
    /// Hooks of agent sessions report here (issue 16).
    pub approvals: crate::approvals::Approvals,
}

struct Entry {
    kind: SessionKind,
    /// Agent sessions: whose (one live session per agent, see `agent.rs`).
    agent_id: Option<i64>,
    actor: ActorRef<TerminalMsg>,
    execution_id: i64,
    tree: pty::ProcessTree,
    recorded: Arc<AtomicBool>,
    exited: bool,
    activity: Arc<Activity>,
    idle_timeout: Option<Duration>,
    /// When the outcome was recorded; the reaper forgets the session `exited_retention` later.
    exited_at: Option<std::time::Instant>,
    /// The reaper already asked it to stop (idle): asked once, not every tick.
    reaped: bool,
}

pub struct SessionsState {
    args: SessionsArgs,
    log: Logger,
    sessions: HashMap<String, Entry>,
    exited_order: VecDeque<String>,
    stopping: bool,
    /// Shutdown's reply, sent once every session has ended (or the deadline passed).
    stop_all_reply: Option<RpcReplyPort<()>>,
    /// Agent sessions' restart policy bookkeeping (see `agent.rs`).
    restarts: agent::Restarts,
}

pub struct SessionsSupervisor;

impl SessionsState {
    fn live(&self) -> usize {
        self.sessions.values().filter(|e| !e.exited).count()
    }

    fn counter(&self, kind: SessionKind) -> &AtomicUsize {
        match kind {
            SessionKind::Terminal => &self.args.metrics.sessions_terminals,
            SessionKind::AgentSession => &self.args.metrics.sessions_agents,
        }
    }

    async fn create(
        &mut self,
        me: &ActorRef<SessionsMsg>,
        mut spec: SessionSpec,
    ) -> Result<SessionInfo, SessionError> {
        let live = self.live();
        if live >= self.args.max_sessions {
            return Err(SessionError::TooMany { live });
        }
        if let Some((field, why)) = self.args.deps.lifecycle.caps_unenforceable(&spec.caps) {
            return Err(SessionError::CapUnavailable { field, why });
        }
        let id = new_session_id();
        let db = self.args.deps.db.clone();
        let new = NewExecution {
            kind: spec.kind.execution_type(),
            status: ExecutionStatus::Pending,
            task_id: spec.task_id,
            agent_id: spec.agent_id,
            boot_id: self.args.boot_id.to_string(),
            session_id: Some(id.clone()),
            cwd: Some(spec.cwd.display().to_string()),
            command: spec.argv.clone(),
            meta: match &spec.conversation_id {
                None => serde_json::json!({"name": spec.name}),
                Some(c) => serde_json::json!({"name": spec.name, "conversation_id": c}),
            },
        };
        let row = db.write(move |c| executions::insert(c, &new)).await?;
        self.give_worktree(row.id, &mut spec).await?;
        let command = PtyCommand {
            program: spec.argv[0].clone(),
            args: spec.argv[1..].to_vec(),
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            size: spec.size,
            cgroup: None,
            caps: spec.caps,
        };
        let lane = self.args.deps.lanes.pick();
        let spawn = |command: &PtyCommand| within(lane.as_ref(), || pty::spawn(command));
        let spawned = match self
            .args
            .deps
            .lifecycle
            .launch(row.id, command, spawn)
            .await
        {
            Ok(spawned) => spawned,
            Err(PtyError::CommandNotFound { program }) => {
                return Err(SessionError::CommandNotFound(program))
            }
            Err(other) => return Err(SessionError::Spawn(other.to_string())),
        };
        let pid = spawned.child.tree().leader;
        let kind = spec.kind;
        let tree = spawned.child.tree().clone();
        let ring = self.kept_ring(&id, &spec, row.id, &row.created_at, &tree, &spawned);
        let actor = self
            .admit(
                me,
                id.clone(),
                spec,
                spawned,
                (row.id, row.created_at),
                (ring, lane),
            )
            .await
            .map_err(|e| SessionError::Spawn(e.to_string()))?;
        info!(self.log, "session started"; "session_id" => &id, "pid" => pid,
              "kind" => ?kind, "execution_id" => row.id);
        match actor.call(TerminalMsg::Info, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(info)) => Ok(info),
            _ => Err(SessionError::Unavailable),
        }
    }

    /// Starts the actor that owns a spawned (or adopted) session and enters it in the table: the
    /// one place a live session comes to be, for a new start and a reload's take-over alike.
    /// `execution` is the record's id and creation time.
    async fn admit(
        &mut self,
        me: &ActorRef<SessionsMsg>,
        id: String,
        spec: SessionSpec,
        spawned: pty::SpawnedPty,
        (execution_id, created_at): (i64, String),
        (ring, lane): (Option<ReplayBuffer>, Option<LaneTicket>),
    ) -> Result<ActorRef<TerminalMsg>, ractor::SpawnErr> {
        let tree = spawned.child.tree().clone();
        let recorded = Arc::new(AtomicBool::new(false));
        let activity = Arc::new(Activity::new());
        let (kind, agent_id, idle_timeout) = (spec.kind, spec.agent_id, spec.idle_timeout);
        let runtime = lane.as_ref().map(|lane| lane.handle().clone());
        let args = Box::new(TerminalArgs {
            id: id.clone(),
            spec,
            spawned,
            execution_id,
            created_at,
            deps: self.args.deps.clone(),
            supervisor: me.clone(),
            recorded: recorded.clone(),
            activity: activity.clone(),
            ring,
            lane,
        });
        // If this fails, the args (and with them the child) are dropped: the group is killed.
        let start = Actor::spawn_linked(None, TerminalActor, args, me.get_cell());
        let (actor, _) = super::lanes::run_on(runtime, start)
            .await
            .map_err(|e| ractor::SpawnErr::StartupFailed(e.to_string().into()))??;
        self.counter(kind).fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            kind,
            agent_id,
            actor: actor.clone(),
            execution_id,
            tree,
            recorded,
            exited: false,
            activity,
            idle_timeout,
            exited_at: None,
            reaped: false,
        };
        self.sessions.insert(id, entry);
        Ok(actor)
    }

    fn on_exited(&mut self, id: String) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        if entry.exited {
            return;
        }
        entry.exited = true;
        entry.exited_at = Some(std::time::Instant::now());
        let kind = entry.kind;
        self.counter(kind).fetch_sub(1, Ordering::Relaxed);
        crate::handover::crash::forget(handover::kind_name(kind), &id);
        self.exited_order.push_back(id);
        while self.exited_order.len() > RECENTLY_EXITED_MAX {
            if let Some(old) = self.exited_order.pop_front() {
                self.forget(&old);
            }
        }
    }

    /// Stops every session actor (one still running is SIGKILLed and recorded `interrupted` by
    /// its `post_stop`) and answers shutdown.
    async fn finish_stop_all(&mut self) {
        let Some(reply) = self.stop_all_reply.take() else {
            return;
        };
        let entries: Vec<_> = self.sessions.drain().collect();
        for (_, entry) in &entries {
            let _ = entry
                .actor
                .stop_and_wait(Some("shutdown".into()), Some(CALL_TIMEOUT))
                .await;
            if !entry.exited {
                self.counter(entry.kind).fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _ = reply.send(());
    }

    /// Drops an exited session from memory (its actor stops; its viewers are closed).
    fn forget(&mut self, id: &str) {
        if let Some(entry) = self.sessions.remove(id) {
            self.exited_order.retain(|e| e != id);
            entry.actor.stop(Some("evicted".into()));
        }
    }

    /// A session actor stopped or died. If it had not recorded its outcome, do it for it.
    async fn on_actor_gone(&mut self, actor_id: ractor::ActorId, why: String) {
        let Some(id) = self
            .sessions
            .iter()
            .find(|(_, e)| e.actor.get_id() == actor_id)
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let Some(entry) = self.sessions.remove(&id) else {
            return;
        };
        self.exited_order.retain(|e| *e != id);
        if !entry.exited {
            self.counter(entry.kind).fetch_sub(1, Ordering::Relaxed);
        }
        if entry.recorded.load(Ordering::SeqCst) {
            return;
        }
        error!(self.log, "session actor died; killing its process tree";
               "session_id" => &id, "reason" => &why);
        if let Err(e) = entry.tree.signal(Signal::SIGKILL) {
            error!(self.log, "killing a failed session's processes failed"; "error" => %e);
        }
        let exec_id = entry.execution_id;
        let why = format!("session actor failed: {why}");
        self.args
            .deps
            .lifecycle
            .record_without_exit(exec_id, ExecutionStatus::Failed, why)
            .await;
        let exited = SessionExited {
            id: &id,
            kind: entry.kind,
            execution_id: exec_id,
            status: ExecutionStatus::Failed.as_str(),
            code: None,
            signal: None,
        };
        self.args
            .deps
            .events
            .publish(EventType::SessionExited, &exited);
    }
}

impl Actor for SessionsSupervisor {
    type Msg = SessionsMsg;
    type State = SessionsState;
    type Arguments = SessionsArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<SessionsMsg>,
        args: SessionsArgs,
    ) -> Result<SessionsState, ActorProcessingErr> {
        let log = args.deps.log.new(slog::o!("actor" => "sessions"));
        Ok(SessionsState {
            args,
            log,
            sessions: HashMap::new(),
            exited_order: VecDeque::new(),
            stopping: false,
            stop_all_reply: None,
            restarts: agent::Restarts::default(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<SessionsMsg>,
        msg: SessionsMsg,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SessionsMsg::Create(spec, reply) => {
                let result = if state.stopping {
                    Err(SessionError::Unavailable)
                } else {
                    state.create(&me, *spec).await
                };
                let _ = reply.send(result);
            }
            SessionsMsg::AgentSession(request, reply) => {
                let result = if state.stopping {
                    Err(SessionError::Unavailable)
                } else {
                    state.agent_session(&me, *request).await
                };
                let _ = reply.send(result);
            }
            SessionsMsg::Lookup(kind, id, reply) => {
                let actor = state
                    .sessions
                    .get(&id)
                    .filter(|e| e.kind == kind)
                    .map(|e| e.actor.clone());
                let _ = reply.send(actor);
            }
            SessionsMsg::List(kind, reply) => {
                let actors = state
                    .sessions
                    .values()
                    .filter(|e| e.kind == kind)
                    .map(|e| e.actor.clone())
                    .collect();
                let _ = reply.send(actors);
            }
            SessionsMsg::Remove(kind, id) => {
                if state
                    .sessions
                    .get(&id)
                    .is_some_and(|e| e.kind == kind && e.exited)
                {
                    state.forget(&id);
                }
            }
            SessionsMsg::Exited(id) => {
                state.on_exited(id.clone());
                state.apply_restart_policy(&me, &id).await;
                if state.stop_all_reply.is_some() && state.sessions.values().all(|e| e.exited) {
                    state.finish_stop_all().await;
                }
            }
            SessionsMsg::StopAllDeadline => state.finish_stop_all().await,
            SessionsMsg::RestartAgent(agent_id) => state.restart_agent(&me, agent_id).await,
            SessionsMsg::StopAll(reply) => {
                // Every live session gets DESIGN's stop sequence (SIGHUP, SIGTERM 2 s later,
                // SIGKILL 2 s after that) at once, in parallel; the reply goes out when the last
                // one has recorded its end, or when the sequences have had their time.
                state.stopping = true;
                state.stop_all_reply = Some(reply);
                let mut live = 0;
                for entry in state.sessions.values().filter(|e| !e.exited) {
                    live += 1;
                    let _ = entry.actor.cast(TerminalMsg::ShutdownStop);
                }
                if live == 0 {
                    state.finish_stop_all().await;
                } else {
                    me.send_after(SHUTDOWN_STOP_DEADLINE, || SessionsMsg::StopAllDeadline);
                }
            }
            SessionsMsg::Reap(policy, reply) => {
                let _ = reply.send(state.reap(&policy));
            }
            SessionsMsg::HandOver(reply) => {
                let _ = reply.send(state.hand_over().await);
            }
            SessionsMsg::Adopt(sessions, reply) => {
                let _ = reply.send(state.adopt(&me, sessions).await);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _me: ActorRef<SessionsMsg>,
        evt: SupervisionEvent,
        state: &mut SessionsState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor_id, why) = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell.get_id(),
                reason.clone().unwrap_or_else(|| "stopped".into()),
            ),
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            _ => return Ok(()),
        };
        state.on_actor_gone(actor_id, why).await;
        Ok(())
    }
}
