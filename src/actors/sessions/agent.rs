//! Agent sessions in the sessions supervisor: "the agent's live session, or start one".
//!
//! Get-or-create runs inside the supervisor's handler, one message at a time, so 20 concurrent
//! requests for one agent find the session the first one started: there is no window between
//! "none is live" and "one is registered" in which another request can look. The conversation
//! id is read and (after a successful start) marked started here too, so the first start passes
//! the agent's `first` session args and every later start its `resume` args.
//!
//! The restart policy (`on-failure`, backoff, intensity limit) is also here: [`Restarts`].

use crate::actors::events::EventType;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::ActorRef;
use slog::{info, warn};

use super::{SessionsMsg, SessionsState, CALL_TIMEOUT};
use crate::actors::session_types::{SessionError, SessionInfo, SessionKind, SessionSpec};
use crate::actors::terminal::TerminalMsg;
use crate::agent_cli;
use crate::db::agents::{self, AgentDef, AgentError, RestartPolicyKind};
use crate::pty::WindowSize;

/// A validated request: the agent's definition as stored, its working directory checked.
#[derive(Debug, Clone)]
pub struct AgentSessionRequest {
    pub agent_id: i64,
    pub def: AgentDef,
    /// Canonical, inside the allowed roots.
    pub cwd: PathBuf,
    pub size: WindowSize,
    /// `isolation: "worktree"`: each session it starts (a restart too) gets its own worktree.
    pub worktree: Option<crate::isolation::WorktreeRequest>,
}

impl From<AgentError> for SessionError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Db(db) => SessionError::Db(db),
            other => SessionError::Spawn(other.to_string()),
        }
    }
}

impl SessionsState {
    fn live_agent_session(&self, agent_id: i64) -> Option<ActorRef<TerminalMsg>> {
        self.sessions
            .values()
            .find(|e| {
                e.kind == SessionKind::AgentSession && e.agent_id == Some(agent_id) && !e.exited
            })
            .map(|e| e.actor.clone())
    }

    pub(super) async fn agent_session(
        &mut self,
        me: &ActorRef<SessionsMsg>,
        req: AgentSessionRequest,
    ) -> Result<(SessionInfo, bool), SessionError> {
        if let Some(actor) = self.live_agent_session(req.agent_id) {
            return match actor.call(TerminalMsg::Info, Some(CALL_TIMEOUT)).await {
                Ok(CallResult::Success(info)) => Ok((info, false)),
                _ => Err(SessionError::Unavailable),
            };
        }
        self.remember_request(&req);
        let agent_id = req.agent_id;
        let db = self.args.deps.db.clone();
        let (conversation, resume) = db
            .write(move |c| agents::conversation(c, agent_id))
            .await
            .map_err(SessionError::from)?;
        let hooks = match agent_cli::speaks_claude_hooks(&req.def) {
            true => {
                let timeout = req.def.approval_timeout_secs;
                self.args.approvals.prepare(agent_id, timeout, false).await
            }
            false => None,
        };
        let mut argv = agent_cli::session_argv(&req.def, &conversation, resume);
        let mut env: Vec<(String, String)> = req.def.env.clone().into_iter().collect();
        if let Some(h) = &hooks {
            h.apply(&mut argv, &mut env);
        }
        let spec = SessionSpec {
            kind: SessionKind::AgentSession,
            name: Some(req.def.name.clone()),
            argv,
            cwd: req.cwd,
            env,
            size: req.size,
            task_id: None,
            agent_id: Some(agent_id),
            conversation_id: Some(conversation),
            // The agent's own idle timeout (1800 s unless its definition says otherwise); 0 = never.
            idle_timeout: (req.def.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(req.def.idle_timeout_secs)),
            worktree: req.worktree,
            caps: crate::pty::Caps {
                memory_max_bytes: req.def.memory_max_bytes,
                pids_max: req.def.pids_max,
            },
            size_held_by: None,
            title: None,
        };
        let info = match self.create(me, spec).await {
            Ok(info) => info,
            Err(e) => {
                if let Some(h) = hooks {
                    self.args.approvals.ended(h, None).await;
                }
                return Err(e);
            }
        };
        if let Some(h) = &hooks {
            self.args
                .approvals
                .started(h, info.execution_id, Some(info.id.clone()))
                .await;
        }
        if !resume {
            if let Err(e) = db
                .write(move |c| agents::mark_conversation_started(c, agent_id))
                .await
            {
                warn!(self.log, "recording the conversation start failed";
                      "agent_id" => agent_id, "error" => %e);
            }
        }
        Ok((info, true))
    }
}

