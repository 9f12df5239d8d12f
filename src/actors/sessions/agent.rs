//! Agent sessions in the sessions supervisor: "the agent's live session, or start one".
//!
//! Get-or-create runs inside the supervisor's handler, one message at a time, so 20 concurrent
//! requests for one agent find the session the first one started: there is no window between
//! "none is live" and "one is registered" in which another request can look. The conversation
//! id is read and (after a successful start) marked started here too, so the first start passes
//! the agent's `first` session args and every later start its `resume` args.

use std::path::PathBuf;

use ractor::rpc::CallResult;
use ractor::ActorRef;
use slog::warn;

use super::{SessionsMsg, SessionsState, CALL_TIMEOUT};
use crate::actors::session_types::{SessionError, SessionInfo, SessionKind, SessionSpec};
use crate::actors::terminal::TerminalMsg;
use crate::agent_cli;
use crate::db::agents::{self, AgentDef, AgentError};
use crate::pty::WindowSize;

/// A validated request: the agent's definition as stored, its working directory checked.
#[derive(Debug, Clone)]
pub struct AgentSessionRequest {
    pub agent_id: i64,
    pub def: AgentDef,
    /// Canonical, inside the allowed roots.
    pub cwd: PathBuf,
    pub size: WindowSize,
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
        let agent_id = req.agent_id;
        let db = self.args.deps.db.clone();
        let (conversation, resume) = db
            .write(move |c| agents::conversation(c, agent_id))
            .await
            .map_err(SessionError::from)?;
        let spec = SessionSpec {
            kind: SessionKind::AgentSession,
            name: Some(req.def.name.clone()),
            argv: agent_cli::session_argv(&req.def, &conversation, resume),
            cwd: req.cwd,
            env: req.def.env.clone().into_iter().collect(),
            size: req.size,
            task_id: None,
            agent_id: Some(agent_id),
            conversation_id: Some(conversation),
        };
        let info = self.create(me, spec).await?;
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
