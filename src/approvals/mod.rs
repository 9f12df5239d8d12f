//! Agents that ask (issue 16): attention and permission approvals.
//!
//! ```text
//! claude ──hook cmd──▶ `claude-manager hook EVENT` ─┐  one JSON line each way over
//! claude -p ──MCP──▶ `claude-manager mcp` ──────────┼─▶ <data>/run/hooks.sock (0600, dir 0700)
//!                                                   │   + the session's secret (CM_HOOK_TOKEN)
//!                       channel.rs (accept, check token, dispatch) ─▶ Approvals (this file)
//! ```
//!
//! Attention is a column of the execution, changed by the hooks (`Notification` → `input`,
//! `PermissionRequest` → `approval`, `Stop` → `done`, `UserPromptSubmit`/`SessionStart` → none)
//! and by the end of a run (`done`). Approvals are rows in SQLite; the asker's connection waits
//! for the row's decision (a user, a rule, the deadline). A decision is taken once: the row is
//! updated only while `pending`, so a second decider gets 409. The asker names its request with
//! a key of its own, so after a server restart it reconnects to the same request; requests whose
//! agent is gone are closed `cancelled`, never left pending forever.

pub mod attention;
pub mod channel;
pub mod client;
pub mod rules;
pub mod setup;

pub use attention::{publish_settled, Attention, AttentionChanged};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use slog::{info, warn, Logger};
use tokio::sync::watch;

use crate::actors::db::Db;
use crate::actors::events::{EventType, Events};
use crate::db::approvals::{self as store, Approval, NewApproval, TokenOwner};
use crate::db::execution_events;
use crate::db::DbError;

