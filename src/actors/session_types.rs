//! What the sessions supervisor, the session actors and the HTTP layer say to each other about a
//! session: its kind, what to start, its public description, and why creating one can fail.
//!
//! Kept apart from the actors so `http/` can speak these types without reaching into actor state.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::db::executions::ExecutionType;
use crate::pty::WindowSize;

/// Terminal and agent sessions run in the same actor; the kind decides only the execution type,
/// the URL prefix and which live counter they count in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Terminal,
    AgentSession,
}

impl SessionKind {
    pub fn execution_type(self) -> ExecutionType {
        match self {
            SessionKind::Terminal => ExecutionType::Terminal,
            SessionKind::AgentSession => ExecutionType::AgentSession,
        }
    }

    /// The REST collection (`/api/terminals`), also the prefix of the session's WebSocket.
    pub fn api_prefix(self) -> &'static str {
        match self {
            SessionKind::Terminal => "/api/terminals",
            SessionKind::AgentSession => "/api/agent-sessions",
        }
    }
}

/// `session.exited` on `/api/events`: how a session ended, built in this one shape.
#[derive(Debug, Serialize)]
pub struct SessionExited<'a> {
    pub id: &'a str,
    pub kind: SessionKind,
    pub execution_id: i64,
    pub status: &'static str,
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

/// A validated request to start a session (the HTTP layer has checked every field).
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub kind: SessionKind,
    pub name: Option<String>,
    /// argv[0] is the program as given (resolved on PATH by the spawn).
    pub argv: Vec<String>,
    /// Canonical, inside the allowed roots.
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub size: WindowSize,
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    /// Agent sessions: the agent CLI's conversation id (`{session_id}` in its template).
    pub conversation_id: Option<String>,
    /// The reaper stops the session after this long without output or input (`None`: never).
    /// Terminals take `terminal_idle_timeout`; agent sessions their own (30 min by default).
    pub idle_timeout: Option<Duration>,
    /// Agent sessions with `isolation: "worktree"`: the repository to give it a worktree of (the
    /// session then runs there, not in `cwd`).
    pub worktree: Option<crate::isolation::WorktreeRequest>,
    /// `memory_max_bytes` / `pids_max` for the session's cgroup (`pty/caps.rs`).
    pub caps: crate::pty::Caps,
    /// The device of the viewer that held the session's size when a reload handed the session
    /// over (its viewers reconnect; that device's next read-write viewer holds it again).
    pub size_held_by: Option<String>,
    /// The window title its program had set when a reload handed the session over: the new
    /// screen starts with it, so tabs do not lose it until the program sets it again.
    pub title: Option<String>,
}

/// When a session last saw output or input, in ms since the Unix epoch. Written by the session's
/// reader path and writer task, read by the reaper through the supervisor without asking the
/// session actor (which may be busy): a plain atomic, no lock.
#[derive(Debug)]
pub struct Activity(AtomicU64);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Activity {
    pub fn new() -> Activity {
        Activity(AtomicU64::new(now_ms()))
    }

    pub fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

/// Session ids: 32 lowercase hex digits (a v4 UUID without dashes).
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub fn is_valid_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub id: String,
    pub kind: SessionKind,
    pub name: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub pid: i32,
    pub cols: u16,
    pub rows: u16,
    /// `running`, or the execution's final status once the child has ended.
    pub status: &'static str,
    pub created_at: String,
    pub execution_id: i64,
    pub ws: String,
    pub viewers: usize,
    pub bytes_out: u64,
    pub last_activity_at: String,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub finished_at: Option<String>,
    /// The window title the program last set (OSC 0 or 2), as its screen on the server parsed
    /// it; `null` until it sets one.
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Why a session could not be created or reached.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{live} sessions are running, the configured maximum (max_sessions)")]
    TooMany { live: usize },
    #[error("command not found on PATH or not executable: {0}")]
    CommandNotFound(String),
    #[error("no such session")]
    NotFound,
    #[error("the sessions supervisor is restarting; try again")]
    Unavailable,
    #[error("could not start the session: {0}")]
    Spawn(String),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error("{field}: {why}")]
    CapUnavailable { field: &'static str, why: String },
    #[error("could not create its git worktree: {0}")]
    Isolation(#[from] crate::isolation::IsolationError),
}
