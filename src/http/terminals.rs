//! `/api/terminals`: start, list, read and stop terminal sessions; the WebSocket lives in
//! `session_ws.rs` (shared with agent sessions).
//!
//! Handlers validate the request into a [`SessionSpec`] and hand it to the sessions supervisor.
//! Rules (issue 3): argv non-empty strings without NUL and found on PATH (400
//! `command_not_found`); cwd an existing directory inside the allowed roots after
//! canonicalisation; cols/rows 1–1000; env names `[A-Za-z_][A-Za-z0-9_]*`, values without NUL.
//! Filesystem checks run on a blocking thread.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{json_body, ok_json, reject, reply_json, Page};
use crate::actors::session_types::{
    is_valid_session_id, SessionError, SessionInfo, SessionKind, SessionSpec,
};
use crate::actors::sessions::CALL_TIMEOUT;
use crate::actors::terminal::TerminalMsg;
use crate::error::ApiError;
use crate::pty::{self, WindowSize};
use crate::state::AppState;
use crate::validate::check_dir;

const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Largest terminal accepted either way; bigger is a client bug, not a screen.
pub const MAX_CELLS: i64 = 1000;
const NAME_MAX_CHARS: usize = 200;
const ARGV_MAX: usize = 1024;
const ENV_MAX: usize = 256;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let limit = state.config.body_limit_bytes;
    let base = warp::path!("api" / "terminals");
    let one = warp::path!("api" / "terminals" / String);
    let list = base.and(warp::get()).and(with_state.clone()).and_then(list);
    let create = base
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body::<CreateTerminal>(limit))
        .and_then(create);
    let get = one.and(warp::get()).and(with_state.clone()).and_then(get);
    let delete = one.and(warp::delete()).and(with_state).and_then(delete);
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(delete)
        .unify()
        .or(super::session_ws::route(state, SessionKind::Terminal))
        .unify()
        .or(super::recording::route(state, SessionKind::Terminal))
        .unify()
        .boxed()
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::TooMany { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                e.to_string(),
            ),
            SessionError::CommandNotFound(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "command_not_found", e.to_string())
                    .with_field("command")
            }
            SessionError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            SessionError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sessions_unavailable",
                e.to_string(),
            ),
            SessionError::Spawn(_) => {
                let mut err = ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "spawn_failed",
                    "could not start the session (see the server log)",
                );
                err.internal = Some(e.to_string());
                err
            }
            SessionError::Db(db) => db.into(),
            SessionError::Isolation(e) => e.into(),
            SessionError::CapUnavailable { field, why } => ApiError::validation(field, why),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminal {
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    cols: Option<i64>,
    #[serde(default)]
    rows: Option<i64>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    task_id: Option<i64>,
    #[serde(default)]
    memory_max_bytes: Option<i64>,
    #[serde(default)]
    pids_max: Option<i64>,
}

fn check_cells(field: &str, v: Option<i64>, default: u16) -> Result<u16, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=MAX_CELLS).contains(&n) => Ok(n as u16),
        Some(n) => Err(ApiError::validation(
            field,
            format!("must be 1-{MAX_CELLS}, got {n}"),
        )),
    }
}

/// A session's or agent's env: at most [`ENV_MAX`] variables, names `[A-Za-z_][A-Za-z0-9_]*`,
/// values without NUL. Names are the user's own input, not secrets; values are never echoed.
pub fn check_env(vars: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    if vars.len() > ENV_MAX {
        return Err(ApiError::validation(
            "env",
            format!("at most {ENV_MAX} variables, got {}", vars.len()),
        ));
    }
    for (k, v) in vars {
        if !is_env_name(k) {
            return Err(ApiError::validation(
                "env",
                format!("variable name {k:?} must match [A-Za-z_][A-Za-z0-9_]*"),
            ));
        }
        if v.contains('\0') {
            return Err(ApiError::validation(
                &format!("env.{k}"),
                "value must not contain a NUL byte",
            ));
        }
    }
    Ok(())
}

pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// Checks that need no filesystem: shapes and ranges.
fn check_shape(body: &CreateTerminal) -> Result<(Vec<(String, String)>, WindowSize), ApiError> {
    if let Some(argv) = &body.command {
        if argv.is_empty() || argv.len() > ARGV_MAX {
            return Err(ApiError::validation(
                "command",
                format!(
                    "must be a list of 1-{ARGV_MAX} strings (argv), got {}",
                    argv.len()
                ),
            ));
        }
        if argv[0].is_empty() {
            return Err(ApiError::validation(
                "command",
                "the program (first item) is empty",
            ));
        }
        if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
            return Err(ApiError::validation(
                &format!("command[{i}]"),
                "must not contain a NUL byte",
            ));
        }
    }
    if let Some(name) = &body.name {
        let n = name.chars().count();
        if n > NAME_MAX_CHARS {
            return Err(ApiError::validation(
                "name",
                format!("must be at most {NAME_MAX_CHARS} characters, got {n}"),
            ));
        }
    }
    let size = WindowSize {
        cols: check_cells("cols", body.cols, DEFAULT_COLS)?,
        rows: check_cells("rows", body.rows, DEFAULT_ROWS)?,
    };
    let mut env = Vec::new();
    if let Some(vars) = &body.env {
        check_env(vars)?;
        env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok((env, size))
}

