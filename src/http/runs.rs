//! Headless agent runs: `POST /api/tasks/{id}/run` (queue a run of the task with an agent),
//! `POST /api/executions/{id}/cancel`, and WS `/api/executions/{id}/events?since=SEQ` (the run's
//! parsed events: replay from the table, then live, then `{"type":"end"}` and close).
//!
//! The handler builds the argv (`agent_cli::run_argv`) and the prompt (task title and
//! description, written to the CLI's stdin by the run actor — never argv); the run queue
//! (`actors/runs`) records, queues, starts and stops it.

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::agents::load;
use super::json::{limited_body, parse_json, raw_query, reject, reply_json, Query};
use super::terminals::check_dir;
use crate::actors::runs::{prompt_for, RunError, RunRequest};
use crate::agent_cli;
use crate::db::execution_events;
use crate::db::executions::{self, ExecutionType};
use crate::db::tasks;
use crate::error::ApiError;
use crate::state::{shutting_down, AppState, Gauge};

/// Events read from the table per replay query.
const REPLAY_PAGE: i64 = 500;
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_NOT_FOUND: u16 = 4404;
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
}

fn is_conversation_id(s: &str) -> bool {
    // Starts with a letter or digit: it follows `--resume` in argv and must not read as a flag.
    (1..=64).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
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
                "must be a conversation id (1-64 letters, digits, '-'; not starting with '-')",
            )));
        }
    }
    let task = state
        .db
        .read(move |c| tasks::get(c, task_id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?
        .ok_or_else(|| reject(ApiError::not_found("task", task_id)))?;
    if task.executions_active > 0 {
        return Err(reject(ApiError::conflict(
            "task_busy",
            format!("task {task_id} already has a pending or running execution"),
        )));
    }
    let Some(agent_id) = body.agent_id.or(task.agent_id) else {
        return Err(reject(ApiError::validation(
            "agent_id",
            "the task has no agent; name one in the body (agent_id)",
        )));
    };
    let agent = load(&state, agent_id).await.map_err(|e| {
        reject(if e.status == StatusCode::NOT_FOUND {
            ApiError::validation("agent_id", format!("no agent with id {agent_id}"))
        } else {
            e
        })
    })?;
    let dir = task.project_path.clone().or(agent.def.project_dir.clone());
    let roots = state.config.allowed_roots.clone();
    let cwd = tokio::task::spawn_blocking(move || check_dir("project_dir", dir.as_deref(), &roots))
        .await
        .map_err(|e| reject(ApiError::bad_request(format!("validation aborted: {e}"))))?
        .map_err(reject)?;
    let prompt = prompt_for(&task);
    let request = RunRequest {
        task_id,
        priority: task.priority,
        agent_id,
        argv: agent_cli::run_argv(&agent.def, body.resume.as_deref()),
        cwd,
        env: agent.def.env.clone().into_iter().collect(),
        prompt,
    };
    let row = state
        .runs
        .enqueue(request)
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
            let msg = serde_json::json!({"type": "event", "data": e}).to_string();
            tx.send(Message::text(msg)).await.ok()?;
        }
        if n < REPLAY_PAGE {
            return Some(since);
        }
    }
}

async fn end(tx: &mut futures_util::stream::SplitSink<WebSocket, Message>, row: &Value) {
    let msg = serde_json::json!({"type": "end", "status": row["status"], "execution": row});
    let _ = tx.send(Message::text(msg.to_string())).await;
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
    let Some(mut bus) = state.events.subscribe().await else {
        let _ = tx
            .send(Message::close_with(1012u16, "event bus restarting"))
            .await;
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
                Ok(json) => {
                    let Ok(v) = serde_json::from_str::<Value>(&json) else { continue };
                    let data = &v["data"];
                    match v["type"].as_str() {
                        Some("execution.event") if data["execution_id"] == id => {
                            let seq = data["seq"].as_i64().unwrap_or(0);
                            if seq <= last {
                                continue;
                            }
                            last = seq;
                            let msg = serde_json::json!({"type": "event", "data": data});
                            if tx.send(Message::text(msg.to_string())).await.is_err() {
                                return;
                            }
                        }
                        Some("execution.finished") if data["id"] == id => {
                            // Anything stored but missed (lag) goes out before the end.
                            if replay(&state, &mut tx, id, last).await.is_none() {
                                return;
                            }
                            end(&mut tx, data).await;
                            return;
                        }
                        _ => {}
                    }
                }
                Err(RecvError::Lagged(_)) => match replay(&state, &mut tx, id, last).await {
                    Some(seq) => last = seq,
                    None => return,
                },
                Err(RecvError::Closed) => {
                    let _ = tx.send(Message::close_with(1012u16, "event bus restarted")).await;
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
                let _ = tx.send(Message::close_with(CLOSE_GOING_AWAY, "server shutting down")).await;
                return;
            }
        }
    }
}
