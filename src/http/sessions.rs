//! What the terminal and agent-session routes share: finding a live session by its path id,
//! describing it, listing them, and stopping one.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::json::{ok_json, reply_json};
use crate::actors::session_types::{is_valid_session_id, SessionError, SessionInfo, SessionKind};
use crate::actors::sessions::CALL_TIMEOUT;
use crate::actors::terminal::TerminalMsg;
use crate::error::ApiError;
use crate::state::AppState;

/// Asks one session actor for its description.
pub async fn session_info(actor: &ractor::ActorRef<TerminalMsg>) -> Result<SessionInfo, ApiError> {
    match actor.call(TerminalMsg::Info, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(info)) => Ok(info),
        _ => Err(SessionError::NotFound.into()),
    }
}

/// What `GET /api/{terminals,agent-sessions}/{id}` shows of a live session.
pub async fn get_session(
    state: &AppState,
    kind: SessionKind,
    id: &str,
) -> Result<SessionInfo, ApiError> {
    session_info(&find(state, kind, id).await?).await
}

/// The live session actor for a path id; a malformed id is simply not found.
pub async fn find(
    state: &AppState,
    kind: SessionKind,
    id: &str,
) -> Result<ractor::ActorRef<TerminalMsg>, ApiError> {
    if !is_valid_session_id(id) {
        return Err(not_found(kind, id));
    }
    state.sessions.lookup(kind, id).await.map_err(|e| match e {
        SessionError::NotFound => not_found(kind, id),
        other => other.into(),
    })
}

fn not_found(kind: SessionKind, id: &str) -> ApiError {
    let what = match kind {
        SessionKind::Terminal => "terminal",
        SessionKind::AgentSession => "agent session",
    };
    // The id may be anything the client typed: show a bounded, printable prefix.
    let shown: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
    ApiError::not_found(what, shown)
}

/// Every session of `kind` the supervisor still holds, oldest first.
pub async fn list_sessions(
    state: &AppState,
    kind: SessionKind,
) -> Result<Vec<SessionInfo>, ApiError> {
    let actors = state.sessions.list(kind).await.map_err(ApiError::from)?;
    let answers = futures_util::future::join_all(actors.iter().map(session_info)).await;
    // A session that ended between the listing and the question is simply left out.
    let mut items: Vec<SessionInfo> = answers.into_iter().filter_map(Result::ok).collect();
    items.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(items)
}

/// Stops a live session (202: the stop sequence runs on; watch `session.exited`), or forgets an
/// exited one (200). The sessions supervisor's handle does both steps (`Sessions::stop`).
pub async fn stop_session(
    state: &AppState,
    kind: SessionKind,
    id: &str,
) -> Result<Response, ApiError> {
    if !is_valid_session_id(id) {
        return Err(not_found(kind, id));
    }
    match state.sessions.stop(kind, id).await {
        Ok((info, true)) => Ok(ok_json(&info)),
        Ok((info, false)) => Ok(reply_json(StatusCode::ACCEPTED, &info)),
        Err(SessionError::NotFound) => Err(not_found(kind, id)),
        Err(other) => Err(other.into()),
    }
}

/// `/api/terminals/{id}` or `/api/agent-sessions/{id}`: where every per-session route starts.
pub fn session_path(kind: SessionKind) -> warp::filters::BoxedFilter<(String,)> {
    let collection = match kind {
        SessionKind::Terminal => warp::path("terminals").boxed(),
        SessionKind::AgentSession => warp::path("agent-sessions").boxed(),
    };
    warp::path("api")
        .and(collection)
        .and(warp::path::param::<String>())
        .boxed()
}