/// The env variables a session's agent (and so its hooks and MCP server) gets.
pub const ENV_SOCKET: &str = "CM_HOOK_SOCKET";
pub const ENV_TOKEN: &str = "CM_HOOK_TOKEN";
/// How long the asker waits in all (its agent's `approval_timeout_secs`), so it knows how long
/// to keep reconnecting across a server restart.
pub const ENV_TIMEOUT: &str = "CM_APPROVAL_TIMEOUT_SECS";
/// Hook secrets: `cmh_` + 64 hex digits.
pub const TOKEN_PREFIX: &str = "cmh_";
/// Default of an agent's `approval_timeout_secs`: 10 min, as the issue asks.
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// A user's (or a rule's, or the clock's) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no approval with id {0}")]
    NotFound(i64),
    #[error("approval {id} was already decided ({status})")]
    AlreadyDecided { id: i64, status: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What an asker is told: the row once it is no longer pending.
pub type Answer = watch::Receiver<Option<Approval>>;

/// The shared handle: cheap to clone. The mutexes guard small maps, never held across `.await`.
#[derive(Clone)]
pub struct Approvals {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    events: Events,
    log: Logger,
    socket: PathBuf,
    /// The program hook commands and the MCP server run (this binary).
    program: PathBuf,
    /// Pending approvals' answer channels, by id. Entries are removed when decided.
    waiting: Mutex<HashMap<i64, watch::Sender<Option<Approval>>>>,
    /// Hook secrets handed out by this server run, by hash (the DB keeps them for restarts).
    tokens: Mutex<HashMap<Vec<u8>, TokenOwner>>,
}

/// An asker's secret and the environment its agent gets.
pub struct HookAccess {
    pub token: String,
    pub env: Vec<(String, String)>,
}

impl Approvals {
    pub fn new(
        db: Db,
        events: Events,
        log: Logger,
        data_dir: &std::path::Path,
        program: PathBuf,
    ) -> Self {
        Approvals {
            inner: Arc::new(Inner {
                db,
                events,
                log: log.new(slog::o!("module" => "approvals")),
                socket: channel::socket_path(data_dir),
                program,
                waiting: Mutex::default(),
                tokens: Mutex::default(),
            }),
        }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.inner.socket
    }

    pub fn program(&self) -> &std::path::Path {
        &self.inner.program
    }

    pub(crate) fn log(&self) -> &Logger {
        &self.inner.log
    }

    fn events(&self) -> &Events {
        &self.inner.events
    }

    /// A fresh secret for an agent's session or run, and the env that carries it to the hooks.
    /// The owner (execution, session) is bound with [`Approvals::bind`] once it exists.
    pub fn issue(&self, agent_id: i64, timeout_secs: u64) -> Option<HookAccess> {
        let token = crate::auth::new_secret(TOKEN_PREFIX).ok()?;
        let owner = TokenOwner {
            execution_id: None,
            session_id: None,
            agent_id: Some(agent_id),
        };
        if let Ok(mut map) = self.inner.tokens.lock() {
            map.insert(crate::auth::hash_secret(&token), owner);
        }
        let env = vec![
            (
                ENV_SOCKET.to_string(),
                self.inner.socket.display().to_string(),
            ),
            (ENV_TOKEN.to_string(), token.clone()),
            (ENV_TIMEOUT.to_string(), timeout_secs.to_string()),
        ];
        Some(HookAccess { token, env })
    }

    /// Ties a secret to the execution (and session) it belongs to, in memory and in the DB.
    pub async fn bind(&self, token: &str, execution_id: i64, session_id: Option<String>) {
        let hash = crate::auth::hash_secret(token);
        let owner = {
            let Ok(mut map) = self.inner.tokens.lock() else {
                return;
            };
            let Some(owner) = map.get_mut(&hash) else {
                return;
            };
            owner.execution_id = Some(execution_id);
            owner.session_id = session_id;
            owner.clone()
        };
        let stored = {
            let hash = hash.clone();
            self.inner
                .db
                .write(move |c| store::insert_token(c, &hash, &owner))
                .await
        };
        match stored {
            // From now on the DB answers for it, and only while its execution runs.
            Ok(()) => {
                if let Ok(mut map) = self.inner.tokens.lock() {
                    map.remove(&hash);
                }
            }
            Err(e) => warn!(self.inner.log, "storing a hook secret failed"; "error" => %e),
        }
    }

    /// Forgets a secret (its session or run ended, or never started).
    pub async fn revoke(&self, token: &str, execution_id: Option<i64>) {
        if let Ok(mut map) = self.inner.tokens.lock() {
            map.remove(&crate::auth::hash_secret(token));
        }
        if let Some(id) = execution_id {
            let _ = self
                .inner
                .db
                .write(move |c| store::drop_tokens_of(c, id))
                .await;
        }
    }

    /// Who holds `token`: this run's map first, then the DB (secrets issued before a restart).
    pub async fn owner(&self, token: &str) -> Option<TokenOwner> {
        if !crate::auth::has_secret_shape(token, TOKEN_PREFIX) {
            return None;
        }
        let hash = crate::auth::hash_secret(token);
        if let Some(o) = self.inner.tokens.lock().ok()?.get(&hash).cloned() {
            return Some(o);
        }
        self.inner
            .db
            .read(move |c| store::token_owner(c, &hash))
            .await
            .ok()
            .flatten()
    }

    /// Records a request (or finds it again under its key), applies the agent's rules, and
    /// returns the channel its answer comes on.
    pub async fn ask(
        &self,
        owner: &TokenOwner,
        key: String,
        source: &'static str,
        tool_name: String,
        tool_input: Value,
    ) -> Result<(i64, Answer), ApprovalError> {
        let agent = match owner.agent_id {
            Some(id) => self
                .inner
                .db
                .read(move |c| crate::db::agents::get(c, id))
                .await
                .ok()
                .flatten(),
            None => None,
        };
        let (timeout_secs, rules) = agent
            .map(|a| (a.def.approval_timeout_secs, a.def.approval_rules))
            .unwrap_or((DEFAULT_TIMEOUT_SECS, rules::Rules::default()));
        let deadline = crate::time::format_ts(
            time::OffsetDateTime::now_utc() + Duration::from_secs(timeout_secs),
        );
        let new = NewApproval {
            request_key: key,
            execution_id: owner.execution_id,
            session_id: owner.session_id.clone(),
            agent_id: owner.agent_id,
            source,
            tool_name,
            tool_input,
            deadline,
        };
        let row = self
            .inner
            .db
            .write(move |c| store::insert_or_get(c, &new))
            .await?;
        let (tx, rx) = watch::channel(None);
        let id = row.id;
        if row.status != "pending" {
            let _ = tx.send(Some(row));
            return Ok((id, rx));
        }
        let fresh = {
            let Ok(mut map) = self.inner.waiting.lock() else {
                return Err(ApprovalError::Db(DbError::Unavailable));
            };
            match map.get(&row.id) {
                Some(existing) => return Ok((id, existing.subscribe())),
                None => {
                    map.insert(row.id, tx);
                    true
                }
            }
        };
        let rx = self.subscribe(row.id).unwrap_or(rx);
        if fresh && row.decided_by.is_none() {
            if let Some((decision, pattern)) = rules.verdict(&row.tool_name, &row.tool_input) {
                info!(self.inner.log, "approval decided by a rule"; "approval_id" => row.id,
                      "rule" => &pattern);
                let message = (decision == Decision::Deny)
                    .then(|| format!("denied by the agent's approval rule {pattern}"));
                let _ = self
                    .decide(row.id, decision, message, format!("rule:{pattern}"))
                    .await;
                return Ok((id, rx));
            }
            self.announce(&row, owner).await;
            self.arm_deadline(row.id, &row.deadline);
        }
        Ok((id, rx))
    }

    fn subscribe(&self, id: i64) -> Option<Answer> {
        self.inner
            .waiting
            .lock()
            .ok()?
            .get(&id)
            .map(|tx| tx.subscribe())
    }

    async fn announce(&self, row: &Approval, owner: &TokenOwner) {
        self.inner
            .events
            .publish_about(EventType::ApprovalRequested, row.execution_id, None, row);
        self.note(row, "approval.requested").await;
        self.set_attention(owner, Some(Attention::Approval)).await;
    }

    /// Denies `id` when its deadline passes (a no-op if it was decided before).
    fn arm_deadline(&self, id: i64, deadline: &str) {
        let wait =
            time::OffsetDateTime::parse(deadline, &time::format_description::well_known::Rfc3339)
                .map(|d| (d - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO))
                .map(|d| Duration::from_millis(d.whole_milliseconds() as u64))
                .unwrap_or_default();
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let reason = "no decision within the agent's approval_timeout_secs".to_string();
            let _ = me
                .decide(id, Decision::Deny, Some(reason), "timeout".into())
                .await;
        });
    }

    /// Decides a pending approval: once. Wakes its asker, publishes, notes it in the run.
    pub async fn decide(
        &self,
        id: i64,
        decision: Decision,
        message: Option<String>,
        decided_by: String,
    ) -> Result<Approval, ApprovalError> {
        let status = match decision {
            Decision::Allow => "allowed",
            Decision::Deny => "denied",
        };
        self.close(id, status, message, decided_by).await
    }

    async fn close(
        &self,
        id: i64,
        status: &'static str,
        message: Option<String>,
        decided_by: String,
    ) -> Result<Approval, ApprovalError> {
        let row = self
            .inner
            .db
            .write(move |c| store::decide(c, id, status, message.as_deref(), &decided_by))
            .await?
            .ok_or(ApprovalError::NotFound(id))?
            .map_err(|row| ApprovalError::AlreadyDecided {
                id,
                status: row.status,
            })?;
        if let Some(tx) = self
            .inner
            .waiting
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&id))
        {
            let _ = tx.send(Some(row.clone()));
        }
        info!(self.inner.log, "approval decided"; "approval_id" => id, "status" => &row.status,
              "by" => row.decided_by.as_deref().unwrap_or(""));
        self.inner
            .events
            .publish_about(EventType::ApprovalDecided, row.execution_id, None, &row);
        self.note(&row, "approval.decided").await;
        let owner = TokenOwner {
            execution_id: row.execution_id,
            session_id: row.session_id.clone(),
            agent_id: row.agent_id,
        };
        if status != "cancelled" {
            self.set_attention(&owner, None).await;
        }
        Ok(row)
    }

    /// The asker stopped waiting (its connection closed: the agent exited or gave up).
    pub async fn abandon(&self, id: i64, why: &str) {
        let _ = self
            .close(id, "cancelled", Some(why.to_string()), "server".into())
            .await;
    }

    /// Writes the request or decision into the execution's events (who, when, what).
    async fn note(&self, row: &Approval, kind: &'static str) {
        let Some(execution_id) = row.execution_id else {
            return;
        };
        let data = json!({
            "approval_id": row.id, "tool_name": row.tool_name, "tool_input": row.tool_input,
            "status": row.status, "message": row.message, "decided_by": row.decided_by,
            "decided_at": row.decided_at, "created_at": row.created_at,
        });
        let ts = crate::time::now_rfc3339();
        let stored = {
            let (ts, data) = (ts.clone(), data.clone());
            self.inner
                .db
                .write(move |c| execution_events::append(c, execution_id, &ts, kind, &data))
                .await
        };
        match stored {
            Ok(seq) => self.inner.events.publish_about(
                EventType::ExecutionEvent,
                Some(execution_id),
                Some(seq),
                &execution_events::ExecutionEvent {
                    execution_id,
                    seq,
                    ts,
                    kind: kind.to_string(),
                    data,
                },
            ),
            Err(e) => warn!(self.inner.log, "noting an approval in the execution's events failed";
                            "error" => %e),
        }
    }

    /// At start: closes requests whose agent is gone, re-arms the deadlines of the others
    /// (their askers reconnect with their keys).
    pub async fn resume(&self) {
        let orphaned = self
            .inner
            .db
            .read(|c| store::orphaned(c))
            .await
            .unwrap_or_default();
        for id in orphaned {
            self.abandon(
                id,
                "the server restarted and the agent that asked is no longer running",
            )
            .await;
        }
        let pending = self
            .inner
            .db
            .read(|c| store::pending(c))
            .await
            .unwrap_or_default();
        for row in pending {
            if let Ok(mut map) = self.inner.waiting.lock() {
                map.entry(row.id).or_insert_with(|| watch::channel(None).0);
            }
            self.arm_deadline(row.id, &row.deadline);
        }
    }

    pub async fn get(&self, id: i64) -> Result<Approval, ApprovalError> {
        self.inner
            .db
            .read(move |c| store::get(c, id))
            .await?
            .ok_or(ApprovalError::NotFound(id))
    }

    pub async fn list(
        &self,
        status: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Approval>, i64), ApprovalError> {
        Ok(self
            .inner
            .db
            .read(move |c| store::list(c, status.as_deref(), limit, offset))
            .await?)
    }
}
