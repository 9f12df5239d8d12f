//! Headless agent runs: `POST /api/tasks/{id}/run` (queue a run of the task with an agent),
//! `POST /api/executions/{id}/cancel`, and WS `/api/executions/{id}/events?since=SEQ` (the run's
//! parsed events: replay from the table, then live, then `{"type":"end"}` and close).
//!
//! The handler translates: it parses the body and hands the request to the run queue
//! (`actors/runs`), which decides (task busy? which agent, directory, argv?), records, queues,
//! starts and stops the run. The prompt (task title and description) is written to the CLI's
//! stdin by the run actor — never argv.

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::json::{limited_body, parse_json, raw_query, reject, reply_json, Query};
use crate::actors::events::EventType;
use crate::actors::runs::{RunAsk, RunError};
use crate::db::execution_events;
use crate::db::executions::{self, ExecutionType};
use crate::error::ApiError;
use crate::protocol::{RunFrame, CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_SERVICE_RESTART};
use crate::state::{shutting_down, AppState, Gauge};

/// Events read from the table per replay query.
const REPLAY_PAGE: i64 = 500;
const CLIENT_MESSAGE_MAX_BYTES: usize = 4096;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let limit = state.config.body_limit_bytes;
    let run = warp::path!("api" / "tasks" / i64 / "run")
        .and(warp::post())
        .and(with_state.clone())
        .and(limited_body(limit))
        .and_then(run);
    let cancel = warp::path!("api" / "executions" / i64 / "cancel")
        .and(warp::post())
        .and(with_state.clone())
        .and_then(cancel);
    let events = warp::path!("api" / "executions" / i64 / "events")
        .and(warp::get())
        .and(with_state)
        .and(raw_query())
        .and(warp::ws())
        .and_then(|id: i64, state: AppState, raw: String, ws: Ws| async move {
            let q = Query::parse(&raw, &["since"]).map_err(reject)?;
            let since = q.int("since", 0, i64::MAX).map_err(reject)?.unwrap_or(0);
            Ok::<_, Rejection>(
                ws.max_message_size(CLIENT_MESSAGE_MAX_BYTES)
                    .on_upgrade(move |socket| stream_events(socket, state, id, since))
                    .into_response(),
            )
        });
    run.or(cancel).unify().or(events).unify().boxed()
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::QueueFull(_) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "queue_full", e.to_string())
            }
            RunError::NotActive(_) => ApiError::conflict("not_active", e.to_string()),
            RunError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "runs_unavailable",
                e.to_string(),
            ),
            RunError::TaskNotFound(id) => ApiError::not_found("task", id),
            RunError::TaskBusy(_) => ApiError::conflict("task_busy", e.to_string()),
            RunError::Invalid(api) => api,
            RunError::Db(db) => db.into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunBody {
    /// Overrides the task's agent.
    agent_id: Option<i64>,
    /// Continue this conversation (the agent's `resume` session args).
    resume: Option<String>,
    /// `"worktree"`: run in its own git worktree (overrides the task's and the agent's choice).
    isolation: Option<String>,
}

fn is_conversation_id(s: &str) -> bool {
    // Starts with a letter or digit: it follows `--resume` in argv and must not read as a flag.
    // `_`: opencode's ids (`ses_…`).
    (1..=64).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn run(task_id: i64, state: AppState, body: Vec<u8>) -> Result<Response, Rejection> {
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        parse_json(&body).map_err(reject)?
    };
    if let Some(r) = &body.resume {
        if !is_conversation_id(r) {
            return Err(reject(ApiError::validation(
                "resume",
                "must be a conversation id (1-64 letters, digits, '-', '_'; not starting with '-')",
            )));
        }
    }
    let ask = RunAsk {
        task_id,
        agent_id: body.agent_id,
        resume: body.resume,
        isolation: body.isolation,
    };
    let row = state
        .runs
        .enqueue(ask)
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    Ok(reply_json(StatusCode::ACCEPTED, &row))
}

