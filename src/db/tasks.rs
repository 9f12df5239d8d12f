//! The `tasks` table: what was asked, its status state machine, and its queries.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{like_pattern, DbError};
use crate::time::now_rfc3339;

/// A task's status. Transitions follow [`TaskStatus::allowed_next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Draft,
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Draft,
        TaskStatus::Pending,
        TaskStatus::Running,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Draft => "draft",
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The state machine: draft → pending → running → succeeded | failed | cancelled, and
    /// failed/cancelled → pending to retry. A task not yet running may be cancelled or parked
    /// back in draft. Succeeded is final.
    pub fn allowed_next(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Draft => &[Pending, Cancelled],
            Pending => &[Running, Draft, Cancelled],
            Running => &[Succeeded, Failed, Cancelled],
            Failed | Cancelled => &[Pending],
            Succeeded => &[],
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub priority: i64,
    pub status: TaskStatus,
    /// Stored JSON, passed through as is: lists of 100 tasks need no re-parsing.
    pub tags: Box<RawValue>,
    pub project_path: Option<String>,
    pub agent_id: Option<i64>,
    pub meta: Box<RawValue>,
    pub created_at: String,
    pub updated_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// Executions of this task, all time.
    pub executions_total: i64,
    /// Executions of this task still pending or running.
    pub executions_active: i64,
}

/// A validated new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub priority: i64,
    pub status: TaskStatus,
    pub tags: Vec<String>,
    pub project_path: Option<String>,
    pub agent_id: Option<i64>,
    pub meta: Value,
}

