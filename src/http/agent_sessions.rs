//! Agent sessions: `POST /api/agents/{id}/session` (the agent's live session, or a new one),
//! `GET /api/agent-sessions`, `GET/DELETE /api/agent-sessions/{id}`; the WebSocket is the
//! terminal protocol (`session_ws.rs`) at `/api/agent-sessions/{id}/ws`.
//!
//! The handler loads the definition and checks its project dir; the get-or-create itself is one
//! message to the sessions supervisor, which serialises it (see `actors/sessions/agent.rs`).

use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::agents::load;
use super::json::{ok_json, reject, reply_json, Page};
use super::terminals::{find, list_sessions, session_info, stop_session};
use crate::actors::session_types::SessionKind;
use crate::actors::sessions::AgentSessionRequest;
use crate::error::ApiError;
use crate::pty::WindowSize;
use crate::state::AppState;
use crate::validate::check_dir;

/// A new agent session's size until its first viewer resizes it.
const DEFAULT_SIZE: WindowSize = WindowSize {
    cols: 120,
    rows: 40,
};
const KIND: SessionKind = SessionKind::AgentSession;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let start = warp::path!("api" / "agents" / i64 / "session")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(get_or_create);
    let list = warp::path!("api" / "agent-sessions")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(list);
    let one = warp::path!("api" / "agent-sessions" / String);
    let get = one.and(warp::get()).and(with_state.clone()).and_then(get);
    let delete = one.and(warp::delete()).and(with_state).and_then(delete);
    start
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(delete)
        .unify()
        .or(super::session_ws::route(state, KIND))
        .unify()
        .or(super::recording::route(state, KIND))
        .unify()
        .boxed()
}

async fn get_or_create(agent_id: i64, state: AppState) -> Result<Response, Rejection> {
    let agent = load(&state, agent_id).await.map_err(reject)?;
    let dir = agent.def.project_dir.clone();
    let roots = state.config.allowed_roots.clone();
    let cwd = tokio::task::spawn_blocking(move || check_dir("project_dir", dir.as_deref(), &roots))
        .await
        .map_err(|e| reject(ApiError::bad_request(format!("validation aborted: {e}"))))?
        .map_err(reject)?;
    let request = AgentSessionRequest {
        agent_id,
        def: agent.def,
        cwd,
        size: DEFAULT_SIZE,
    };
    let (info, created) = state
        .sessions
        .agent_session(request)
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply_json(status, &info))
}

async fn list(state: AppState) -> Result<Response, Rejection> {
    let items = list_sessions(&state, KIND).await.map_err(reject)?;
    let total = items.len() as i64;
    Ok(ok_json(&Page {
        items,
        total,
        limit: total,
        offset: 0,
    }))
}

async fn get(id: String, state: AppState) -> Result<Response, Rejection> {
    let actor = find(&state, KIND, &id).await.map_err(reject)?;
    Ok(ok_json(&session_info(&actor).await.map_err(reject)?))
}

async fn delete(id: String, state: AppState) -> Result<Response, Rejection> {
    stop_session(&state, KIND, &id).await.map_err(reject)
}
