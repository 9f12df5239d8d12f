//! The executions list: filters (type, status, task, agent, a time window, text), newest first,
//! one page at a time with the total, for the Executions page and the API.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::executions::{
    summary_from_row, ExecutionStatus, ExecutionSummary, ExecutionType, SUMMARY_COLUMNS,
};
use super::{like_pattern, DbError};

#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub kind: Option<ExecutionType>,
    pub status: Option<ExecutionStatus>,
    /// Normalised RFC 3339: executions created at or after it.
    pub since: Option<String>,
    /// Normalised RFC 3339: executions created before it.
    pub until: Option<String>,
    /// Text found (case-insensitively for ASCII) in the task's title or description (a run's
    /// prompt), the result, or the command line.
    pub text: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// The filter as SQL: the `WHERE` clause (empty when nothing is filtered) and its arguments.
fn where_clause(f: &ExecutionFilter) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(t) = f.task_id {
        clauses.push("task_id = ?");
        args.push(t.into());
    }
    if let Some(a) = f.agent_id {
        clauses.push("agent_id = ?");
        args.push(a.into());
    }
    if let Some(k) = f.kind {
        clauses.push("type = ?");
        args.push(k.as_str().to_string().into());
    }
    if let Some(s) = f.status {
        clauses.push("status = ?");
        args.push(s.as_str().to_string().into());
    }
    if let Some(since) = &f.since {
        clauses.push("created_at >= ?");
        args.push(since.clone().into());
    }
    if let Some(until) = &f.until {
        clauses.push("created_at < ?");
        args.push(until.clone().into());
    }
    if let Some(text) = &f.text {
        clauses.push(
            "(result LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\'
              OR task_id IN (SELECT t.id FROM tasks t
                             WHERE t.title LIKE ? ESCAPE '\\' OR t.description LIKE ? ESCAPE '\\'))",
        );
        let pattern = like_pattern(text);
        args.extend(std::iter::repeat_n(SqlValue::from(pattern), 4));
    }
    if clauses.is_empty() {
        return (String::new(), args);
    }
    (format!(" WHERE {}", clauses.join(" AND ")), args)
}

/// One page of executions, newest first (id breaks ties), and the total matching the filter.
pub fn list(
    conn: &Connection,
    f: &ExecutionFilter,
) -> Result<(Vec<ExecutionSummary>, i64), DbError> {
    let (where_sql, mut args) = where_clause(f);
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM executions{where_sql}"))?
        .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
    if f.limit == 0 || f.offset >= total {
        return Ok((Vec::new(), total));
    }
    args.push(f.limit.into());
    args.push(f.offset.into());
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM executions{where_sql}
         ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), summary_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, total))
}
