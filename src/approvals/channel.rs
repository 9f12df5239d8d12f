//! The local channel hook commands and the MCP permission tool report on: a Unix socket in
//! `<data>/run/` (directory 0700, socket 0600 — no TCP port, nobody but the server user can
//! connect), and on it the session's own secret, so one session cannot speak for another.
//!
//! One JSON line each way: `{"token","event","key","input"}` →
//! `{"ok":true,"decision":{"behavior":"allow"|"deny","message":…}}` (permission requests) or
//! `{"ok":true}` / `{"ok":false,"error":…}`. A permission request keeps its connection open
//! until decided; if the asker hangs up first, its request is cancelled.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use slog::{info, warn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};

use super::{Approvals, Attention};

/// One request line at most (a tool input carrying a whole file edit fits).
pub const LINE_MAX_BYTES: u64 = 4 * 1024 * 1024;
/// Connections served at once (each permission request holds one until decided).
const CONNECTIONS_MAX: usize = 512;
/// A connection must send its line within this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("hooks.sock")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub token: String,
    /// A hook event name (`PermissionRequest`, `Notification`, `Stop`, `UserPromptSubmit`,
    /// `SessionStart`), or `mcp_permission` (the permission prompt tool of a run).
    pub event: String,
    /// Chosen by the asker: the same key finds the same request after a reconnect.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub input: Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    /// `allow` or `deny`.
    pub behavior: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Binds the socket (replacing a stale one: the data-dir lock says no other server runs here)
/// and serves it until `shutdown`.
pub async fn serve(
    approvals: Approvals,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let path = approvals.socket().to_path_buf();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    {
        let (dir, path) = (dir.clone(), path.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
        .map_err(std::io::Error::other)??;
    }
    let listener = UnixListener::bind(&path)?;
    {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        })
        .await
        .map_err(std::io::Error::other)??;
    }
    info!(approvals.log(), "hook channel listening"; "socket" => %path.display());
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    Ok(tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                _ = crate::state::shutting_down(&mut shutdown) => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!(approvals.log(), "hook channel accept failed"; "error" => %e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let (approvals, shutdown) = (approvals.clone(), shutdown.clone());
            tokio::spawn(async move {
                serve_one(approvals, stream, shutdown).await;
                drop(permit);
            });
        }
    }))
}

async fn reply(stream: &mut tokio::net::unix::OwnedWriteHalf, r: &Reply) {
    if let Ok(mut line) = serde_json::to_vec(r) {
        line.push(b'\n');
        let _ = stream.write_all(&line).await;
    }
}

fn failed(why: &str) -> Reply {
    Reply {
        ok: false,
        decision: None,
        error: Some(why.to_string()),
    }
}

async fn serve_one(approvals: Approvals, stream: UnixStream, mut shutdown: watch::Receiver<bool>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(LINE_MAX_BYTES));
    let mut line = Vec::new();
    match tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let Ok(req) = serde_json::from_slice::<Request>(&line) else {
        return reply(&mut write, &failed("not a request line")).await;
    };
    let Some(owner) = approvals.owner(&req.token).await else {
        return reply(&mut write, &failed("unknown or expired hook secret")).await;
    };
    let attention = match req.event.as_str() {
        "SessionStart" | "UserPromptSubmit" => Some(None),
        "Stop" => Some(Some(Attention::Done)),
        "Notification" => match req.input["notification_type"].as_str() {
            Some("permission_prompt") => Some(Some(Attention::Approval)),
            Some("idle_prompt" | "elicitation_dialog") | None => Some(Some(Attention::Input)),
            Some(_) => None,
        },
        _ => None,
    };
    if let Some(attention) = attention {
        approvals.set_attention(&owner, attention).await;
        return reply(
            &mut write,
            &Reply {
                ok: true,
                decision: None,
                error: None,
            },
        )
        .await;
    }
    let (source, tool, input) = match req.event.as_str() {
        "PermissionRequest" => ("hook", &req.input["tool_name"], &req.input["tool_input"]),
        "mcp_permission" => ("mcp", &req.input["tool_name"], &req.input["input"]),
        _ => return reply(&mut write, &failed("unknown event")).await,
    };
    let (Some(tool), Some(key)) = (tool.as_str(), req.key.clone()) else {
        return reply(
            &mut write,
            &failed("a permission request names its tool and key"),
        )
        .await;
    };
    if key.is_empty() || key.len() > 128 {
        return reply(&mut write, &failed("bad request key")).await;
    }
    let (id, mut answer) = match approvals
        .ask(&owner, key, source, tool.to_string(), input.clone())
        .await
    {
        Ok(asked) => asked,
        Err(e) => return reply(&mut write, &failed(&e.to_string())).await,
    };
    // Wait for the decision; notice the asker hanging up (it sends nothing more, so any read
    // result means the connection is done) and the server stopping (the row stays pending:
    // the asker reconnects to the next server run with its key).
    let mut rest = [0u8; 64];
    let row = tokio::select! {
        // The guard `wait_for` returns is not Send: clone the row inside this future.
        r = async { answer.wait_for(Option::is_some).await.ok().and_then(|v| v.clone()) } => r,
        _ = reader.read(&mut rest) => {
            approvals
                .abandon(id, "the agent stopped waiting (it exited or gave up) before a decision")
                .await;
            return;
        }
        _ = crate::state::shutting_down(&mut shutdown) => return,
    };
    let Some(row) = row else { return };
    let behavior = if row.status == "allowed" {
        "allow"
    } else {
        "deny"
    };
    let r = Reply {
        ok: true,
        decision: Some(Verdict {
            behavior: behavior.into(),
            message: row.message.clone(),
        }),
        error: None,
    };
    reply(&mut write, &r).await;
}
