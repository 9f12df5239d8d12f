//! The `executions` table: every terminal session, agent session and agent run, and its outcome.
//!
//! Rows are created and finished by the actors that own the processes; the HTTP layer only lists
//! and reads them. List rows ([`ExecutionSummary`]) never carry the output tail.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value;

use super::DbError;
use crate::time::now_rfc3339;

mod restart;
pub(crate) use restart::QUEUED_RUN;
pub use restart::{adopt_queued_runs, interrupt_boot, interrupt_stale, QueuedRun, StaleExecution};

/// The most output kept on a finished execution, in bytes (the tail: what a user looks at).
pub const OUTPUT_TAIL_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionType {
    Terminal,
    AgentSession,
    AgentRun,
}

impl ExecutionType {
    pub const ALL: [ExecutionType; 3] = [
        ExecutionType::Terminal,
        ExecutionType::AgentSession,
        ExecutionType::AgentRun,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionType::Terminal => "terminal",
            ExecutionType::AgentSession => "agent_session",
            ExecutionType::AgentRun => "agent_run",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl ExecutionStatus {
    pub const ALL: [ExecutionStatus; 6] = [
        ExecutionStatus::Pending,
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Interrupted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
            ExecutionStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
    pub fn is_active(self) -> bool {
        matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }
}

/// A list row: everything but the output.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionSummary {
    pub id: i64,
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    #[serde(rename = "type")]
    pub kind: ExecutionType,
    pub status: ExecutionStatus,
    pub reason: Option<String>,
    pub boot_id: String,
    pub session_id: Option<String>,
    pub pid: Option<i64>,
    pub pid_start_time: Option<i64>,
    pub pgid: Option<i64>,
    /// The session's cgroup directory, when it ran in one.
    pub cgroup: Option<String>,
    pub cwd: Option<String>,
    pub command: Vec<String>,
    pub exit_code: Option<i64>,
    pub exit_signal: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub last_activity_at: Option<String>,
    pub bytes_out: i64,
    pub result: Option<String>,
    pub cost_usd: Option<f64>,
    pub usage: Option<Value>,
    pub meta: Value,
    /// The title of its task, when it has one (read with the row, for lists that name tasks).
    pub task_title: Option<String>,
    /// An isolated run: it has a git worktree, so its diff can be reviewed.
    pub isolated: bool,
    /// Whether the agent needs its user: `null`, `input`, `approval` or `done` (issue 16).
    pub attention: Option<String>,
}

/// The full row: the summary plus the stored output tail (lossy UTF-8 for JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    #[serde(flatten)]
    pub summary: ExecutionSummary,
    pub output_tail: String,
    pub output_truncated: bool,
}

/// The stored output of an execution.
#[derive(Debug, Clone)]
pub struct ExecutionOutput {
    pub bytes: Vec<u8>,
    /// Output produced in all (the tail may be shorter).
    pub bytes_out: i64,
    pub truncated: bool,
}

/// A new execution row, as its owner creates it.
#[derive(Debug, Clone)]
pub struct NewExecution {
    pub kind: ExecutionType,
    pub status: ExecutionStatus,
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub boot_id: String,
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub command: Vec<String>,
    pub meta: Value,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub struct Finish {
    pub status: ExecutionStatus,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub bytes_out: i64,
    pub output_tail: Option<Vec<u8>>,
    pub output_truncated: bool,
}

impl Finish {
    /// An end without an exit status or output (never started, cancelled while queued, its
    /// owner failed).
    pub fn without_exit(status: ExecutionStatus, reason: String) -> Finish {
        Finish {
            status,
            reason: Some(reason),
            exit_code: None,
            exit_signal: None,
            bytes_out: 0,
            output_tail: None,
            output_truncated: false,
        }
    }
}

/// The columns [`summary_from_row`] reads, in its order. The task's title comes along so that a
/// list can name the task rather than show its id.
pub(super) const SUMMARY_COLUMNS: &str =
    "id, task_id, agent_id, type, status, reason, boot_id, session_id, pid,
    pid_start_time, pgid, cwd, command, exit_code, exit_signal, created_at, started_at, finished_at,
    last_activity_at, bytes_out, result, cost_usd, usage, meta, cgroup,
    (SELECT t.title FROM tasks t WHERE t.id = executions.task_id),
    EXISTS (SELECT 1 FROM worktrees w WHERE w.execution_id = executions.id), attention";

pub(super) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<ExecutionSummary> {
    let kind: String = row.get(3)?;
    let status: String = row.get(4)?;
    let command: String = row.get(12)?;
    let usage: Option<String> = row.get(22)?;
    let meta: String = row.get(23)?;
    Ok(ExecutionSummary {
        id: row.get(0)?,
        task_id: row.get(1)?,
        agent_id: row.get(2)?,
        // CHECK constraints keep these to known values.
        kind: ExecutionType::parse(&kind).unwrap_or(ExecutionType::Terminal),
        status: ExecutionStatus::parse(&status).unwrap_or(ExecutionStatus::Failed),
        reason: row.get(5)?,
        boot_id: row.get(6)?,
        session_id: row.get(7)?,
        pid: row.get(8)?,
        pid_start_time: row.get(9)?,
        pgid: row.get(10)?,
        cwd: row.get(11)?,
        command: serde_json::from_str(&command).unwrap_or_default(),
        exit_code: row.get(13)?,
        exit_signal: row.get(14)?,
        created_at: row.get(15)?,
        started_at: row.get(16)?,
        finished_at: row.get(17)?,
        last_activity_at: row.get(18)?,
        bytes_out: row.get(19)?,
        result: row.get(20)?,
        cost_usd: row.get(21)?,
        usage: usage.and_then(|u| serde_json::from_str(&u).ok()),
        cgroup: row.get(24)?,
        meta: serde_json::from_str(&meta).unwrap_or(Value::Object(Default::default())),
        task_title: row.get(25)?,
        isolated: row.get(26)?,
        attention: row.get(27)?,
    })
}

pub fn insert(conn: &Connection, new: &NewExecution) -> Result<ExecutionSummary, DbError> {
    let now = now_rfc3339();
    let started = (new.status == ExecutionStatus::Running).then(|| now.clone());
    conn.prepare_cached(
        "INSERT INTO executions (type, status, task_id, agent_id, boot_id, session_id, cwd, command,
                                 meta, created_at, started_at, last_activity_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10)",
    )?
    .execute(params![
        new.kind.as_str(),
        new.status.as_str(),
        new.task_id,
        new.agent_id,
        new.boot_id,
        new.session_id,
        new.cwd,
        serde_json::to_string(&new.command).unwrap_or_else(|_| "[]".into()),
        new.meta.to_string(),
        now,
        started,
    ])?;
    let id = conn.last_insert_rowid();
    get_summary(conn, id)?.ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// Records the process an execution runs as, for stopping it and for PID-reuse checks later.
pub fn mark_running(
    conn: &Connection,
    id: i64,
    pid: i64,
    pid_start_time: Option<i64>,
    pgid: i64,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE executions SET status = 'running', pid = ?2, pid_start_time = ?3, pgid = ?4,
                started_at = coalesce(started_at, ?5)
         WHERE id = ?1",
    )?
    .execute(params![id, pid, pid_start_time, pgid, now_rfc3339()])?;
    Ok(())
}

/// Records the cgroup an execution's process tree runs in (reconciliation kills it by that).
pub fn record_cgroup(conn: &Connection, id: i64, cgroup: &str) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE executions SET cgroup = ?2 WHERE id = ?1")?
        .execute(params![id, cgroup])?;
    Ok(())
}

