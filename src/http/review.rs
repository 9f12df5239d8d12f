//! Reviewing an isolated run or agent session (`crate::isolation`): `GET /api/executions/{id}/diff`,
//! `POST /api/executions/{id}/merge`, `POST /api/executions/{id}/discard` by execution id (any
//! isolated execution), and the same three under `/api/agent-sessions/{session-id}/` for an agent
//! session named by its session id (live or long ended: it is looked up in the database).
//!
//! Merges and discards take [`REVIEW_TURN`] (one at a time server-wide).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{ok_json, reject, reply_json};
use crate::actors::session_types::is_valid_session_id;
use crate::db::executions::{self, ExecutionSummary, ExecutionType};
use crate::db::tasks;
use crate::db::worktrees::{self, Worktree, WorktreeState};
use crate::error::ApiError;
use crate::isolation::{self, IsolationError, REVIEW_TURN};
use crate::state::AppState;

/// The run's result quoted in a merge commit message at most.
const RESULT_IN_MESSAGE_MAX_CHARS: usize = 2000;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let diff = warp::path!("api" / "executions" / i64 / "diff")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|id, state| own_task(self::diff(id, state)));
    let merge = warp::path!("api" / "executions" / i64 / "merge")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(|id, state| own_task(self::merge(id, state)));
    let discard = warp::path!("api" / "executions" / i64 / "discard")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(|id, state| own_task(self::discard(id, state)));
    let session_diff = warp::path!("api" / "agent-sessions" / String / "diff")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(|sid: String, state: AppState| {
            own_task(async move { self::diff(session_execution(&state, &sid).await?, state).await })
        });
    let session_merge = warp::path!("api" / "agent-sessions" / String / "merge")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(|sid: String, state: AppState| {
            own_task(
                async move { self::merge(session_execution(&state, &sid).await?, state).await },
            )
        });
    let session_discard = warp::path!("api" / "agent-sessions" / String / "discard")
        .and(warp::post())
        .and(with_state)
        .and_then(|sid: String, state: AppState| {
            own_task(
                async move { self::discard(session_execution(&state, &sid).await?, state).await },
            )
        });
    diff.or(merge)
        .unify()
        .or(discard)
        .unify()
        .or(session_diff)
        .unify()
        .or(session_merge)
        .unify()
        .or(session_discard)
        .unify()
        .boxed()
}

/// Runs a review request as its own task: a merge or discard is never cut off between two git
/// steps by a client that went away, and git's deep futures are not polled on top of the
/// router's filter chain (a debug build's stack overflowed there).
async fn own_task<F>(work: F) -> Result<Response, Rejection>
where
    F: std::future::Future<Output = Result<Response, Rejection>> + Send + 'static,
{
    tokio::spawn(work).await.unwrap_or_else(|e| {
        let api = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the review request failed (see the server log)",
        );
        Err(reject(api.with_internal(format!("review task: {e}"))))
    })
}

/// The execution of agent session `sid`: 404 for an id that names none.
async fn session_execution(state: &AppState, sid: &str) -> Result<i64, Rejection> {
    let not_found = || {
        // The id may be anything the client typed: show a bounded, printable prefix.
        let shown: String = sid.chars().filter(|c| !c.is_control()).take(64).collect();
        reject(ApiError::not_found("agent session", shown))
    };
    if !is_valid_session_id(sid) {
        return Err(not_found());
    }
    let key = sid.to_string();
    state
        .db
        .read(move |c| worktrees::session_execution(c, &key))
        .await
        .map_err(|e| reject(ApiError::from(e)))?
        .ok_or_else(not_found)
}

/// The run and its worktree: 404 without the run, 409 if it was not isolated.
async fn load(state: &AppState, id: i64) -> Result<(ExecutionSummary, Worktree), ApiError> {
    let (run, w) = state
        .db
        .read(move |c| {
            Ok::<_, crate::db::DbError>((executions::get_summary(c, id)?, worktrees::get(c, id)?))
        })
        .await?;
    let run = run.ok_or_else(|| ApiError::not_found("execution", id))?;
    let w = w.ok_or(IsolationError::NotIsolated(id))?;
    Ok((run, w))
}

fn ended(run: &ExecutionSummary) -> Result<(), ApiError> {
    if run.status.is_active() {
        return Err(IsolationError::RunActive(run.id).into());
    }
    Ok(())
}

async fn diff(id: i64, state: AppState) -> Result<Response, Rejection> {
    let (_, w) = load(&state, id).await.map_err(reject)?;
    let diff = isolation::diff(&w).await.map_err(reject)?;
    Ok(ok_json(&diff))
}

/// The merge commit's message: the task's title, the run's result, and where it came from.
async fn message_for(state: &AppState, run: &ExecutionSummary) -> String {
    let title = match run.task_id {
        Some(t) => state
            .db
            .read(move |c| tasks::get(c, t))
            .await
            .ok()
            .flatten()
            .map(|t| t.title),
        None => None,
    };
    let what = match run.kind {
        ExecutionType::AgentSession => "agent session",
        _ => "run",
    };
    let mut msg = title.unwrap_or_else(|| format!("Changes of {what} {}", run.id));
    if let Some(result) = run
        .result
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let quoted: String = result.chars().take(RESULT_IN_MESSAGE_MAX_CHARS).collect();
        msg.push_str("\n\n");
        msg.push_str(&quoted);
    }
    msg.push_str(&format!("\n\nclaude-manager {what} {}", run.id));
    msg
}

async fn merge(id: i64, state: AppState) -> Result<Response, Rejection> {
    let _turn = REVIEW_TURN.lock().await;
    let (run, w) = load(&state, id).await.map_err(reject)?;
    ended(&run).map_err(reject)?;
    let message = message_for(&state, &run).await;
    let outcome = match isolation::merge(&w, &message).await {
        Ok(o) => o,
        Err(e) => {
            if matches!(
                e,
                IsolationError::Conflict { .. } | IsolationError::LocalChanges { .. }
            ) {
                slog::info!(state.log, "merge refused"; "execution_id" => id, "why" => %e);
            }
            return Err(reject(e));
        }
    };
    let commit = outcome.commit.clone();
    state
        .db
        .write(move |c| worktrees::set_state(c, id, WorktreeState::Merged, Some(&commit)))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let body = json!({"execution_id": id, "merge": outcome});
    state
        .events
        .publish(crate::actors::events::EventType::WorktreeMerged, &body);
    slog::info!(state.log, "run merged"; "execution_id" => id, "branch" => &outcome.branch);
    Ok(reply_json(StatusCode::OK, &body))
}

async fn discard(id: i64, state: AppState) -> Result<Response, Rejection> {
    let _turn = REVIEW_TURN.lock().await;
    let (run, w) = load(&state, id).await.map_err(reject)?;
    ended(&run).map_err(reject)?;
    isolation::discard(&w).await.map_err(reject)?;
    state
        .db
        .write(move |c| {
            worktrees::set_state(c, id, WorktreeState::Discarded, None)?;
            worktrees::mark_removed(c, id, None)
        })
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let body = json!({"execution_id": id, "branch": w.branch, "worktree": w.path});
    state
        .events
        .publish(crate::actors::events::EventType::WorktreeDiscarded, &body);
    slog::info!(state.log, "run discarded"; "execution_id" => id);
    Ok(ok_json(&body))
}
