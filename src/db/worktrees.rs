//! The `worktrees` table: the git worktree an isolated run works in, and what became of it
//! (`active` → `merged` | `discarded`; `removed_at` once the directory and branch are gone).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::DbError;
use crate::time::now_rfc3339;

#[derive(Debug, Clone, Serialize)]
pub struct Worktree {
    pub execution_id: i64,
    pub repo: String,
    pub path: String,
    pub subdir: String,
    pub branch: String,
    pub base_commit: String,
    pub base_branch: Option<String>,
    pub state: String,
    pub merge_commit: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub removed_at: Option<String>,
}

/// A worktree the reaper may look at, with its run's status and end.
#[derive(Debug, Clone)]
pub struct ReapCandidate {
    pub worktree: Worktree,
    pub run_active: bool,
    pub finished_at: Option<String>,
}

const COLUMNS: &str = "execution_id, repo, path, subdir, branch, base_commit, base_branch, state, \
                       merge_commit, created_at, updated_at, removed_at";

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
    state: &str,
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

pub fn mark_removed(conn: &Connection, execution_id: i64) -> Result<(), DbError> {
    let now = now_rfc3339();
    conn.prepare_cached(
        "UPDATE worktrees SET removed_at = ?2, updated_at = ?2 WHERE execution_id = ?1",
    )?
    .execute(params![execution_id, now])?;
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
            run_active: r.get(12)?,
            finished_at: r.get(13)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
