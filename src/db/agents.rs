//! The `agents` table: named agent definitions, and the conversation id their sessions resume.
//!
//! A definition ([`AgentDef`]) is validated as a whole by `http/agents.rs` and stored as one JSON
//! object; only the name has a column (it must be unique). Deleting an agent that still has a
//! pending or running execution (a live session, a queued or running run) is refused.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::DbError;
use crate::agent_cli::{self, AgentKind};
use crate::time::now_rfc3339;

/// `never` (default) or `on_failure` with exponential backoff and an intensity limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicyKind {
    Never,
    OnFailure,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    pub policy: RestartPolicyKind,
    /// First delay before a restart; doubles on each restart up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// More than this many restarts inside `window_secs` and the session is failed for good.
    pub max_restarts: u32,
    pub window_secs: u64,
}

/// How the agent CLI is told which conversation to start or continue. `{session_id}` in any
/// item is replaced by the agent's conversation id (a UUID). Claude Code: `["--session-id",
/// "{session_id}"]` the first time, `["--resume", "{session_id}"]` after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionArgs {
    pub first: Vec<String>,
    pub resume: Vec<String>,
}

/// A validated agent definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentDef {
    pub name: String,
    /// Which CLI `command` is, so its flags are spelled its way (`crate::agent_cli`). A stored
    /// definition from before kinds existed gets [`AgentKind::default_for`] when read.
    pub kind: AgentKind,
    pub description: String,
    /// argv of the agent CLI (`["claude"]` by default).
    pub command: Vec<String>,
    /// Appended after `command` and the flags derived from the fields below.
    pub args: Vec<String>,
    pub model: Option<String>,
    pub system_prompt: Option<String>,
    /// Canonical, inside the allowed roots; `None` = the server user's home.
    pub project_dir: Option<String>,
    pub env: BTreeMap<String, String>,
    pub permission_mode: Option<String>,
    pub allowed_tools: Vec<String>,
    pub idle_timeout_secs: u64,
    pub restart: RestartPolicy,
    pub session_args: SessionArgs,
    /// `"worktree"`: each headless run and session gets its own git worktree
    /// (`crate::isolation`).
    #[serde(default)]
    pub isolation: Option<String>,
    /// Caps of each of its sessions' cgroup (`pty/caps.rs`); `None` = not capped.
    #[serde(default)]
    pub memory_max_bytes: Option<u64>,
    #[serde(default)]
    pub pids_max: Option<u64>,
    /// A permission prompt nobody answers within this is denied (issue 16).
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_secs: u64,
    /// Applied before anyone is asked: `{"allow": ["Read"], "deny": ["Bash(rm *)"]}`.
    #[serde(default)]
    pub approval_rules: crate::approvals::rules::Rules,
}

fn default_approval_timeout() -> u64 {
    crate::approvals::DEFAULT_TIMEOUT_SECS
}

/// A stored agent. `env` holds the real values: show it only through `auth::redact_env`.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub id: i64,
    #[serde(flatten)]
    pub def: AgentDef,
    pub conversation_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no agent with id {0}")]
    NotFound(i64),
    #[error("an agent named {0:?} already exists")]
    NameTaken(String),
    #[error("agent {0} has a live session or a pending or running run")]
    Busy(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for AgentError {
    fn from(e: rusqlite::Error) -> Self {
        AgentError::Db(DbError::Sqlite(e))
    }
}

const SELECT: &str = "SELECT id, definition, conversation_id, created_at, updated_at FROM agents";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    let def: String = row.get(1)?;
    let def = serde_json::from_str(&def)
        .map(with_kind)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?;
    Ok(Agent {
        id: row.get(0)?,
        def,
        conversation_id: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
    })
}

