//! `/api/executions`: the record of every session and run. Read-only here; the actors that own
//! the processes write it.

use serde::Serialize;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{get_listing, get_with_state, ok_json, reject, Page, Query};
use crate::db::execution_list::{self, ExecutionFilter};
use crate::db::executions::{self, ExecutionStatus, ExecutionType};
use crate::db::DbError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::parse_rfc3339;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let list = warp::path!("api" / "executions")
        .and(get_listing(state))
        .and_then(list);
    let get = warp::path!("api" / "executions" / i64)
        .and(get_with_state(state))
        .and_then(get);
    let output = warp::path!("api" / "executions" / i64 / "output")
        .and(get_with_state(state))
        .and_then(output);
    list.or(get).unify().or(output).unify().boxed()
}

const TYPE_NAMES: [&str; 3] = ["terminal", "agent_session", "agent_run"];
const STATUS_NAMES: [&str; 6] = [
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
    "interrupted",
];

/// The longest search text accepted, in characters: longer is a typo or an attack, not a query.
const SEARCH_MAX_CHARS: usize = 200;

/// An RFC 3339 query parameter (`since`, `until`), normalised for comparison with stored times.
fn time_param(q: &Query, name: &str) -> Result<Option<String>, Rejection> {
    let Some(s) = q.str(name) else {
        return Ok(None);
    };
    parse_rfc3339(s).map(Some).ok_or_else(|| {
        reject(
            ApiError::bad_request(format!(
                "query parameter {name}={s:?}: expected an RFC 3339 timestamp, e.g. 2026-11-27T21:00:00Z"
            ))
            .with_field(name),
        )
    })
}

async fn list(state: AppState, raw: String) -> Result<Response, Rejection> {
    let q = Query::parse(
        &raw,
        &[
            "task_id", "agent_id", "type", "status", "since", "until", "q", "limit", "offset",
        ],
    )
    .map_err(reject)?;
    let (limit, offset) = q.paging().map_err(reject)?;
    let text = q.str("q").map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > SEARCH_MAX_CHARS) {
        return Err(reject(
            ApiError::bad_request(format!(
                "query parameter q: at most {SEARCH_MAX_CHARS} characters"
            ))
            .with_field("q"),
        ));
    }
    let filter = ExecutionFilter {
        task_id: q.int("task_id", 1, i64::MAX).map_err(reject)?,
        agent_id: q.int("agent_id", 1, i64::MAX).map_err(reject)?,
        kind: q
            .choice("type", &TYPE_NAMES, ExecutionType::parse)
            .map_err(reject)?,
        status: q
            .choice("status", &STATUS_NAMES, ExecutionStatus::parse)
            .map_err(reject)?,
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
        text: text.map(str::to_owned),
        limit,
        offset,
    };
    let (items, total) = state
        .db
        .read(move |c| execution_list::list(c, &filter))
        .await
        .map_err(|e: DbError| reject(ApiError::from(e)))?;
    Ok(Page::reply(items, total, (limit, offset)))
}

async fn get(id: i64, state: AppState) -> Result<Response, Rejection> {
    let exec = state
        .db
        .read(move |c| executions::get(c, id))
        .await
        .map_err(|e: DbError| reject(ApiError::from(e)))?
        .ok_or_else(|| reject(ApiError::not_found("execution", id)))?;
    Ok(ok_json(&exec))
}

#[derive(Serialize)]
struct OutputReply {
    execution_id: i64,
    /// The stored tail, decoded as UTF-8 (invalid sequences replaced).
    output: String,
    /// Length of the stored tail in bytes.
    bytes: usize,
    /// Output produced in all.
    bytes_out: i64,
    /// True when the tail is not the whole output.
    truncated: bool,
}

async fn output(id: i64, state: AppState) -> Result<Response, Rejection> {
    let out = state
        .db
        .read(move |c| executions::output(c, id))
        .await
        .map_err(|e: DbError| reject(ApiError::from(e)))?
        .ok_or_else(|| reject(ApiError::not_found("execution", id)))?;
    Ok(ok_json(&OutputReply {
        execution_id: id,
        bytes: out.bytes.len(),
        output: String::from_utf8_lossy(&out.bytes).into_owned(),
        bytes_out: out.bytes_out,
        truncated: out.truncated,
    }))
}