/// A validated change; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<i64>,
    pub status: Option<TaskStatus>,
    pub tags: Option<Vec<String>>,
    pub project_path: Option<Option<String>>,
    pub agent_id: Option<Option<i64>>,
    pub meta: Option<Value>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub tag: Option<String>,
    pub q: Option<String>,
    pub agent_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task with id {0}")]
    NotFound(i64),
    #[error("task {id} cannot go from {from} to {to}")]
    IllegalTransition {
        id: i64,
        from: TaskStatus,
        to: TaskStatus,
    },
    #[error("task {0} has a running execution")]
    Busy(i64),
    #[error("no agent with id {0}")]
    UnknownAgent(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for TaskError {
    fn from(e: rusqlite::Error) -> Self {
        TaskError::Db(DbError::Sqlite(e))
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const SELECT: &str =
    "SELECT t.id, t.title, t.description, t.priority, t.status, t.tags, t.project_path,
        t.agent_id, t.meta, t.created_at, t.updated_at, t.started_at, t.completed_at,
        t.executions_total, t.executions_active
    FROM tasks t";

/// Stored JSON text as a raw value; the fallback only covers a row edited by hand into invalid JSON.
fn raw_json(text: String, fallback: &str) -> Box<RawValue> {
    RawValue::from_string(text)
        .or_else(|_| RawValue::from_string(fallback.to_string()))
        .unwrap_or_default()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = row.get(4)?;
    let tags: String = row.get(5)?;
    let meta: String = row.get(8)?;
    Ok(Task {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        priority: row.get(3)?,
        // The CHECK constraint keeps status to the known values; draft is a harmless fallback.
        status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Draft),
        tags: raw_json(tags, "[]"),
        project_path: row.get(6)?,
        agent_id: row.get(7)?,
        meta: raw_json(meta, "{}"),
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        started_at: row.get(11)?,
        completed_at: row.get(12)?,
        executions_total: row.get(13)?,
        executions_active: row.get(14)?,
    })
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Task>, DbError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE t.id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

/// A task may name only an agent that exists (checked by the one writer, so no agent can be
/// deleted between the check and the write).
fn check_agent_exists(conn: &Connection, agent_id: Option<i64>) -> Result<(), TaskError> {
    let Some(id) = agent_id else {
        return Ok(());
    };
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM agents WHERE id = ?1)")?
        .query_row([id], |r| r.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(TaskError::UnknownAgent(id))
    }
}

pub fn insert(conn: &Connection, new: &NewTask) -> Result<Task, TaskError> {
    check_agent_exists(conn, new.agent_id)?;
    let now = now_rfc3339();
    let started = (new.status == TaskStatus::Running).then(|| now.clone());
    conn.prepare_cached(
        "INSERT INTO tasks (title, description, priority, status, tags, project_path, agent_id,
                            meta, created_at, updated_at, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
    )?
    .execute(params![
        new.title,
        new.description,
        new.priority,
        new.status.as_str(),
        serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()),
        new.project_path,
        new.agent_id,
        new.meta.to_string(),
        now,
        started,
    ])?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(TaskError::NotFound(id))
}

/// Puts a succeeded task back to `pending`: only a new run does this (a user cannot), so that
/// the task's status follows its latest run rather than its first success.
pub fn reopen(conn: &Connection, id: i64) -> Result<(), TaskError> {
    conn.prepare_cached(
        "UPDATE tasks SET status = 'pending', completed_at = NULL, updated_at = ?2
         WHERE id = ?1 AND status = 'succeeded'",
    )?
    .execute(params![id, now_rfc3339()])?;
    Ok(())
}

/// Applies a patch in one transaction: the status check and the write see the same row.
pub fn update(conn: &mut Connection, id: i64, patch: &TaskPatch) -> Result<Task, TaskError> {
    let tx = conn.transaction()?;
    let current = get(&tx, id)?.ok_or(TaskError::NotFound(id))?;
    if let Some(agent_id) = patch.agent_id {
        check_agent_exists(&tx, agent_id)?;
    }
    let now = now_rfc3339();
    let mut started_at = current.started_at.clone();
    let mut completed_at = current.completed_at.clone();
    let status = match patch.status {
        Some(to) if to != current.status => {
            if !current.status.allowed_next().contains(&to) {
                return Err(TaskError::IllegalTransition {
                    id,
                    from: current.status,
                    to,
                });
            }
            match to {
                TaskStatus::Running => started_at = Some(now.clone()),
                TaskStatus::Pending | TaskStatus::Draft => completed_at = None,
                _ => {}
            }
            if to.is_final() {
                completed_at = Some(now.clone());
            }
            to
        }
        _ => current.status,
    };
    let tags = match &patch.tags {
        Some(t) => serde_json::to_string(t).unwrap_or_else(|_| "[]".into()),
        None => current.tags.get().to_string(),
    };
    let meta = match &patch.meta {
        Some(m) => m.to_string(),
        None => current.meta.get().to_string(),
    };
    tx.prepare_cached(
        "UPDATE tasks SET title = ?2, description = ?3, priority = ?4, status = ?5, tags = ?6,
                project_path = ?7, agent_id = ?8, meta = ?9, updated_at = ?10,
                started_at = ?11, completed_at = ?12
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        patch.title.as_ref().unwrap_or(&current.title),
        patch.description.as_ref().unwrap_or(&current.description),
        patch.priority.unwrap_or(current.priority),
        status.as_str(),
        tags,
        patch
            .project_path
            .clone()
            .unwrap_or(current.project_path.clone()),
        patch.agent_id.unwrap_or(current.agent_id),
        meta,
        now,
        started_at,
        completed_at,
    ])?;
    let task = get(&tx, id)?.ok_or(TaskError::NotFound(id))?;
    tx.commit()?;
    Ok(task)
}

/// Deletes a task unless one of its executions is still pending or running.
pub fn delete(conn: &mut Connection, id: i64) -> Result<Task, TaskError> {
    let tx = conn.transaction()?;
    let task = get(&tx, id)?.ok_or(TaskError::NotFound(id))?;
    if task.executions_active > 0 {
        return Err(TaskError::Busy(id));
    }
    tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
    tx.commit()?;
    Ok(task)
}

