//! The `worktrees` table: the git worktree an isolated run or agent session works in, and what
//! became of it (`active` → `merged` | `discarded`; `removed_at` once the directory and branch
//! are gone).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};
use serde::Serialize;

use super::DbError;
use crate::time::now_rfc3339;

/// What became of a worktree's work (the `state` column; its CHECK lists the same words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorktreeState {
    Active,
    Merged,
    Discarded,
}

impl WorktreeState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorktreeState::Active => "active",
            WorktreeState::Merged => "merged",
            WorktreeState::Discarded => "discarded",
        }
    }
}

impl std::fmt::Display for WorktreeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for WorktreeState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for WorktreeState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "active" => Ok(WorktreeState::Active),
            "merged" => Ok(WorktreeState::Merged),
            "discarded" => Ok(WorktreeState::Discarded),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Worktree {
    pub execution_id: i64,
    pub repo: String,
    pub path: String,
    pub subdir: String,
    pub branch: String,
    pub base_commit: String,
    pub base_branch: Option<String>,
    pub state: WorktreeState,
    pub merge_commit: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub removed_at: Option<String>,
    /// Why it was removed when not by merge or discard (repository gone, directory deleted).
    pub removed_reason: Option<String>,
}

/// A worktree the reaper may look at, with its run's status and end.
#[derive(Debug, Clone)]
pub struct ReapCandidate {
    pub worktree: Worktree,
    pub run_active: bool,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "execution_id, repo, path, subdir, branch, base_commit, base_branch, state, \
                       merge_commit, created_at, updated_at, removed_at, removed_reason";

fn from_row(r: &Row) -> rusqlite::Result<Worktree> {
    Ok(Worktree {
        execution_id: r.get(0)?,
        repo: r.get(1)?,
        path: r.get(2)?,
        subdir: r.get(3)?,
        branch: r.get(4)?,
        base_commit: r.get(5)?,
        base_branch: r.get(6)?,
        state: r.get(7)?,
        merge_commit: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        removed_at: r.get(11)?,
        removed_reason: r.get(12)?,
    })
}

/// Records a run's new worktree and points the run's `cwd` at it (where it really runs).
pub fn insert(conn: &mut Connection, w: &Worktree, cwd: &str) -> Result<(), DbError> {
    let tx = conn.transaction()?;
    tx.prepare_cached("UPDATE executions SET cwd = ?2 WHERE id = ?1")?
        .execute(params![w.execution_id, cwd])?;
    tx.prepare_cached(
        "INSERT INTO worktrees (execution_id, repo, path, subdir, branch, base_commit, base_branch,
                                state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active', ?8, ?8)",
    )?
    .execute(params![
        w.execution_id,
        w.repo,
        w.path,
        w.subdir,
        w.branch,
        w.base_commit,
        w.base_branch,
        now_rfc3339()
    ])?;
    tx.commit()?;
    Ok(())
}

/// The execution of agent session `session_id` (its review routes name the session).
pub fn session_execution(conn: &Connection, session_id: &str) -> Result<Option<i64>, DbError> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM executions WHERE session_id = ?1 AND type = 'agent_session'",
        )?
        .query_row([session_id], |r| r.get(0))
        .optional()?)
}

pub fn get(conn: &Connection, execution_id: i64) -> Result<Option<Worktree>, DbError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM worktrees WHERE execution_id = ?1"
        ))?
        .query_row([execution_id], from_row)
        .optional()?)
}

/// `active` → `merged` or `discarded`; false if it was no longer active.
pub fn set_state(
    conn: &Connection,
    execution_id: i64,
    state: WorktreeState,
    merge_commit: Option<&str>,
) -> Result<bool, DbError> {
    let n = conn
        .prepare_cached(
            "UPDATE worktrees SET state = ?2, merge_commit = ?3, updated_at = ?4
              WHERE execution_id = ?1 AND state = 'active'",
        )?
        .execute(params![execution_id, state, merge_commit, now_rfc3339()])?;
    Ok(n == 1)
}

/// The directory and branch are gone; `reason` when that was not a merge or discard's doing.
pub fn mark_removed(
    conn: &Connection,
    execution_id: i64,
    reason: Option<&str>,
) -> Result<(), DbError> {
    let now = now_rfc3339();
    conn.prepare_cached(
        "UPDATE worktrees SET removed_at = ?2, updated_at = ?2, removed_reason = ?3
          WHERE execution_id = ?1 AND removed_at IS NULL",
    )?
    .execute(params![execution_id, now, reason])?;
    Ok(())
}

/// Every worktree whose directory still exists, oldest first, with its run's state.
pub fn live(conn: &Connection) -> Result<Vec<ReapCandidate>, DbError> {
    let cols: Vec<String> = COLUMNS
        .split(", ")
        .map(|c| format!("w.{}", c.trim()))
        .collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, e.status IN ('pending','running'), e.finished_at
           FROM worktrees w JOIN executions e ON e.id = w.execution_id
          WHERE w.removed_at IS NULL
          ORDER BY w.execution_id",
        cols.join(", ")
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(ReapCandidate {
            worktree: from_row(r)?,
            run_active: r.get(13)?,
            finished_at: r.get(14)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
