//! `/api/agents`: create, list, read, change and delete agent definitions.
//!
//! A definition is validated as a whole ([`AgentInput::validate`]); PATCH overlays the request's
//! fields on the stored definition and validates the result the same way, so both paths keep
//! the same rules. Env values of secret-looking names are never shown (`auth::redact_env`); a
//! PATCH that sends such a value back as `[redacted]` keeps the stored one.

use crate::actors::events::EventType;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::agent_kinds::{check_command, check_kind_fields, command_cwd};
use super::json::{get_listing, json_body, ok_json, parse_json, reject, reply_json, Page, Query};
use crate::agent_cli::{self, owned, AgentKind};
use crate::auth::{redact_env, REDACTED};
use crate::db::agents::{
    self, Agent, AgentDef, AgentError, RestartPolicy, RestartPolicyKind, SessionArgs,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate::check_dir;
use crate::validate::check_env;

const NAME_MAX_CHARS: usize = 64;
const DESCRIPTION_MAX_CHARS: usize = 2_000;
const ARGV_MAX: usize = 256;
const MODEL_MAX_CHARS: usize = 200;
const SYSTEM_PROMPT_MAX_CHARS: usize = 100_000;
const TOOLS_MAX: usize = 128;
const TOOL_MAX_CHARS: usize = 200;
/// 30 min, as the previous system; 0 = never stopped for idleness.
pub const IDLE_TIMEOUT_DEFAULT_SECS: u64 = 1800;
const IDLE_TIMEOUT_MAX_SECS: u64 = 30 * 24 * 3600;
/// Issue 4: backoff 1 s doubling to 60 s; at most 5 restarts in 10 min.
const BACKOFF_INITIAL_DEFAULT_MS: u64 = 1_000;
const BACKOFF_MAX_DEFAULT_MS: u64 = 60_000;
const MAX_RESTARTS_DEFAULT: u32 = 5;
const RESTART_WINDOW_DEFAULT_SECS: u64 = 600;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let limit = state.config.body_limit_bytes;
    let base = warp::path!("api" / "agents");
    let one = warp::path!("api" / "agents" / i64);
    let list = base.and(get_listing(state)).and_then(list);
    let create = base
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body::<AgentInput>(limit))
        .and_then(create);
    let get = one.and(warp::get()).and(with_state.clone()).and_then(get);
    let patch = one
        .and(warp::patch())
        .and(with_state.clone())
        .and(json_body::<Map<String, Value>>(limit))
        .and_then(patch);
    let delete = one.and(warp::delete()).and(with_state).and_then(delete);
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(patch)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::NotFound(id) => ApiError::not_found("agent", id),
            AgentError::NameTaken(_) => {
                ApiError::conflict("name_taken", e.to_string()).with_field("name")
            }
            AgentError::Busy(_) => ApiError::conflict(
                "agent_busy",
                format!("{e}; stop the session or cancel the run first"),
            ),
            AgentError::Db(e) => e.into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RestartInput {
    policy: Option<RestartPolicyKind>,
    backoff_initial_ms: Option<u64>,
    backoff_max_ms: Option<u64>,
    max_restarts: Option<u32>,
    window_secs: Option<u64>,
}

/// A permission prompt waits at most a day for its user (`approval_timeout_secs`).
const APPROVAL_TIMEOUT_MAX_SECS: u64 = 86_400;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SessionArgsInput {
    first: Option<Vec<String>>,
    resume: Option<Vec<String>>,
}

/// The request shape of POST (and of a PATCH merged onto the stored definition).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    name: String,
    kind: Option<AgentKind>,
    description: Option<String>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    model: Option<String>,
    system_prompt: Option<String>,
    project_dir: Option<String>,
    env: Option<BTreeMap<String, String>>,
    permission_mode: Option<String>,
    allowed_tools: Option<Vec<String>>,
    idle_timeout_secs: Option<u64>,
    restart: Option<RestartInput>,
    session_args: Option<SessionArgsInput>,
    isolation: Option<String>,
    memory_max_bytes: Option<i64>,
    pids_max: Option<i64>,
    approval_timeout_secs: Option<u64>,
    approval_rules: Option<crate::approvals::rules::Rules>,
    /// Read-only fields a client may send back from a GET; ignored.
    #[serde(default, rename = "id")]
    _id: Option<Value>,
    #[serde(default, rename = "conversation_id")]
    _conversation_id: Option<Value>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<Value>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<Value>,
}

fn check_argv(field: &str, argv: &[String], min: usize) -> Result<(), ApiError> {
    if argv.len() < min || argv.len() > ARGV_MAX {
        return Err(ApiError::validation(
            field,
            format!(
                "must be a list of {min}-{ARGV_MAX} strings, got {}",
                argv.len()
            ),
        ));
    }
    if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
        return Err(ApiError::validation(
            &format!("{field}[{i}]"),
            "must not contain a NUL byte",
        ));
    }
    Ok(())
}

