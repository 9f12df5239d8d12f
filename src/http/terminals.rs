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
use crate::actors::session_types::{SessionError, SessionKind, SessionSpec};
use crate::error::ApiError;
use crate::pty::{self, WindowSize};
use crate::state::AppState;
use crate::validate::{check_dir, check_env};

use super::sessions::{get_session, list_sessions, stop_session};

const DEFAULT_COLS: u16 = 80;
const DEFAULT_ROWS: u16 = 24;
/// Largest terminal accepted either way; bigger is a client bug, not a screen.
pub const MAX_CELLS: i64 = 1000;
const NAME_MAX_CHARS: usize = 200;
const ARGV_MAX: usize = 1024;

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
            SessionError::Spawn(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "spawn_failed",
                "could not start the session (see the server log)",
            )
            .with_internal(e.to_string()),
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
        size_held_by: None,
        title: None,
    };
    let info = state
        .sessions
        .create(spec)
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    Ok(reply_json(StatusCode::CREATED, &info))
}

async fn list(state: AppState) -> Result<Response, Rejection> {
    let items = list_sessions(&state, SessionKind::Terminal)
        .await
        .map_err(reject)?;
    Ok(Page::reply_all(items))
}

async fn get(id: String, state: AppState) -> Result<Response, Rejection> {
    let info = get_session(&state, SessionKind::Terminal, &id)
        .await
        .map_err(reject)?;
    Ok(ok_json(&info))
}

async fn delete(id: String, state: AppState) -> Result<Response, Rejection> {
    stop_session(&state, SessionKind::Terminal, &id)
        .await
        .map_err(reject)
}