async fn cancel(id: i64, state: AppState) -> Result<Response, Rejection> {
    let row = state
        .db
        .read(move |c| executions::get_summary(c, id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?
        .ok_or_else(|| reject(ApiError::not_found("execution", id)))?;
    if row.kind != ExecutionType::AgentRun {
        return Err(reject(ApiError::conflict(
            "not_a_run",
            "only agent runs are cancelled here; stop a session with DELETE on the session",
        )));
    }
    state
        .runs
        .cancel(id)
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let row = state
        .db
        .read(move |c| executions::get_summary(c, id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    Ok(reply_json(StatusCode::ACCEPTED, &row))
}

/// Sends stored events after `since`; returns the last seq sent (or `since`).
async fn replay(
    state: &AppState,
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    id: i64,
    mut since: i64,
) -> Option<i64> {
    loop {
        let page = state
            .db
            .read(move |c| execution_events::list_since(c, id, since, REPLAY_PAGE))
            .await
            .ok()?;
        let n = page.len() as i64;
        for e in page {
            since = e.seq;
            let msg = RunFrame::Event { data: &e }.to_text();
            tx.send(Message::text(msg)).await.ok()?;
        }
        if n < REPLAY_PAGE {
            return Some(since);
        }
    }
}

async fn end(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, row: &Value) {
    let msg: RunFrame<()> = RunFrame::End {
        status: &row["status"],
        execution: row,
    };
    let _ = tx.send(Message::text(msg.to_text())).await;
    let _ = tx
        .send(Message::close_with(CLOSE_NORMAL, "run finished"))
        .await;
}

/// Replay then live: subscribe first, so nothing between the replay and the live feed is lost
/// (duplicates are skipped by seq).
async fn stream_events(socket: WebSocket, state: AppState, id: i64, since: i64) {
    let _open = state.sockets.hold();
    let _gauge = Gauge::hold(&state.metrics.ws_run_events);
    state.http_metrics.websocket_opened("run_events");
    let (mut tx, mut rx) = socket.split();
    let Some(mut bus) = super::events::subscribe_or_close(&state, &mut tx).await else {
        return;
    };
    let row = state
        .db
        .read(move |c| executions::get_summary(c, id))
        .await
        .ok()
        .flatten();
    let Some(row) = row.filter(|r| r.kind == ExecutionType::AgentRun) else {
        let _ = tx
            .send(Message::close_with(CLOSE_NOT_FOUND, "no such run"))
            .await;
        return;
    };
    let Some(mut last) = replay(&state, &mut tx, id, since).await else {
        return;
    };
    if !row.status.is_active() {
        end(&mut tx, &serde_json::to_value(&row).unwrap_or_default()).await;
        return;
    }
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            ev = bus.recv() => match ev {
                Ok(event) if event.execution_id == Some(id) => match event.kind {
                    EventType::ExecutionEvent => {
                        let seq = event.seq.unwrap_or(0);
                        if seq <= last {
                            continue;
                        }
                        last = seq;
                        // RunFrame::Event with the data the bus serialised once, spliced in as
                        // it is: parsing it again for every socket is what the bus spares us.
                        let msg = format!(r#"{{"type":"event","data":{}}}"#, event.data());
                        if tx.send(Message::text(msg)).await.is_err() {
                            return;
                        }
                    }
                    EventType::ExecutionFinished => {
                        // Anything stored but missed (lag) goes out before the end.
                        if replay(&state, &mut tx, id, last).await.is_none() {
                            return;
                        }
                        let row = serde_json::from_str(event.data()).unwrap_or_default();
                        end(&mut tx, &row).await;
                        return;
                    }
                    _ => {}
                },
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => match replay(&state, &mut tx, id, last).await {
                    Some(seq) => last = seq,
                    None => return,
                },
                Err(RecvError::Closed) => {
                    let _ = tx.send(Message::close_with(CLOSE_SERVICE_RESTART, "event bus restarted")).await;
                    return;
                }
            },
            incoming = rx.next() => match incoming {
                Some(Ok(msg)) if msg.is_close() => return,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some((code, reason)) = super::ws_upgrade::close_for_error(&e) {
                        let _ = tx.send(Message::close_with(code, reason)).await;
                    }
                    return;
                }
                None => return,
            },
            _ = shutting_down(&mut shutdown) => {
                let (code, why) = crate::handover::going_away();
                let _ = tx.send(Message::close_with(code, why)).await;
                return;
            }
        }
    }
}
