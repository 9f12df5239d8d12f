//! `Sessions`: the handle routes and the reaper use to ask the sessions supervisor.

use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};

use super::{AgentSessionRequest, ReapPolicy, ReapReport, SessionsMsg, CALL_TIMEOUT};
use crate::actors::session_types::{SessionError, SessionInfo, SessionKind, SessionSpec};
use crate::actors::slot::ActorSlot;
use crate::actors::terminal::TerminalMsg;

/// The cloneable handle HTTP handlers use; the root supervisor points it at the live actor.
#[derive(Clone, Default)]
pub struct Sessions {
    actor: ActorSlot<SessionsMsg>,
}

impl Sessions {
    pub fn set_actor(&self, actor: Option<ActorRef<SessionsMsg>>) {
        self.actor.set(actor);
    }

    async fn ask<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SessionsMsg,
        timeout: Duration,
    ) -> Result<T, SessionError> {
        self.actor
            .call(msg, timeout)
            .await
            .ok_or(SessionError::Unavailable)
    }

    pub async fn create(&self, spec: SessionSpec) -> Result<SessionInfo, SessionError> {
        // Creation waits on the DB and a fork; allow it the DB's own timeout and more.
        self.ask(
            |r| SessionsMsg::Create(Box::new(spec), r),
            Duration::from_secs(30),
        )
        .await?
    }

    /// The agent's live session or a new one; `true` when it was started by this call.
    pub async fn agent_session(
        &self,
        request: AgentSessionRequest,
    ) -> Result<(SessionInfo, bool), SessionError> {
        self.ask(
            |r| SessionsMsg::AgentSession(Box::new(request), r),
            Duration::from_secs(30),
        )
        .await?
    }

    pub async fn lookup(
        &self,
        kind: SessionKind,
        id: &str,
    ) -> Result<ActorRef<TerminalMsg>, SessionError> {
        let id = id.to_string();
        self.ask(|r| SessionsMsg::Lookup(kind, id, r), CALL_TIMEOUT)
            .await?
            .ok_or(SessionError::NotFound)
    }

    /// Stops a live session, or forgets one that already exited: `(info, exited)`. A live
    /// session's stop sequence runs on after the answer (watch `session.exited`).
    pub async fn stop(
        &self,
        kind: SessionKind,
        id: &str,
    ) -> Result<(SessionInfo, bool), SessionError> {
        let actor = self.lookup(kind, id).await?;
        match actor.call(TerminalMsg::Stop, Some(CALL_TIMEOUT)).await {
            Ok(ractor::rpc::CallResult::Success((info, exited))) => {
                if exited {
                    self.remove(kind, id);
                }
                Ok((info, exited))
            }
            _ => Err(SessionError::NotFound),
        }
    }

    pub async fn list(
        &self,
        kind: SessionKind,
    ) -> Result<Vec<ActorRef<TerminalMsg>>, SessionError> {
        self.ask(|r| SessionsMsg::List(kind, r), CALL_TIMEOUT).await
    }

    pub fn remove(&self, kind: SessionKind, id: &str) {
        if let Some(actor) = self.actor.get() {
            let _ = actor.cast(SessionsMsg::Remove(kind, id.to_string()));
        }
    }

    /// One reaper pass over the sessions; `Unavailable` when the supervisor did not answer in time.
    pub async fn reap(
        &self,
        policy: ReapPolicy,
        timeout: Duration,
    ) -> Result<ReapReport, SessionError> {
        self.ask(|r| SessionsMsg::Reap(policy, r), timeout).await
    }

    /// Stops every session (shutdown); returns when they are stopped or the time is up.
    pub async fn stop_all(&self, timeout: Duration) {
        let _ = self.ask(SessionsMsg::StopAll, timeout).await;
    }

    /// Reload: every live session hands over; empty if the supervisor did not answer in time.
    pub async fn hand_over(
        &self,
        timeout: Duration,
    ) -> Vec<crate::actors::terminal::SessionHandover> {
        self.ask(SessionsMsg::HandOver, timeout)
            .await
            .unwrap_or_default()
    }

    /// The new image takes over the sessions of a handover record.
    pub async fn adopt(
        &self,
        sessions: Vec<crate::handover::InheritedSession>,
        timeout: Duration,
    ) -> Result<super::Adopted, SessionError> {
        self.ask(|r| SessionsMsg::Adopt(sessions, r), timeout).await
    }
}
