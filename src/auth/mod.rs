//! Credentials: what a token is, how it is stored and how it is checked.
//!
//! A credential is a 256-bit random secret from the OS, written as a prefix and 64 hex digits
//! (`cmt_…` for API tokens, `cms_…` for browser sessions; the prefix lets secret scanners and
//! people recognise one). Only its SHA-256 hash is stored: the secret has full entropy, so a
//! plain hash cannot be brute-forced and needs no salt or slow KDF, and a stolen database holds
//! nothing that logs in. A presented secret is hashed, the row is found by that hash, and the
//! stored hash is compared again in constant time (`subtle`), so timing reveals nothing.
//!
//! Nothing is cached: every request reads the token or session row, so revoking a token or
//! logging out takes effect on the very next request.
//!
//! - `client_addr`: who the client is, believing forwarding headers only from trusted proxies.
//! - `limiter`: the bounded per-address login failure counter.
//! - `crate::db::auth`: the `auth_tokens` and `auth_sessions` tables.
//! - `crate::http::auth`: the guard that applies all this to every request.

pub mod client_addr;
pub mod limiter;

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::auth as store;
use crate::db::DbError;

/// Prefix of API tokens (Bearer, CLI, first-start token).
pub const TOKEN_PREFIX: &str = "cmt_";
/// Prefix of browser session ids (the cookie value).
pub const SESSION_PREFIX: &str = "cms_";
/// 256 bits, as the issue asks: unguessable even at billions of tries per second.
const SECRET_BYTES: usize = 32;
/// Longest token name accepted (CLI `--name`); matches the schema's CHECK.
pub const TOKEN_NAME_MAX_CHARS: usize = 100;

/// What a credential may do. `Monitor` may read only the detailed health and the metrics, so a
/// monitoring system never holds a credential that can open a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Admin,
    Monitor,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Monitor => "monitor",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "monitor" => Some(Scope::Monitor),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("token name is longer than {TOKEN_NAME_MAX_CHARS} characters")]
    NameTooLong,
    #[error("no active token with id {0} (see `claude-manager token list`)")]
    NotFound(i64),
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Db(DbError::Sqlite(e))
    }
}

/// A fresh secret: `prefix` + 64 lowercase hex digits.
pub fn new_secret(prefix: &str) -> Result<String, AuthError> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    let mut out = String::with_capacity(prefix.len() + SECRET_BYTES * 2);
    out.push_str(prefix);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    Ok(out)
}

/// Whether `s` has the shape of a secret with `prefix` (checked before any DB work).
pub fn has_secret_shape(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == SECRET_BYTES * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A token just created: the secret is shown once and never stored.
#[derive(Debug)]
pub struct IssuedToken {
    pub id: i64,
    pub scope: Scope,
    pub secret: String,
}

/// Creates a token and stores its hash. Blocking: run through the DB actor or from the CLI.
pub fn issue_token(conn: &Connection, scope: Scope, name: &str) -> Result<IssuedToken, AuthError> {
    if name.chars().count() > TOKEN_NAME_MAX_CHARS {
        return Err(AuthError::NameTooLong);
    }
    let secret = new_secret(TOKEN_PREFIX)?;
    let id = store::insert_token(conn, scope, name, &hash_secret(&secret))?;
    Ok(IssuedToken { id, scope, secret })
}

/// First start: when no token was ever created, creates the admin token and returns it (to be
/// printed once). Later starts return `None`, even if every admin token has since been revoked:
/// then `token reset-admin` is the way back in, by someone with access to the data dir.
pub fn ensure_first_admin(conn: &mut Connection) -> Result<Option<IssuedToken>, AuthError> {
    let tx = conn.transaction().map_err(DbError::from)?;
    if store::token_count(&tx)? > 0 {
        return Ok(None);
    }
    let token = issue_token(&tx, Scope::Admin, "first-start admin")?;
    tx.commit().map_err(DbError::from)?;
    Ok(Some(token))
}

/// Revokes every admin token (and their sessions) and creates a new one, in one transaction.
pub fn reset_admin(conn: &mut Connection) -> Result<(usize, IssuedToken), AuthError> {
    let tx = conn.transaction().map_err(DbError::from)?;
    let revoked = store::revoke_scope(&tx, Scope::Admin)?;
    let token = issue_token(&tx, Scope::Admin, "reset-admin")?;
    tx.commit().map_err(DbError::from)?;
    Ok((revoked, token))
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Bearer,
    Cookie,
    /// `--insecure-no-auth` on loopback: everyone is admin.
    NoAuth,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub scope: Scope,
    pub token_id: Option<i64>,
    pub via: Via,
}

/// Whether an environment variable's name says its value is a secret.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"]
        .iter()
        .any(|w| upper.contains(w))
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The env as an API response may show it: values of secret-looking names replaced by
/// [`REDACTED`]. Every response that shows a session's or agent's env goes through this.
pub fn redact_env<I, K, V>(env: I) -> std::collections::BTreeMap<String, String>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    env.into_iter()
        .map(|(k, v)| {
            let k = k.into();
            let v = if looks_secret(&k) {
                REDACTED.to_string()
            } else {
                v.into()
            };
            (k, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_hex_with_prefix() {
        let a = new_secret(TOKEN_PREFIX).unwrap();
        let b = new_secret(TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(has_secret_shape(&a, TOKEN_PREFIX));
        assert!(!has_secret_shape(&a, SESSION_PREFIX));
        assert!(!has_secret_shape("cmt_abc", TOKEN_PREFIX));
        assert_eq!(hash_secret(&a).len(), 32);
        assert!(hashes_equal(&hash_secret(&a), &hash_secret(&a)));
        assert!(!hashes_equal(&hash_secret(&a), &hash_secret(&b)));
    }

    #[test]
    fn redact_env_hides_secret_looking_names_only() {
        let env = redact_env([
            ("GITHUB_TOKEN", "ghp_x"),
            ("ANTHROPIC_API_KEY", "sk-x"),
            ("db_password", "p"),
            ("MY_SECRET", "s"),
            ("PATH", "/usr/bin"),
        ]);
        assert_eq!(env["GITHUB_TOKEN"], REDACTED);
        assert_eq!(env["ANTHROPIC_API_KEY"], REDACTED);
        assert_eq!(env["db_password"], REDACTED);
        assert_eq!(env["MY_SECRET"], REDACTED);
        assert_eq!(env["PATH"], "/usr/bin");
    }
}
