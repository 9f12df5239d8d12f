//! SQLite storage: the pool, the schema migrations, and the queries of each table.
//!
//! Nothing here is async: every function takes a `&Connection` and blocks. They are run only by
//! the DB actor (`crate::actors::db`) on tokio's blocking threads, never on the async runtime.
//! One file per table (`agents.rs`, `tasks.rs`, `executions.rs`, `auth.rs`); `migrate.rs` applies `schema.sql`.

pub mod agents;
pub mod approvals;
pub mod auth;
pub mod execution_events;
pub mod execution_list;
pub mod execution_stats;
pub mod executions;
pub mod migrate;
pub mod push_subscriptions;
pub mod tasks;
pub mod worktrees;

use std::path::Path;
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;

pub type Pool = r2d2::Pool<SqliteConnectionManager>;
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

/// Waits inside SQLite for a lock held by another connection before SQLITE_BUSY.
const BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No pooled connection became free within the checkout timeout.
    #[error("no database connection free within {timeout_ms} ms")]
    Busy { timeout_ms: u64 },
    /// The DB actor is not running (it is being restarted by its supervisor).
    #[error("the database actor is not running")]
    Unavailable,
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("migration: {0}")]
    Migration(String),
}

/// Opens (creating if needed) the database and builds the pool. Blocking: call it off the runtime.
///
/// Pragmas per DESIGN "Storage": WAL (readers never block the writer), synchronous=NORMAL (in WAL
/// mode a committed transaction survives a crash of the process — the WAL is in the OS page cache —
/// and only an OS crash or power loss can lose the last commits), foreign keys, busy timeout.
pub fn open_pool(path: &Path, size: u32, checkout_timeout: Duration) -> Result<Pool, DbError> {
    {
        // journal_mode is persistent in the file; set it once on a plain connection.
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    let manager = SqliteConnectionManager::file(path).with_init(|c| {
        c.execute_batch(&format!(
            "PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};"
        ))
    });
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(size.min(2)))
        .connection_timeout(checkout_timeout)
        // A local SQLite connection does not go stale; skip r2d2's per-checkout probe query.
        .test_on_check_out(false)
        // r2d2 logs connection errors to `log`; we report them ourselves where they are handled.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build(manager)?;
    Ok(pool)
}

/// Checkpoints the WAL into the main file (at shutdown, so the DB is one self-contained file).
pub fn checkpoint(conn: &rusqlite::Connection) -> Result<(), DbError> {
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` substring match.
pub fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