/// The restart policy of agent sessions (`on-failure`), in one place: a session of an agent
/// with that policy that ends `failed` is started again — resuming its conversation — after
/// a backoff of `backoff_initial_ms` doubling up to `backoff_max_ms`; once `max_restarts`
/// restarts happened within `window_secs`, it is left failed and `agent_session.failed` says
/// why. A session stopped by a user (`cancelled`) or ending cleanly is never restarted.
#[derive(Default)]
pub struct Restarts {
    /// Per agent: the request that started it, and when it was restarted (inside the window).
    agents: HashMap<i64, RestartBook>,
}

struct RestartBook {
    request: AgentSessionRequest,
    restarted_at: VecDeque<Instant>,
}

/// Agents whose restart history is kept at most (each entry is one definition).
const RESTART_BOOKS_MAX: usize = 1024;

impl SessionsState {
    pub(super) async fn apply_restart_policy(&mut self, me: &ActorRef<SessionsMsg>, id: &str) {
        let Some((actor, agent_id)) = self.sessions.get(id).and_then(|e| {
            (e.kind == SessionKind::AgentSession)
                .then_some(())
                .and(e.agent_id.map(|a| (e.actor.clone(), a)))
        }) else {
            return;
        };
        let Some(book) = self.restarts.agents.get_mut(&agent_id) else {
            return;
        };
        let policy = book.request.def.restart.clone();
        if policy.policy != RestartPolicyKind::OnFailure || self.stopping {
            return;
        }
        let status = match actor.call(TerminalMsg::Info, Some(CALL_TIMEOUT)).await {
            Ok(CallResult::Success(info)) => info.status,
            _ => return,
        };
        if status != "failed" {
            return;
        }
        let window = Duration::from_secs(policy.window_secs);
        let now = Instant::now();
        while book
            .restarted_at
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            book.restarted_at.pop_front();
        }
        let done = book.restarted_at.len() as u32;
        if done >= policy.max_restarts {
            let reason = format!(
                "the session failed {} times within {} s (restart.max_restarts = {}); not \
                 restarting it again",
                done + 1,
                policy.window_secs,
                policy.max_restarts
            );
            warn!(self.log, "agent session keeps failing; giving up"; "agent_id" => agent_id,
                  "restarts" => done);
            self.args.deps.events.publish(
                EventType::AgentSessionFailed,
                &serde_json::json!({"agent_id": agent_id, "session_id": id, "reason": reason}),
            );
            self.restarts.agents.remove(&agent_id);
            return;
        }
        let delay_ms = policy
            .backoff_initial_ms
            .saturating_mul(1u64 << done.min(32))
            .min(policy.backoff_max_ms);
        book.restarted_at.push_back(now);
        info!(self.log, "agent session failed; restarting it"; "agent_id" => agent_id,
              "attempt" => done + 1, "delay_ms" => delay_ms);
        self.args.deps.events.publish(
            EventType::AgentSessionRestarting,
            &serde_json::json!({"agent_id": agent_id, "session_id": id,
                                "attempt": done + 1, "delay_ms": delay_ms}),
        );
        me.send_after(Duration::from_millis(delay_ms), move || {
            SessionsMsg::RestartAgent(agent_id)
        });
    }

    pub(super) async fn restart_agent(&mut self, me: &ActorRef<SessionsMsg>, agent_id: i64) {
        if self.stopping || self.live_agent_session(agent_id).is_some() {
            return;
        }
        let Some(request) = self
            .restarts
            .agents
            .get(&agent_id)
            .map(|b| b.request.clone())
        else {
            return;
        };
        if let Err(e) = self.agent_session(me, request).await {
            warn!(self.log, "restarting an agent session failed"; "agent_id" => agent_id,
                  "error" => %e);
            self.args.deps.events.publish(
                EventType::AgentSessionFailed,
                &serde_json::json!({"agent_id": agent_id, "session_id": null,
                                    "reason": format!("restart failed: {e}")}),
            );
        }
    }

    /// Remembers how an agent's session was started, for its restarts.
    fn remember_request(&mut self, request: &AgentSessionRequest) {
        if self.restarts.agents.len() >= RESTART_BOOKS_MAX
            && !self.restarts.agents.contains_key(&request.agent_id)
        {
            return;
        }
        let book = self
            .restarts
            .agents
            .entry(request.agent_id)
            .or_insert_with(|| RestartBook {
                request: request.clone(),
                restarted_at: VecDeque::new(),
            });
        book.request = request.clone();
    }
}
