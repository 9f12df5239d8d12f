//! Executions across a stop or a crash: what the next start marks `interrupted` (and whose
//! processes it stops), the queued runs it takes over, and the shutdown's last-resort marking.

use rusqlite::{params, Connection};

use super::super::DbError;
use crate::time::now_rfc3339;

/// A headless run still waiting in the queue: it never started, so a restart keeps it.
pub(crate) const QUEUED_RUN: &str = "type = 'agent_run' AND status = 'pending'";
/// Executions a stop or crash cuts off: running ones, and pending ones but queued runs.
const CUT_OFF: &str =
    "status IN ('pending','running') AND NOT (type = 'agent_run' AND status = 'pending')";

/// An execution left pending or running by an earlier server run.
#[derive(Debug, Clone)]
pub struct StaleExecution {
    pub id: i64,
    pub pgid: Option<i64>,
    pub pid_start_time: Option<i64>,
    pub cgroup: Option<String>,
}

/// Marks every execution still pending or running from another boot as interrupted (but queued
/// runs, which `adopt_queued_runs` takes over), in one
/// transaction, and returns them (for stopping their surviving process groups).
pub fn interrupt_stale(
    conn: &mut Connection,
    boot_id: &str,
    reason: &str,
) -> Result<Vec<StaleExecution>, DbError> {
    let tx = conn.transaction()?;
    let stale = {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, pgid, pid_start_time, cgroup FROM executions
                 WHERE {CUT_OFF} AND boot_id != ?1"
        ))?;
        let rows = stmt
            .query_map([boot_id], |r| {
                Ok(StaleExecution {
                    id: r.get(0)?,
                    pgid: r.get(1)?,
                    pid_start_time: r.get(2)?,
                    cgroup: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    tx.execute(
        &format!(
            "UPDATE executions SET status = 'interrupted', reason = ?2, finished_at = ?3
             WHERE {CUT_OFF} AND boot_id != ?1"
        ),
        params![boot_id, reason, now_rfc3339()],
    )?;
    // A task whose run was cut off is no longer running: it failed (the state machine allows
    // running → failed, and failed → pending to retry).
    tx.execute(
        "UPDATE tasks SET status = 'failed', completed_at = ?2, updated_at = ?2
         WHERE status = 'running' AND executions_active = 0
           AND id IN (SELECT task_id FROM executions
                      WHERE type = 'agent_run' AND status = 'interrupted' AND boot_id != ?1)",
        params![boot_id, now_rfc3339()],
    )?;
    tx.commit()?;
    Ok(stale)
}

/// A headless run that was queued, not started, when an earlier server stopped.
#[derive(Debug, Clone)]
pub struct QueuedRun {
    pub id: i64,
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub cwd: Option<String>,
    pub command: Vec<String>,
}

/// Takes over the runs an earlier boot queued but never started (`agent_run`, `pending`): they
/// are this boot's now (`boot_id`), oldest first. Startup reconciliation leaves them alone, so
/// an accepted run survives a restart and runs rather than being dropped.
pub fn adopt_queued_runs(conn: &mut Connection, boot_id: &str) -> Result<Vec<QueuedRun>, DbError> {
    let tx = conn.transaction()?;
    let runs = {
        let mut stmt = tx.prepare(&format!(
            "SELECT id, task_id, agent_id, cwd, command FROM executions
                 WHERE {QUEUED_RUN} AND boot_id != ?1 ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([boot_id], |r| {
                let command: String = r.get(4)?;
                Ok(QueuedRun {
                    id: r.get(0)?,
                    task_id: r.get(1)?,
                    agent_id: r.get(2)?,
                    cwd: r.get(3)?,
                    command: serde_json::from_str(&command).unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    tx.execute(
        &format!("UPDATE executions SET boot_id = ?1 WHERE {QUEUED_RUN} AND boot_id != ?1"),
        [boot_id],
    )?;
    tx.commit()?;
    Ok(runs)
}

/// Marks every execution of this boot still pending or running as interrupted (the last step of
/// a shutdown whose sessions could not all record their own end). Queued runs are left
/// `pending` for the next start. Returns how many.
pub fn interrupt_boot(conn: &Connection, boot_id: &str, reason: &str) -> Result<usize, DbError> {
    let n = conn.execute(
        &format!(
            "UPDATE executions SET status = 'interrupted', reason = ?2, finished_at = ?3
             WHERE {CUT_OFF} AND boot_id = ?1"
        ),
        params![boot_id, reason, now_rfc3339()],
    )?;
    Ok(n)
}
