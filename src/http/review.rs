//! Reviewing an isolated run (`crate::isolation`): `GET /api/executions/{id}/diff`,
//! `POST /api/executions/{id}/merge`, `POST /api/executions/{id}/discard`.
//!
//! Merges and discards take [`REVIEW_TURN`] (one at a time server-wide).

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{ok_json, reject, reply_json};
use crate::db::executions::{self, ExecutionSummary};
use crate::db::tasks;
use crate::db::worktrees::{self, Worktree};
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
        .and_then(diff);
    let merge = warp::path!("api" / "executions" / i64 / "merge")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(merge);
    let discard = warp::path!("api" / "executions" / i64 / "discard")
        .and(warp::post())
        .and(with_state)
        .and_then(discard);
    diff.or(merge).unify().or(discard).unify().boxed()
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
    let mut msg = title.unwrap_or_else(|| format!("Changes of run {}", run.id));
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
    msg.push_str(&format!("\n\nclaude-manager run {}", run.id));
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
        .write(move |c| worktrees::set_state(c, id, "merged", Some(&commit)))
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
            worktrees::set_state(c, id, "discarded", None)?;
            worktrees::mark_removed(c, id)
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