/// Activity bookkeeping (callers write it at most every few seconds, not per read).
pub fn touch(
    conn: &Connection,
    id: i64,
    last_activity_at: &str,
    bytes_out: i64,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE executions SET last_activity_at = ?2, bytes_out = ?3 WHERE id = ?1",
    )?
    .execute(params![id, last_activity_at, bytes_out])?;
    Ok(())
}

/// Records the end of an execution; a row that already ended keeps its first outcome.
pub fn finish(conn: &Connection, id: i64, f: &Finish) -> Result<bool, DbError> {
    let n = conn
        .prepare_cached(
            "UPDATE executions SET status = ?2, reason = ?3, exit_code = ?4, exit_signal = ?5,
                bytes_out = ?6, output_tail = coalesce(?7, output_tail), output_truncated = ?8,
                finished_at = ?9, last_activity_at = coalesce(last_activity_at, ?9)
             WHERE id = ?1 AND status IN ('pending','running')",
        )?
        .execute(params![
            id,
            f.status.as_str(),
            f.reason,
            f.exit_code,
            f.exit_signal,
            f.bytes_out,
            f.output_tail,
            f.output_truncated,
            now_rfc3339(),
        ])?;
    Ok(n == 1)
}

/// What a headless run's `result` event said: its text, cost and token usage.
pub fn set_result(
    conn: &Connection,
    id: i64,
    result: Option<&str>,
    cost_usd: Option<f64>,
    usage: Option<&Value>,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "UPDATE executions SET result = ?2, cost_usd = ?3, usage = ?4 WHERE id = ?1",
    )?
    .execute(params![id, result, cost_usd, usage.map(|u| u.to_string())])?;
    Ok(())
}

pub fn get_summary(conn: &Connection, id: i64) -> Result<Option<ExecutionSummary>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM executions WHERE id = ?1"
    ))?;
    Ok(stmt.query_row([id], summary_from_row).optional()?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<Execution>, DbError> {
    let Some(summary) = get_summary(conn, id)? else {
        return Ok(None);
    };
    let out = output(conn, id)?.unwrap_or(ExecutionOutput {
        bytes: Vec::new(),
        bytes_out: 0,
        truncated: false,
    });
    Ok(Some(Execution {
        summary,
        output_tail: String::from_utf8_lossy(&out.bytes).into_owned(),
        output_truncated: out.truncated,
    }))
}

pub fn output(conn: &Connection, id: i64) -> Result<Option<ExecutionOutput>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT coalesce(output_tail, x''), bytes_out, output_truncated FROM executions WHERE id = ?1",
    )?;
    Ok(stmt
        .query_row([id], |r| {
            Ok(ExecutionOutput {
                bytes: r.get(0)?,
                bytes_out: r.get(1)?,
                truncated: r.get(2)?,
            })
        })
        .optional()?)
}

/// Deletes the oldest parsed events of every execution holding more than `keep`, so that each
/// keeps its newest `keep` (by sequence number). Returns how many rows went. Only executions over
/// the cap are touched; the primary key (execution_id, seq) serves both lookups.
pub fn prune_events(conn: &Connection, keep: u64) -> Result<usize, DbError> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let n = conn.execute(
        "WITH over AS (
             SELECT execution_id, MAX(seq) AS last FROM execution_events
             GROUP BY execution_id HAVING COUNT(*) > ?1
         )
         DELETE FROM execution_events
         WHERE execution_id IN (SELECT execution_id FROM over)
           AND seq <= (SELECT last FROM over WHERE over.execution_id = execution_events.execution_id) - ?1",
        [keep],
    )?;
    Ok(n)
}