/// An optional single-line-ish text: trimmed, empty means absent, bounded, no NUL.
fn check_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let n = v.chars().count();
    if n > max || v.contains('\0') {
        return Err(ApiError::validation(
            field,
            format!("must be at most {max} characters without NUL, got {n}"),
        ));
    }
    Ok((!v.trim().is_empty()).then_some(v))
}

impl AgentInput {
    /// Every rule but the filesystem ones (`project_dir` and the command, [`check_paths`]).
    fn validate(self) -> Result<AgentDef, ApiError> {
        let name = self.name.trim().to_string();
        let n = name.chars().count();
        if n == 0 || n > NAME_MAX_CHARS || name.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "name",
                format!("must be 1-{NAME_MAX_CHARS} printable characters, got {n}"),
            ));
        }
        let description =
            check_text("description", self.description, DESCRIPTION_MAX_CHARS)?.unwrap_or_default();
        let command = match (self.command, self.kind) {
            (Some(c), _) => c,
            (None, Some(AgentKind::Command)) => {
                return Err(ApiError::validation(
                    "command",
                    "a command agent needs its command (the program and its arguments)",
                ))
            }
            (None, kind) => {
                owned(agent_cli::spec(kind.unwrap_or(AgentKind::Claude)).default_command)
            }
        };
        check_argv("command", &command, 1)?;
        let kind = self
            .kind
            .unwrap_or_else(|| AgentKind::default_for(&command));
        if command[0].trim().is_empty() {
            return Err(ApiError::validation(
                "command",
                "the program (first item) is empty",
            ));
        }
        let args = self.args.unwrap_or_default();
        check_argv("args", &args, 0)?;
        let model = check_text("model", self.model, MODEL_MAX_CHARS)?;
        if model.as_deref().is_some_and(|m| m.starts_with('-')) {
            return Err(ApiError::validation("model", "must not start with '-'"));
        }
        let system_prompt =
            check_text("system_prompt", self.system_prompt, SYSTEM_PROMPT_MAX_CHARS)?;
        // Which modes are accepted depends on the kind (`agent_kinds::check_kind_fields`).
        let permission_mode = check_text("permission_mode", self.permission_mode, MODEL_MAX_CHARS)?;
        let env = self.env.unwrap_or_default();
        check_env(&env)?;
        let allowed_tools = self.allowed_tools.unwrap_or_default();
        if allowed_tools.len() > TOOLS_MAX {
            return Err(ApiError::validation(
                "allowed_tools",
                format!("at most {TOOLS_MAX} tools, got {}", allowed_tools.len()),
            ));
        }
        if let Some(t) = allowed_tools.iter().find(|t| {
            let n = t.chars().count();
            n == 0 || n > TOOL_MAX_CHARS || t.contains([',', '\0']) || t.starts_with('-')
        }) {
            return Err(ApiError::validation(
                "allowed_tools",
                format!(
                    "each tool must be 1-{TOOL_MAX_CHARS} characters, without ',' or NUL, not \
                     starting with '-'; got {t:?}"
                ),
            ));
        }
        let idle_timeout_secs = self.idle_timeout_secs.unwrap_or(IDLE_TIMEOUT_DEFAULT_SECS);
        if idle_timeout_secs > IDLE_TIMEOUT_MAX_SECS {
            return Err(ApiError::validation(
                "idle_timeout_secs",
                format!("must be 0-{IDLE_TIMEOUT_MAX_SECS} (0 = never), got {idle_timeout_secs}"),
            ));
        }
        let r = self.restart.unwrap_or_default();
        let restart = RestartPolicy {
            policy: r.policy.unwrap_or(RestartPolicyKind::Never),
            backoff_initial_ms: r.backoff_initial_ms.unwrap_or(BACKOFF_INITIAL_DEFAULT_MS),
            backoff_max_ms: r.backoff_max_ms.unwrap_or(BACKOFF_MAX_DEFAULT_MS),
            max_restarts: r.max_restarts.unwrap_or(MAX_RESTARTS_DEFAULT),
            window_secs: r.window_secs.unwrap_or(RESTART_WINDOW_DEFAULT_SECS),
        };
        if !(1..=3_600_000).contains(&restart.backoff_initial_ms)
            || restart.backoff_max_ms < restart.backoff_initial_ms
            || restart.backoff_max_ms > 3_600_000
        {
            return Err(ApiError::validation(
                "restart.backoff_initial_ms",
                "backoff must be 1-3600000 ms and backoff_max_ms at least backoff_initial_ms",
            ));
        }
        if restart.max_restarts > 1000 || !(1..=86_400).contains(&restart.window_secs) {
            return Err(ApiError::validation(
                "restart.max_restarts",
                "max_restarts must be 0-1000 and window_secs 1-86400",
            ));
        }
        let s = self.session_args.unwrap_or_default();
        let spec = agent_cli::spec(kind);
        let session_args = SessionArgs {
            first: s.first.unwrap_or_else(|| owned(spec.session_first)),
            resume: s.resume.unwrap_or_else(|| owned(spec.session_resume)),
        };
        check_argv("session_args.first", &session_args.first, 0)?;
        check_argv("session_args.resume", &session_args.resume, 0)?;
        crate::isolation::parse("isolation", self.isolation.as_deref())?;
        let approval_timeout_secs = self
            .approval_timeout_secs
            .unwrap_or(crate::approvals::DEFAULT_TIMEOUT_SECS);
        if !(1..=APPROVAL_TIMEOUT_MAX_SECS).contains(&approval_timeout_secs) {
            return Err(ApiError::validation(
                "approval_timeout_secs",
                format!("must be 1-{APPROVAL_TIMEOUT_MAX_SECS}, got {approval_timeout_secs}"),
            ));
        }
        let approval_rules = self.approval_rules.unwrap_or_default();
        approval_rules
            .check()
            .map_err(|why| ApiError::validation("approval_rules", why))?;
        let caps = crate::validate::check_caps(self.memory_max_bytes, self.pids_max)?;
        let def = AgentDef {
            name,
            kind,
            description,
            command,
            args,
            model,
            system_prompt,
            project_dir: self.project_dir,
            env,
            permission_mode,
            allowed_tools,
            idle_timeout_secs,
            restart,
            session_args,
            isolation: self.isolation,
            approval_timeout_secs,
            approval_rules,
            memory_max_bytes: caps.memory_max_bytes,
            pids_max: caps.pids_max,
        };
        check_kind_fields(&def)?;
        Ok(def)
    }
}