/// A definition stored before kinds existed: its kind is the default for its command, and a
/// non-Claude kind loses the Claude Code session args it was given by default then (they were
/// never its user's choice) for its kind's own.
fn with_kind(mut def: serde_json::Value) -> serde_json::Value {
    let Some(obj) = def.as_object_mut() else {
        return def;
    };
    if obj.contains_key("kind") {
        return def;
    }
    let command: Vec<String> = obj
        .get("command")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let kind = AgentKind::default_for(&command);
    let claude = agent_cli::spec(AgentKind::Claude);
    let claude_defaults = serde_json::json!({
        "first": claude.session_first, "resume": claude.session_resume,
    });
    if kind != AgentKind::Claude && obj.get("session_args") == Some(&claude_defaults) {
        let spec = agent_cli::spec(kind);
        obj.insert(
            "session_args".into(),
            serde_json::json!({"first": spec.session_first, "resume": spec.session_resume}),
        );
    }
    obj.insert("kind".into(), serde_json::json!(kind.as_str()));
    def
}

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn to_json(def: &AgentDef) -> String {
    // Plain data: serialisation cannot fail.
    serde_json::to_string(def).unwrap_or_else(|_| "{}".into())
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Agent>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// A write's error: the unique name already taken, or the database's own.
fn name_taken_or(e: rusqlite::Error, def: &AgentDef) -> AgentError {
    if unique_violation(&e) {
        AgentError::NameTaken(def.name.clone())
    } else {
        e.into()
    }
}

pub fn insert(conn: &Connection, def: &AgentDef) -> Result<Agent, AgentError> {
    let now = now_rfc3339();
    conn.prepare_cached(
        "INSERT INTO agents (name, definition, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
    )?
    .execute(params![def.name, to_json(def), now])
    .map_err(|e| name_taken_or(e, def))?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(AgentError::NotFound(id))
}

pub fn update(conn: &Connection, id: i64, def: &AgentDef) -> Result<Agent, AgentError> {
    let n = conn
        .prepare_cached(
            "UPDATE agents SET name = ?2, definition = ?3, updated_at = ?4 WHERE id = ?1",
        )?
        .execute(params![id, def.name, to_json(def), now_rfc3339()])
        .map_err(|e| name_taken_or(e, def))?;
    if n == 0 {
        return Err(AgentError::NotFound(id));
    }
    get(conn, id)?.ok_or(AgentError::NotFound(id))
}

/// Whether the agent has an execution still pending or running (session or run).
pub fn is_busy(conn: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM executions
                            WHERE agent_id = ?1 AND status IN ('pending','running'))",
        )?
        .query_row([id], |r| r.get(0))?)
}

/// Deletes an agent unless it is busy; the check and the delete are one transaction.
pub fn delete(conn: &mut Connection, id: i64) -> Result<Agent, AgentError> {
    let tx = conn.transaction()?;
    let agent = get(&tx, id)?.ok_or(AgentError::NotFound(id))?;
    if is_busy(&tx, id)? {
        return Err(AgentError::Busy(id));
    }
    tx.execute("DELETE FROM agents WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(agent)
}

/// Every agent, by name (a handful per server: no paging needed beyond a cap).
pub fn list(conn: &Connection, limit: i64, offset: i64) -> Result<(Vec<Agent>, i64), DbError> {
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM agents")?
        .query_row([], |r| r.get(0))?;
    let mut stmt =
        conn.prepare_cached(&format!("{SELECT} ORDER BY name, id LIMIT ?1 OFFSET ?2"))?;
    let rows = stmt
        .query_map([limit, offset], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// The conversation a session of this agent starts now: its id (made on first use) and whether
/// a session already ran it (then it is resumed). Callers serialise this per agent (the sessions
/// supervisor does) and call [`mark_conversation_started`] once the CLI is running.
pub fn conversation(conn: &mut Connection, id: i64) -> Result<(String, bool), AgentError> {
    let tx = conn.transaction()?;
    let (existing, started): (Option<String>, bool) = tx
        .query_row(
            "SELECT conversation_id, conversation_started FROM agents WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(AgentError::NotFound(id))?;
    let conversation = match existing {
        Some(c) => c,
        None => {
            let c = uuid::Uuid::new_v4().to_string();
            tx.execute(
                "UPDATE agents SET conversation_id = ?2 WHERE id = ?1",
                params![id, c],
            )?;
            c
        }
    };
    tx.commit()?;
    Ok((conversation, started))
}

/// From now on, sessions of this agent resume its conversation.
pub fn mark_conversation_started(conn: &Connection, id: i64) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE agents SET conversation_started = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
