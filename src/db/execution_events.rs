//! The `execution_events` table: the parsed agent events of a headless run, in order.
//!
//! Written only by the run's actor (one writer per execution, `seq` counting from 1), read by
//! `GET`-style replays (`/api/executions/{id}/events?since=SEQ`).

use rusqlite::{params, Connection};
use serde::Serialize;
use serde_json::Value;

use super::DbError;

#[derive(Debug, Clone, Serialize)]
pub struct ExecutionEvent {
    pub execution_id: i64,
    pub seq: i64,
    pub ts: String,
    pub kind: String,
    pub data: Value,
}

pub fn insert(conn: &Connection, e: &ExecutionEvent) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO execution_events (execution_id, seq, ts, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![e.execution_id, e.seq, e.ts, e.kind, e.data.to_string()])?;
    Ok(())
}

/// Appends an event with the next sequence number of its execution (one writer at a time: the
/// DB actor serialises writes), so a run's own events and the notes others add (an approval's
/// request and decision) never take the same number. Returns the number given.
pub fn append(
    conn: &Connection,
    execution_id: i64,
    ts: &str,
    kind: &str,
    data: &Value,
) -> Result<i64, DbError> {
    let seq: i64 = conn
        .prepare_cached(
            "SELECT coalesce(max(seq), 0) + 1 FROM execution_events WHERE execution_id = ?1",
        )?
        .query_row([execution_id], |r| r.get(0))?;
    insert(
        conn,
        &ExecutionEvent {
            execution_id,
            seq,
            ts: ts.to_string(),
            kind: kind.to_string(),
            data: data.clone(),
        },
    )?;
    Ok(seq)
}

/// Events after `since`, oldest first, at most `limit`.
pub fn list_since(
    conn: &Connection,
    execution_id: i64,
    since: i64,
    limit: i64,
) -> Result<Vec<ExecutionEvent>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, ts, kind, data FROM execution_events
         WHERE execution_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![execution_id, since, limit], |r| {
            let data: String = r.get(3)?;
            Ok(ExecutionEvent {
                execution_id,
                seq: r.get(0)?,
                ts: r.get(1)?,
                kind: r.get(2)?,
                data: serde_json::from_str(&data).unwrap_or(Value::Null),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
