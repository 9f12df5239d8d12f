//! The `auth_tokens` and `auth_sessions` tables: stored hashes, scopes, revocation, expiry.
//!
//! Lookups return only live credentials (token not revoked; session not expired and its token not
//! revoked). The caller compares the returned hash with the presented one in constant time.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::DbError;
use crate::auth::Scope;
use crate::time::now_rfc3339;

/// Browser sessions kept per token; older ones are dropped at login, so the table is bounded.
pub const SESSIONS_PER_TOKEN_MAX: i64 = 50;

/// A token as `token list` shows it (never the secret: it is not stored).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scope: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A live credential found by its hash.
#[derive(Debug, Clone)]
pub struct LiveCredential {
    pub token_id: i64,
    pub scope: Scope,
    pub stored_hash: Vec<u8>,
    /// Token: its `last_used_at`; session: its `last_seen_at`.
    pub last_seen_at: Option<String>,
}

pub fn insert_token(
    conn: &Connection,
    scope: Scope,
    name: &str,
    hash: &[u8],
) -> Result<i64, DbError> {
    conn.execute(
        "INSERT INTO auth_tokens (name, scope, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![name, scope.as_str(), hash, now_rfc3339()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn token_count(conn: &Connection) -> Result<i64, DbError> {
    Ok(conn.query_row("SELECT count(*) FROM auth_tokens", [], |r| r.get(0))?)
}

pub fn list_tokens(conn: &Connection) -> Result<Vec<TokenRow>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, scope, created_at, last_used_at, revoked_at FROM auth_tokens ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                name: r.get(1)?,
                scope: r.get(2)?,
                created_at: r.get(3)?,
                last_used_at: r.get(4)?,
                revoked_at: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Revokes one token and ends its sessions. `Ok(false)` if there is no live token with that id.
pub fn revoke_token(conn: &Connection, id: i64) -> Result<bool, DbError> {
    let n = conn.execute(
        "UPDATE auth_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now_rfc3339()],
    )?;
    conn.execute("DELETE FROM auth_sessions WHERE token_id = ?1", [id])?;
    Ok(n > 0)
}

/// Revokes every live token of `scope` and ends their sessions; returns how many.
pub fn revoke_scope(conn: &Connection, scope: Scope) -> Result<usize, DbError> {
    conn.execute(
        "DELETE FROM auth_sessions WHERE token_id IN
           (SELECT id FROM auth_tokens WHERE scope = ?1 AND revoked_at IS NULL)",
        [scope.as_str()],
    )?;
    Ok(conn.execute(
        "UPDATE auth_tokens SET revoked_at = ?2 WHERE scope = ?1 AND revoked_at IS NULL",
        params![scope.as_str(), now_rfc3339()],
    )?)
}

fn live(token_id: i64, scope: String, hash: Vec<u8>, seen: Option<String>) -> LiveCredential {
    LiveCredential {
        token_id,
        // The schema's CHECK admits only the two names; anything else gets the lesser scope.
        scope: Scope::parse(&scope).unwrap_or(Scope::Monitor),
        stored_hash: hash,
        last_seen_at: seen,
    }
}

pub fn find_token(conn: &Connection, hash: &[u8]) -> Result<Option<LiveCredential>, DbError> {
    Ok(conn
        .query_row(
            "SELECT id, scope, token_hash, last_used_at FROM auth_tokens
             WHERE token_hash = ?1 AND revoked_at IS NULL",
            [hash],
            |r| Ok(live(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

pub fn touch_token(conn: &Connection, id: i64) -> Result<(), DbError> {
    conn.execute(
        "UPDATE auth_tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id, now_rfc3339()],
    )?;
    Ok(())
}

/// Stores a new session for `token_id`; drops expired sessions and the token's oldest beyond
/// [`SESSIONS_PER_TOKEN_MAX`].
pub fn insert_session(
    conn: &Connection,
    hash: &[u8],
    token_id: i64,
    expires_at: &str,
) -> Result<(), DbError> {
    let now = now_rfc3339();
    conn.execute("DELETE FROM auth_sessions WHERE expires_at <= ?1", [&now])?;
    conn.execute(
        "INSERT INTO auth_sessions (session_hash, token_id, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?3, ?4)",
        params![hash, token_id, now, expires_at],
    )?;
    conn.execute(
        "DELETE FROM auth_sessions WHERE token_id = ?1 AND session_hash NOT IN
           (SELECT session_hash FROM auth_sessions WHERE token_id = ?1
            ORDER BY created_at DESC LIMIT ?2)",
        params![token_id, SESSIONS_PER_TOKEN_MAX],
    )?;
    Ok(())
}

pub fn find_session(conn: &Connection, hash: &[u8]) -> Result<Option<LiveCredential>, DbError> {
    Ok(conn
        .query_row(
            "SELECT t.id, t.scope, s.session_hash, s.last_seen_at
             FROM auth_sessions s JOIN auth_tokens t ON t.id = s.token_id
             WHERE s.session_hash = ?1 AND s.expires_at > ?2 AND t.revoked_at IS NULL",
            params![hash, now_rfc3339()],
            |r| Ok(live(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?)
}

/// Slides a session's expiry forward.
pub fn touch_session(conn: &Connection, hash: &[u8], expires_at: &str) -> Result<(), DbError> {
    conn.execute(
        "UPDATE auth_sessions SET last_seen_at = ?2, expires_at = ?3 WHERE session_hash = ?1",
        params![hash, now_rfc3339(), expires_at],
    )?;
    Ok(())
}

pub fn delete_session(conn: &Connection, hash: &[u8]) -> Result<bool, DbError> {
    Ok(conn.execute("DELETE FROM auth_sessions WHERE session_hash = ?1", [hash])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{hash_secret, issue_token};

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrate::migrate(&mut c).unwrap();
        c
    }

    #[test]
    fn revoking_a_token_ends_its_sessions() {
        let c = db();
        let t = issue_token(&c, Scope::Admin, "t").unwrap();
        let found = find_token(&c, &hash_secret(&t.secret)).unwrap().unwrap();
        assert_eq!(found.scope, Scope::Admin);
        insert_session(&c, b"s1", t.id, "2999-01-01T00:00:00.000Z").unwrap();
        assert!(find_session(&c, b"s1").unwrap().is_some());
        assert!(revoke_token(&c, t.id).unwrap());
        assert!(find_token(&c, &hash_secret(&t.secret)).unwrap().is_none());
        assert!(find_session(&c, b"s1").unwrap().is_none());
        assert!(!revoke_token(&c, t.id).unwrap());
    }

    #[test]
    fn touching_a_session_slides_its_expiry_and_first_admin_is_made_once() {
        let mut c = db();
        let first = crate::auth::ensure_first_admin(&mut c).unwrap().unwrap();
        assert_eq!(first.scope, Scope::Admin);
        assert!(crate::auth::ensure_first_admin(&mut c).unwrap().is_none());
        insert_session(&c, b"s", first.id, "2000-01-01T00:00:00.000Z").unwrap();
        touch_session(&c, b"s", "2999-01-01T00:00:00.000Z").unwrap();
        assert!(find_session(&c, b"s").unwrap().is_some());
        assert!(delete_session(&c, b"s").unwrap());
        assert!(find_session(&c, b"s").unwrap().is_none());
    }

    #[test]
    fn expired_sessions_are_not_found_and_sessions_per_token_are_capped() {
        let c = db();
        let t = issue_token(&c, Scope::Monitor, "m").unwrap();
        insert_session(&c, b"old", t.id, "2000-01-01T00:00:00.000Z").unwrap();
        assert!(find_session(&c, b"old").unwrap().is_none());
        for i in 0..(SESSIONS_PER_TOKEN_MAX + 10) {
            insert_session(&c, &i.to_be_bytes(), t.id, "2999-01-01T00:00:00.000Z").unwrap();
        }
        let n: i64 = c
            .query_row("SELECT count(*) FROM auth_sessions", [], |r| r.get(0))
            .unwrap();
        assert!(n <= SESSIONS_PER_TOKEN_MAX);
    }
}
