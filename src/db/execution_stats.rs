//! What `/metrics` reads from the executions table at scrape time: counts by type and status,
//! and the two facts about the run queue an operator is paged for (a run waiting too long,
//! runs failing one after another).

use rusqlite::Connection;

use super::executions::QUEUED_RUN;
use super::DbError;

/// How far back `failed_in_a_row` looks: enough to page on, bounded so a scrape stays cheap.
const FAILED_IN_A_ROW_MAX: i64 = 100;

#[derive(Debug, Default)]
pub struct ExecutionStats {
    /// `(type, status, count)` for every pair that has rows.
    pub by_type_status: Vec<(String, String, i64)>,
    /// Agent runs waiting for a slot.
    pub queued: i64,
    /// Seconds the oldest queued run has waited (0 when the queue is empty).
    pub oldest_queued_age_s: f64,
    /// Finished agent runs that failed since the last one that succeeded, newest first
    /// (cancelled and interrupted runs are neither: the agent did not fail them).
    pub failed_in_a_row: i64,
}

pub fn read(conn: &Connection) -> Result<ExecutionStats, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT type, status, count(*) FROM executions GROUP BY type, status")?;
    let by_type_status = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    // created_at is RFC 3339 with a `Z`, which julianday() reads; one clock (SQLite's) for both.
    let (queued, oldest_queued_age_s): (i64, Option<f64>) = conn.query_row(
        &format!(
            "SELECT count(*), (julianday('now') - julianday(min(created_at))) * 86400.0
             FROM executions WHERE {QUEUED_RUN}"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut stmt = conn.prepare_cached(
        "SELECT status FROM executions
         WHERE type = 'agent_run' AND status IN ('succeeded', 'failed')
         ORDER BY finished_at DESC, id DESC LIMIT ?1",
    )?;
    let recent = stmt
        .query_map([FAILED_IN_A_ROW_MAX], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let failed_in_a_row = recent.iter().take_while(|s| *s == "failed").count() as i64;
    Ok(ExecutionStats {
        by_type_status,
        queued,
        oldest_queued_age_s: oldest_queued_age_s.unwrap_or(0.0).max(0.0),
        failed_in_a_row,
    })
}
