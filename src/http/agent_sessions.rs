//! Agent sessions: `POST /api/agents/{id}/session` (the agent's live session, or a new one),
//! `GET /api/agent-sessions`, `GET/DELETE /api/agent-sessions/{id}`; the WebSocket is the
//! terminal protocol (`session_ws.rs`) at `/api/agent-sessions/{id}/ws`. An isolated session's
//! review routes (`…/{id}/diff|merge|discard`) are in `review.rs`.
//!
//! The handler loads the definition and checks its project dir (and, for `isolation:
//! "worktree"`, that it is in a git repository inside the allowed roots); the get-or-create
//! itself is one message to the sessions supervisor, which serialises it (see
//! `actors/sessions/agent.rs`).

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::agents::load;
use super::json::{limited_body, ok_json, parse_json, reject, reply_json, Page};
use super::sessions::{get_session, list_sessions, stop_session};
use crate::actors::session_types::SessionKind;
use crate::actors::sessions::AgentSessionRequest;
use crate::error::ApiError;
use crate::isolation::{self, WorktreeRequest};
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
        .and(limited_body(state.config.body_limit_bytes))
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

/// The optional body of `POST /api/agents/{id}/session`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionBody {
    /// `"worktree"` or `"none"`: overrides the agent's `isolation` for a session started now.
    isolation: Option<String>,
}

async fn get_or_create(
    agent_id: i64,
    state: AppState,
    body: Vec<u8>,
) -> Result<Response, Rejection> {
    let body: SessionBody = if body.iter().all(u8::is_ascii_whitespace) {
        SessionBody::default()
    } else {
        parse_json(&body).map_err(reject)?
    };
    let asked = isolation::parse("isolation", body.isolation.as_deref()).map_err(reject)?;
    let agent = load(&state, agent_id).await.map_err(reject)?;
    let dir = agent.def.project_dir.clone();
    let roots = state.config.allowed_roots.clone();
    let cwd = tokio::task::spawn_blocking(move || check_dir("project_dir", dir.as_deref(), &roots))
        .await
        .map_err(|e| reject(ApiError::bad_request(format!("validation aborted: {e}"))))?
        .map_err(reject)?;
    let isolated = asked.unwrap_or(agent.def.isolation.as_deref() == Some(isolation::WORKTREE));
    let worktree = if isolated {
        let roots = &state.config.allowed_roots;
        Some(WorktreeRequest {
            repo: isolation::locate("isolation", &cwd, roots)
                .await
                .map_err(reject)?,
            worktrees_dir: isolation::worktrees_dir(&state.config.data_dir),
        })
    } else {
        None
    };
    let request = AgentSessionRequest {
        agent_id,
        def: agent.def,
        cwd,
        size: DEFAULT_SIZE,
        worktree,
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

/// Sessions as the API shows them: with their `attention` (issue 16), read from their
/// executions in one query.
async fn with_attention(
    state: &AppState,
    infos: Vec<crate::actors::session_types::SessionInfo>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let ids: Vec<i64> = infos.iter().map(|i| i.execution_id).collect();
    let found = state
        .db
        .read(move |c| crate::db::approvals::attention_of(c, &ids))
        .await
        .map_err(ApiError::from)?;
    Ok(infos
        .into_iter()
        .map(|info| {
            let attention = found.get(&info.execution_id).cloned();
            let mut v = serde_json::to_value(&info).unwrap_or_default();
            v["attention"] = serde_json::json!(attention);
            v
        })
        .collect())
}

async fn list(state: AppState) -> Result<Response, Rejection> {
    let items = list_sessions(&state, KIND).await.map_err(reject)?;
    let items = with_attention(&state, items).await.map_err(reject)?;
    Ok(Page::reply_all(items))
}

async fn get(id: String, state: AppState) -> Result<Response, Rejection> {
    let info = get_session(&state, KIND, &id).await.map_err(reject)?;
    let mut items = with_attention(&state, vec![info]).await.map_err(reject)?;
    Ok(ok_json(&items.pop().unwrap_or_default()))
}

async fn delete(id: String, state: AppState) -> Result<Response, Rejection> {
    stop_session(&state, KIND, &id).await.map_err(reject)
}