/// The filesystem rules, on a blocking thread: `project_dir` canonical inside the allowed
/// roots, and the command's program found and executable (`agent_kinds::check_command`).
async fn check_paths(state: &AppState, mut def: AgentDef) -> Result<AgentDef, ApiError> {
    let roots: Vec<PathBuf> = state.config.allowed_roots.clone();
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = def.project_dir.clone() {
            let canonical = check_dir("project_dir", Some(&dir), &roots)?;
            def.project_dir = Some(canonical.display().to_string());
        }
        check_command(&def, &command_cwd(&def))?;
        Ok(def)
    })
    .await
    .map_err(|e| ApiError::bad_request(format!("validation aborted: {e}")))?
}

/// An agent as responses show it: secret-looking env values redacted.
pub fn view(agent: &Agent) -> Value {
    let mut v = serde_json::to_value(agent).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        let env = redact_env(agent.def.env.clone());
        obj.insert("env".into(), serde_json::to_value(env).unwrap_or_default());
    }
    v
}

async fn list(state: AppState, raw: String) -> Result<Response, Rejection> {
    let q = Query::parse(&raw, &["limit", "offset"]).map_err(reject)?;
    let (limit, offset) = q.paging().map_err(reject)?;
    let (items, total) = state
        .db
        .read(move |c| agents::list(c, limit, offset))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    Ok(Page::reply(
        items.iter().map(view).collect(),
        total,
        (limit, offset),
    ))
}

async fn create(state: AppState, body: AgentInput) -> Result<Response, Rejection> {
    let def = body.validate().map_err(reject)?;
    let def = check_paths(&state, def).await.map_err(reject)?;
    let agent = state
        .db
        .write(move |c| agents::insert(c, &def))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let shown = view(&agent);
    state.events.publish(EventType::AgentCreated, &shown);
    Ok(reply_json(StatusCode::CREATED, &shown))
}

pub async fn load(state: &AppState, id: i64) -> Result<Agent, ApiError> {
    state
        .db
        .read(move |c| agents::get(c, id))
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found("agent", id))
}

async fn get(id: i64, state: AppState) -> Result<Response, Rejection> {
    let agent = load(&state, id).await.map_err(reject)?;
    Ok(ok_json(&view(&agent)))
}

/// The stored definition with the request's fields laid over it (objects one level deep).
fn merge(current: &AgentDef, patch: Map<String, Value>) -> Result<Vec<u8>, ApiError> {
    let mut merged = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (key, value) in patch {
        match (merged.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) if key == "env" => {
                // Replace the env as a whole, but a value sent back redacted keeps the stored one.
                let mut env = Map::new();
                for (k, v) in new {
                    let keep = v.as_str() == Some(REDACTED) && old.contains_key(&k);
                    let v = if keep { old[&k].clone() } else { v };
                    env.insert(k, v);
                }
                *old = env;
            }
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
    serde_json::to_vec(&merged).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn patch(id: i64, state: AppState, body: Map<String, Value>) -> Result<Response, Rejection> {
    let current = load(&state, id).await.map_err(reject)?;
    let merged = merge(&current.def, body).map_err(reject)?;
    let input: AgentInput = parse_json(&merged).map_err(reject)?;
    let def = input.validate().map_err(reject)?;
    let def = check_paths(&state, def).await.map_err(reject)?;
    let agent = state
        .db
        .write(move |c| agents::update(c, id, &def))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let shown = view(&agent);
    state.events.publish(EventType::AgentUpdated, &shown);
    Ok(ok_json(&shown))
}

async fn delete(id: i64, state: AppState) -> Result<Response, Rejection> {
    let agent = state
        .db
        .write(move |c| agents::delete(c, id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    state.events.publish(
        EventType::AgentDeleted,
        &serde_json::json!({ "id": agent.id }),
    );
    let mut resp = Response::new(Vec::<u8>::new().into());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
