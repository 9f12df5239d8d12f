//! `/api/approvals`: the permission prompts of agents, and the user's answer (issue 16).
//! The decision itself is taken by [`crate::approvals::Approvals`]: once, whoever comes first.

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{get_listing, get_with_state, json_body, ok_json, reject, Page, Query};
use crate::approvals::{ApprovalError, Decision};
use crate::auth::{Principal, Via};
use crate::error::ApiError;
use crate::state::AppState;

/// A message to the agent: a sentence or a paragraph, not a file.
const MESSAGE_MAX_CHARS: usize = 2000;
const STATUS_NAMES: [&str; 4] = ["pending", "allowed", "denied", "cancelled"];

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let list = warp::path!("api" / "approvals")
        .and(get_listing(state))
        .and_then(list);
    let get = warp::path!("api" / "approvals" / i64)
        .and(get_with_state(state))
        .and_then(get);
    let decide = warp::path!("api" / "approvals" / i64)
        .and(warp::post())
        .and(super::json::with_state(state))
        .and(super::auth::principal(state))
        .and(json_body::<DecisionBody>(state.config.body_limit_bytes))
        .and_then(decide);
    list.or(get).unify().or(decide).unify().boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: Decision,
    message: Option<String>,
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::NotFound(id) => ApiError::not_found("approval", id),
            e @ ApprovalError::AlreadyDecided { .. } => {
                ApiError::conflict("approval_decided", e.to_string())
            }
            ApprovalError::Db(db) => db.into(),
        }
    }
}

async fn list(state: AppState, raw: String) -> Result<Response, Rejection> {
    let q = Query::parse(&raw, &["status", "limit", "offset"]).map_err(reject)?;
    let (limit, offset) = q.paging().map_err(reject)?;
    let status = q
        .choice("status", &STATUS_NAMES, |s| {
            STATUS_NAMES.contains(&s).then(|| s.to_string())
        })
        .map_err(reject)?;
    let (items, total) = state
        .approvals
        .list(status, limit, offset)
        .await
        .map_err(reject)?;
    Ok(Page::reply(items, total, (limit, offset)))
}

async fn get(id: i64, state: AppState) -> Result<Response, Rejection> {
    Ok(ok_json(&state.approvals.get(id).await.map_err(reject)?))
}

/// Who decided, as the record shows it: the token (by id, never its secret).
fn decider(p: &Principal) -> String {
    match (p.via, p.token_id) {
        (Via::NoAuth, _) | (_, None) => "user".into(),
        (_, Some(id)) => format!("token:{id}"),
    }
}

async fn decide(
    id: i64,
    state: AppState,
    principal: Principal,
    _parts: super::auth::RequestParts,
    body: DecisionBody,
) -> Result<Response, Rejection> {
    let message = body.message.filter(|m| !m.trim().is_empty());
    if message
        .as_ref()
        .is_some_and(|m| m.chars().count() > MESSAGE_MAX_CHARS || m.contains('\0'))
    {
        return Err(reject(ApiError::validation(
            "message",
            format!("must be at most {MESSAGE_MAX_CHARS} characters without NUL"),
        )));
    }
    let row = state
        .approvals
        .decide(id, body.decision, message, decider(&principal))
        .await
        .map_err(reject)?;
    Ok(super::json::reply_json(StatusCode::OK, &row))
}
