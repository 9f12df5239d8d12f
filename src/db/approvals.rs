//! The `approvals` and `hook_tokens` tables, and `executions.attention` (issue 16).
//!
//! An approval is decided once: [`decide`] updates only a `pending` row, so two deciders (a
//! user and the timeout, two browsers) cannot both win — the loser sees the row as it was
//! decided. The asker's `request_key` is unique, so an asker that reconnects finds its request.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::DbError;
use crate::time::now_rfc3339;

/// An approval as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub id: i64,
    pub execution_id: Option<i64>,
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    /// `hook` (an interactive session's PermissionRequest hook) or `mcp` (a run's permission
    /// prompt tool).
    pub source: String,
    pub tool_name: String,
    pub tool_input: Value,
    /// `pending`, `allowed`, `denied` or `cancelled` (the agent stopped waiting).
    pub status: String,
    pub message: Option<String>,
    pub decided_by: Option<String>,
    pub created_at: String,
    pub deadline: String,
    pub decided_at: Option<String>,
    #[serde(skip)]
    pub request_key: String,
}

/// A request to record.
#[derive(Debug, Clone)]
pub struct NewApproval {
    pub request_key: String,
    pub execution_id: Option<i64>,
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    pub source: &'static str,
    pub tool_name: String,
    pub tool_input: Value,
    pub deadline: String,
}

/// Who asked, as a hook token names it.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub execution_id: Option<i64>,
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
}

const COLUMNS: &str = "id, execution_id, session_id, agent_id, source, tool_name, tool_input,
    status, message, decided_by, created_at, deadline, decided_at, request_key";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    let input: String = r.get(6)?;
    Ok(Approval {
        id: r.get(0)?,
        execution_id: r.get(1)?,
        session_id: r.get(2)?,
        agent_id: r.get(3)?,
        source: r.get(4)?,
        tool_name: r.get(5)?,
        tool_input: serde_json::from_str(&input).unwrap_or(Value::Null),
        status: r.get(7)?,
        message: r.get(8)?,
        decided_by: r.get(9)?,
        created_at: r.get(10)?,
        deadline: r.get(11)?,
        decided_at: r.get(12)?,
        request_key: r.get(13)?,
    })
}

/// Records a request, or returns the one already recorded under its key (a reconnecting asker).
pub fn insert_or_get(conn: &Connection, new: &NewApproval) -> Result<Approval, DbError> {
    if let Some(existing) = by_key(conn, &new.request_key)? {
        return Ok(existing);
    }
    conn.prepare_cached(
        "INSERT INTO approvals (request_key, execution_id, session_id, agent_id, source, tool_name,
                                tool_input, created_at, deadline)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        new.request_key,
        new.execution_id,
        new.session_id,
        new.agent_id,
        new.source,
        new.tool_name,
        new.tool_input.to_string(),
        now_rfc3339(),
        new.deadline,
    ])?;
    get(conn, conn.last_insert_rowid())?
        .ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Approval>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

fn by_key(conn: &Connection, key: &str) -> Result<Option<Approval>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE request_key = ?1"
        ))?
        .query_row([key], from_row)
        .optional()?)
}

/// Newest first; `status` filters when given. Returns (rows, total).
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Approval>, i64), DbError> {
    let total: i64 = conn.query_row(
        "SELECT count(*) FROM approvals WHERE ?1 IS NULL OR status = ?1",
        [status],
        |r| r.get(0),
    )?;
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE ?1 IS NULL OR status = ?1
             ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(params![status, limit, offset], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}

/// Every pending approval (started servers re-arm their deadlines).
pub fn pending(conn: &Connection) -> Result<Vec<Approval>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' ORDER BY id"
        ))?
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Decides a pending approval. `Ok(Err(row))`: it was already decided (the row as it is).
pub fn decide(
    conn: &Connection,
    id: i64,
    status: &str,
    message: Option<&str>,
    decided_by: &str,
) -> Result<Option<Result<Approval, Approval>>, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE approvals SET status = ?2, message = ?3, decided_by = ?4, decided_at = ?5
             WHERE id = ?1 AND status = 'pending'",
        )?
        .execute(params![id, status, message, decided_by, now_rfc3339()])?;
    let Some(row) = get(conn, id)? else {
        return Ok(None);
    };
    Ok(Some(if changed == 1 { Ok(row) } else { Err(row) }))
}

/// Pending approvals of executions that are no longer running (after startup reconciliation).
pub fn orphaned(conn: &Connection) -> Result<Vec<i64>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT a.id FROM approvals a LEFT JOIN executions e ON e.id = a.execution_id
             WHERE a.status = 'pending' AND (e.id IS NULL OR e.status <> 'running')",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?)
}

pub fn set_attention(
    conn: &Connection,
    execution_id: i64,
    attention: Option<&str>,
) -> Result<bool, DbError> {
    let changed = conn
        .prepare_cached(
            "UPDATE executions SET attention = ?2 WHERE id = ?1 AND attention IS NOT ?2",
        )?
        .execute(params![execution_id, attention])?;
    Ok(changed == 1)
}

pub fn insert_token(conn: &Connection, hash: &[u8], owner: &TokenOwner) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO hook_tokens (token_hash, execution_id, session_id, agent_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        hash,
        owner.execution_id,
        owner.session_id,
        owner.agent_id,
        now_rfc3339()
    ])?;
    Ok(())
}

/// The owner of a token whose execution still runs.
pub fn token_owner(conn: &Connection, hash: &[u8]) -> Result<Option<TokenOwner>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT t.execution_id, t.session_id, t.agent_id FROM hook_tokens t
             JOIN executions e ON e.id = t.execution_id
             WHERE t.token_hash = ?1 AND e.status IN ('pending','running')",
        )?
        .query_row([hash], |r| {
            Ok(TokenOwner {
                execution_id: r.get(0)?,
                session_id: r.get(1)?,
                agent_id: r.get(2)?,
            })
        })
        .optional()?)
}

/// Forgets the tokens of executions that ended (their askers are gone).
pub fn drop_tokens_of(conn: &Connection, execution_id: i64) -> Result<(), DbError> {
    conn.prepare_cached("DELETE FROM hook_tokens WHERE execution_id = ?1")?
        .execute([execution_id])?;
    Ok(())
}

/// At an execution's end: a run is `done`, a session needs nobody any more. Only agent
/// sessions and runs have attention (terminals keep NULL).
pub fn settle_attention(conn: &Connection, execution_id: i64) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE executions SET attention = CASE type WHEN 'agent_run' THEN 'done' ELSE NULL END
         WHERE id = ?1 AND type <> 'terminal' AND status IN ('pending','running')",
    )?
    .execute([execution_id])?;
    Ok(())
}

/// The attention of each of these executions that has one.
pub fn attention_of(
    conn: &Connection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, String>, DbError> {
    let mut out = std::collections::HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT attention FROM executions WHERE id = ?1 AND attention IS NOT NULL",
    )?;
    for id in ids {
        if let Some(a) = stmt.query_row([id], |r| r.get::<_, String>(0)).optional()? {
            out.insert(*id, a);
        }
    }
    Ok(out)
}
