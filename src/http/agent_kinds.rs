//! `GET /api/agent-kinds`: the agent CLIs claude-manager knows and what each supports; and the
//! rules a definition's kind imposes when it is saved (`http/agents.rs` calls them): a field
//! the kind cannot express is a 422 naming it, and the command must be a program that exists.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use warp::reply::Response;
use warp::Filter;

use super::json::ok_json;
use crate::agent_cli::{self, AgentKind, KindSpec};
use crate::db::agents::AgentDef;
use crate::error::ApiError;

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("api" / "agent-kinds")
        .and(warp::get())
        .map(|| {
            let items: Vec<Value> = agent_cli::all_kinds().iter().map(describe).collect();
            ok_json(&json!({ "items": items }))
        })
        .boxed()
}

/// One kind as the API shows it: what it supports and the flags it uses for each.
fn describe(s: &KindSpec) -> Value {
    let modes: Vec<&str> = s.permission_modes.iter().map(|(m, _)| *m).collect();
    json!({
        "kind": s.kind,
        "label": s.label,
        "default_command": s.default_command,
        "supports": {
            "model": s.model_flag.is_some(),
            "system_prompt": s.system_prompt_flag.is_some(),
            "permission_modes": modes,
            "allowed_tools": s.allowed_tools_flag.is_some(),
            "session_resume": !s.session_resume.is_empty(),
            "run_resume": s.run_resume.is_some() || s.resume_from_session_args,
            "headless_output": s.output,
        },
        "flags": {
            "model": s.model_flag,
            "system_prompt": s.system_prompt_flag,
            "permission_modes": s.permission_modes.iter()
                .map(|(m, f)| (m.to_string(), json!(f)))
                .collect::<serde_json::Map<_, _>>(),
            "allowed_tools": s.allowed_tools_flag,
            "headless": s.headless_args,
            "run_resume": s.run_resume,
        },
        "prompt": "stdin",
        "session_args": {"first": s.session_first, "resume": s.session_resume},
    })
}

/// Refuses a field the definition's kind has no flag for: silently dropping it would run the
/// agent other than its user asked.
pub fn check_kind_fields(def: &AgentDef) -> Result<(), ApiError> {
    let s = agent_cli::spec(def.kind);
    let lacks = |field: &str, what: &str| {
        ApiError::validation(
            field,
            format!(
                "{} agents have no {what} flag; leave it empty, or put the CLI's own flag in args",
                s.label
            ),
        )
    };
    if def.model.is_some() && s.model_flag.is_none() {
        return Err(lacks("model", "model"));
    }
    if def.system_prompt.is_some() && s.system_prompt_flag.is_none() {
        return Err(lacks("system_prompt", "system prompt"));
    }
    if !def.allowed_tools.is_empty() && s.allowed_tools_flag.is_none() {
        return Err(lacks("allowed_tools", "allowed-tools"));
    }
    if let Some(mode) = &def.permission_mode {
        if !s.permission_modes.iter().any(|(m, _)| m == mode) {
            if s.permission_modes.is_empty() {
                return Err(lacks("permission_mode", "permission-mode"));
            }
            let modes: Vec<&str> = s.permission_modes.iter().map(|(m, _)| *m).collect();
            return Err(ApiError::validation(
                "permission_mode",
                format!(
                    "{} agents accept {}; got {mode:?}",
                    s.label,
                    modes.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The command's program must exist and be executable where a session or run will look for it:
/// an absolute path as is, a relative path from `cwd` (the agent's project directory), a bare
/// name on the PATH its children get (the agent's own `PATH`, else the server's). Blocking.
pub fn check_command(def: &AgentDef, cwd: &Path) -> Result<(), ApiError> {
    let program = &def.command[0];
    let path_env = def.env.get("PATH").map(std::ffi::OsString::from);
    let candidate = if program.contains('/') {
        cwd.join(program).display().to_string()
    } else {
        program.clone()
    };
    if crate::pty::resolve_command(&candidate, path_env.as_deref()).is_some() {
        return Ok(());
    }
    let hint = match (program.contains('/'), def.kind) {
        (true, _) => format!("{program:?} is not an executable file"),
        (false, AgentKind::Command) => format!(
            "{program:?} is not an executable on the server's PATH; give its full path, or \
             install it for the user the server runs as"
        ),
        (false, _) => format!(
            "{program:?} ({}) is not installed on the server's PATH; install it for the user \
             the server runs as, or give its full path",
            agent_cli::spec(def.kind).label
        ),
    };
    Err(ApiError::validation("command", hint))
}

/// Where a relative command is found from: the project directory, else the server user's home.
pub fn command_cwd(def: &AgentDef) -> PathBuf {
    def.project_dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(crate::pty::home_dir)
}