/// One page of tasks, newest first (id breaks ties), as a JSON array, and the total matching the
/// filter.
///
/// The hot path of the UI's task list: each row is serialised straight from SQLite's buffers
/// ([`TaskRef`] borrows them), with no `Task` values or per-column `String`s in between. The JSON
/// is the same as [`Task`]'s (a test compares them).
pub fn list_json(conn: &Connection, f: &TaskFilter) -> Result<(Vec<u8>, i64), DbError> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = f.status {
        clauses.push("t.status = ?");
        args.push(s.as_str().to_string().into());
    }
    if let Some(tag) = &f.tag {
        clauses.push("EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = ?)");
        args.push(tag.clone().into());
    }
    if let Some(q) = &f.q {
        clauses.push("(t.title LIKE ? ESCAPE '\\' OR t.description LIKE ? ESCAPE '\\')");
        let pat = like_pattern(q);
        args.push(pat.clone().into());
        args.push(pat.into());
    }
    if let Some(a) = f.agent_id {
        clauses.push("t.agent_id = ?");
        args.push(a.into());
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM tasks t{where_sql}"))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    let mut out = Vec::with_capacity(2 + f.limit.clamp(0, 100) as usize * 700);
    out.push(b'[');
    if f.limit > 0 && f.offset < total {
        let mut page_args = args;
        page_args.push(f.limit.into());
        page_args.push(f.offset.into());
        let mut stmt = conn.prepare_cached(&format!(
            "{SELECT}{where_sql} ORDER BY t.created_at DESC, t.id DESC LIMIT ? OFFSET ?"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(page_args.iter()))?;
        let mut first = true;
        while let Some(row) = rows.next()? {
            if !first {
                out.push(b',');
            }
            first = false;
            let task = TaskRef::from_row(row)?;
            serde_json::to_writer(&mut out, &task).map_err(|e| {
                DbError::Migration(format!("task row {} is not serialisable: {e}", task.id))
            })?;
        }
    }
    out.push(b']');
    Ok((out, total))
}

/// A task row borrowed from SQLite's buffers; serialises exactly like [`Task`].
#[derive(Serialize)]
struct TaskRef<'a> {
    id: i64,
    title: &'a str,
    description: &'a str,
    priority: i64,
    status: &'a str,
    tags: &'a RawValue,
    project_path: Option<&'a str>,
    agent_id: Option<i64>,
    meta: &'a RawValue,
    created_at: &'a str,
    updated_at: &'a str,
    started_at: Option<&'a str>,
    completed_at: Option<&'a str>,
    executions_total: i64,
    executions_active: i64,
}

impl<'a> TaskRef<'a> {
    fn from_row(row: &'a Row<'_>) -> rusqlite::Result<TaskRef<'a>> {
        let text = |i: usize| -> rusqlite::Result<&'a str> {
            row.get_ref(i)?.as_str().map_err(rusqlite::Error::from)
        };
        let opt_text = |i: usize| -> rusqlite::Result<Option<&'a str>> {
            row.get_ref(i)?
                .as_str_or_null()
                .map_err(rusqlite::Error::from)
        };
        // Stored JSON is written only by this program; an invalid value (a row edited by hand)
        // degrades to an empty container rather than failing the whole list.
        let json = |i: usize, fallback: &'static str| -> rusqlite::Result<&'a RawValue> {
            let s = text(i)?;
            serde_json::from_str::<&RawValue>(s)
                .or_else(|_| serde_json::from_str::<&'static RawValue>(fallback))
                .map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })
        };
        Ok(TaskRef {
            id: row.get(0)?,
            title: text(1)?,
            description: text(2)?,
            priority: row.get(3)?,
            status: text(4)?,
            tags: json(5, "[]")?,
            project_path: opt_text(6)?,
            agent_id: row.get(7)?,
            meta: json(8, "{}")?,
            created_at: text(9)?,
            updated_at: text(10)?,
            started_at: opt_text(11)?,
            completed_at: opt_text(12)?,
            executions_total: row.get(13)?,
            executions_active: row.get(14)?,
        })
    }
}