/// Canonicalises `cwd` and checks it against the allowed roots; finds the program.
/// Blocking (filesystem): run on a blocking thread.
fn check_paths(
    cwd: Option<&str>,
    argv: &[String],
    env: &[(String, String)],
    roots: &[PathBuf],
) -> Result<PathBuf, ApiError> {
    let canonical = check_dir("cwd", cwd, roots)?;
    let program = &argv[0];
    let path_env = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| std::ffi::OsString::from(v));
    let lookup = if program.contains('/') {
        canonical.join(program).display().to_string()
    } else {
        program.clone()
    };
    if pty::resolve_command(&lookup, path_env.as_deref()).is_none() {
        return Err(SessionError::CommandNotFound(program.clone()).into());
    }
    Ok(canonical)
}

async fn create(state: AppState, body: CreateTerminal) -> Result<Response, Rejection> {
    let (env, size) = check_shape(&body).map_err(reject)?;
    let caps = crate::validate::check_caps(body.memory_max_bytes, body.pids_max).map_err(reject)?;
    if let Some(task_id) = body.task_id {
        let exists = state
            .db
            .read(move |c| crate::db::tasks::get(c, task_id))
            .await
            .map_err(|e| reject(ApiError::from(e)))?
            .is_some();
        if !exists {
            return Err(reject(ApiError::validation(
                "task_id",
                format!("no task with id {task_id}"),
            )));
        }
    }
    let argv = body.command.unwrap_or_else(|| vec![pty::login_shell()]);
    let cwd = {
        let (cwd, argv, env, roots) = (
            body.cwd.clone(),
            argv.clone(),
            env.clone(),
            state.config.allowed_roots.clone(),
        );
        tokio::task::spawn_blocking(move || check_paths(cwd.as_deref(), &argv, &env, &roots))
            .await
            .map_err(|e| reject(ApiError::bad_request(format!("validation aborted: {e}"))))?
            .map_err(reject)?
    };
    let spec = SessionSpec {
        kind: SessionKind::Terminal,
        name: body.name,
        argv,
        cwd,
        env,
        size,
        task_id: body.task_id,
        agent_id: None,
        idle_timeout: state.config.terminal_idle_timeout,
        conversation_id: None,
        worktree: None,
        caps,
    };
    let info = state
        .sessions
        .create(spec)
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    Ok(reply_json(StatusCode::CREATED, &info))
}

/// Asks one session actor for its description.
pub async fn session_info(actor: &ractor::ActorRef<TerminalMsg>) -> Result<SessionInfo, ApiError> {
    match actor.call(TerminalMsg::Info, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success(info)) => Ok(info),
        _ => Err(SessionError::NotFound.into()),
    }
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

async fn list(state: AppState) -> Result<Response, Rejection> {
    let items = list_sessions(&state, SessionKind::Terminal)
        .await
        .map_err(reject)?;
    let total = items.len() as i64;
    Ok(ok_json(&Page {
        items,
        total,
        limit: total,
        offset: 0,
    }))
}

async fn get(id: String, state: AppState) -> Result<Response, Rejection> {
    let actor = find(&state, SessionKind::Terminal, &id)
        .await
        .map_err(reject)?;
    Ok(ok_json(&session_info(&actor).await.map_err(reject)?))
}

/// Stops a live session (202: the stop sequence runs on; watch `session.exited`), or forgets an
/// exited one (200).
pub async fn stop_session(
    state: &AppState,
    kind: SessionKind,
    id: &str,
) -> Result<Response, ApiError> {
    let actor = find(state, kind, id).await?;
    match actor.call(TerminalMsg::Stop, Some(CALL_TIMEOUT)).await {
        Ok(ractor::rpc::CallResult::Success((info, exited))) => {
            if exited {
                state.sessions.remove(kind, id);
                Ok(ok_json(&info))
            } else {
                Ok(reply_json(StatusCode::ACCEPTED, &info))
            }
        }
        _ => Err(not_found(kind, id)),
    }
}

async fn delete(id: String, state: AppState) -> Result<Response, Rejection> {
    stop_session(&state, SessionKind::Terminal, &id)
        .await
        .map_err(reject)
}
