//! The `push_subscriptions` table: the browsers that asked for Web Push notifications, with
//! their encryption keys and how the last delivery to each went.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::DbError;
use crate::time::now_rfc3339;

/// One browser's subscription. `p256dh` and `auth` are never sent back over the API.
#[derive(Debug, Clone, Serialize)]
pub struct PushSubscription {
    pub id: i64,
    pub endpoint: String,
    #[serde(skip)]
    pub p256dh: String,
    #[serde(skip)]
    pub auth: String,
    pub user_agent: Option<String>,
    pub created_at: String,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, endpoint, p256dh, auth, user_agent, created_at, last_success_at, \
                       last_failure_at, last_error";

fn from_row(r: &Row) -> rusqlite::Result<PushSubscription> {
    Ok(PushSubscription {
        id: r.get(0)?,
        endpoint: r.get(1)?,
        p256dh: r.get(2)?,
        auth: r.get(3)?,
        user_agent: r.get(4)?,
        created_at: r.get(5)?,
        last_success_at: r.get(6)?,
        last_failure_at: r.get(7)?,
        last_error: r.get(8)?,
    })
}

/// What a subscribe request adds.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub user_agent: Option<String>,
}

/// Adds a subscription, or replaces the keys of the one with the same endpoint (a browser that
/// subscribes again after clearing its data gets new keys for the same endpoint). Returns the row
/// and whether it is new; `None` when `max` rows exist already and this endpoint is not one.
pub fn upsert(
    conn: &mut Connection,
    s: &NewSubscription,
    max: i64,
) -> Result<Option<(PushSubscription, bool)>, DbError> {
    let tx = conn.transaction()?;
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM push_subscriptions WHERE endpoint = ?1")?
        .query_row(params![s.endpoint], |r| r.get(0))
        .optional()?;
    if existing.is_none() {
        let count: i64 =
            tx.query_row("SELECT COUNT(*) FROM push_subscriptions", [], |r| r.get(0))?;
        if count >= max {
            return Ok(None);
        }
    }
    tx.prepare_cached(
        "INSERT INTO push_subscriptions (endpoint, p256dh, auth, user_agent, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth = excluded.auth,
             user_agent = excluded.user_agent, last_error = NULL",
    )?
    .execute(params![
        s.endpoint,
        s.p256dh,
        s.auth,
        s.user_agent,
        now_rfc3339()
    ])?;
    let row = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM push_subscriptions WHERE endpoint = ?1"
        ))?
        .query_row(params![s.endpoint], from_row)?;
    tx.commit()?;
    Ok(Some((row, existing.is_none())))
}

/// Every subscription, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<PushSubscription>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM push_subscriptions ORDER BY id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes the subscription with this endpoint; false when there was none.
pub fn delete_endpoint(conn: &Connection, endpoint: &str) -> Result<bool, DbError> {
    Ok(conn
        .prepare_cached("DELETE FROM push_subscriptions WHERE endpoint = ?1")?
        .execute(params![endpoint])?
        > 0)
}

/// Records how a delivery went: `error` is `None` for a success.
pub fn record_delivery(conn: &Connection, id: i64, error: Option<&str>) -> Result<(), DbError> {
    let now = now_rfc3339();
    match error {
        None => conn
            .prepare_cached(
                "UPDATE push_subscriptions SET last_success_at = ?2, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, now])?,
        Some(e) => conn
            .prepare_cached(
                "UPDATE push_subscriptions SET last_failure_at = ?2, last_error = ?3 WHERE id = ?1",
            )?
            .execute(params![id, now, e])?,
    };
    Ok(())
}

/// Removes a subscription the push service said is gone (404/410).
pub fn delete_id(conn: &Connection, id: i64) -> Result<(), DbError> {
    conn.prepare_cached("DELETE FROM push_subscriptions WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}
