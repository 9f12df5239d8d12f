//! The running server's side of a reload request (SIGHUP): check the binary, then either serve
//! on (refused: logged, announced, written to the status file) or stop serving and prepare the
//! handover; and the status file `claude-manager reload` reads.

use slog::{error, warn};

use super::exec::preflight;
use super::prepare::{Prepared, ReloadMeta};
use super::status::{write_status as write_file, ServerStatus};
use super::{announce, report, update_report};
use crate::app::Server;
use crate::notify::Notifier;
use crate::state::AppState;

/// Why no exec follows a reload request.
pub enum Refused {
    /// The binary cannot be executed: the server serves on, unchanged.
    ServeOn(Box<Server>),
    /// The handover could not be prepared after serving had stopped: the server has stopped.
    Stopped,
}

/// Handles one reload request.
pub async fn begin(server: Server, notifier: &Notifier) -> Result<Prepared, Refused> {
    let seq = report().reload_seq + 1;
    let at = crate::time::format_ts(std::time::SystemTime::now().into());
    let (state, log) = (server.state.clone(), server.state.log.clone());
    let checked = tokio::task::spawn_blocking(preflight)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(why) = checked {
        warn!(log, "reload refused; serving on"; "error" => &why);
        update_report(|r| {
            r.reload_seq = seq;
            r.last_reload_at = Some(at);
            r.last_reload_outcome = Some("failed".into());
            r.last_reload_error = Some(why);
        });
        announce(&state);
        write_status(&state).await;
        return Err(Refused::ServeOn(Box::new(server)));
    }
    if let Err(e) = notifier.send("RELOADING=1\nSTATUS=reloading: handing sessions over") {
        warn!(log, "systemd notify failed"; "error" => %e);
    }
    let meta = ReloadMeta {
        generation: report().generation + 1,
        boot_id: uuid::Uuid::new_v4().to_string(),
        reload_seq: seq,
        requested_at: at,
    };
    server.prepare_reload(meta).await.map_err(|e| {
        error!(log, "reload failed after serving stopped; the sessions were stopped"; "error" => %e);
        Refused::Stopped
    })
}

/// Writes the status file for this image (pid, generation, last reload). Logged on failure.
pub async fn write_status(state: &AppState) {
    let r = report();
    let status = ServerStatus {
        pid: std::process::id(),
        generation: r.generation,
        reload_seq: r.reload_seq,
        last_reload_at: r.last_reload_at,
        last_reload_outcome: r.last_reload_outcome,
        last_reload_error: r.last_reload_error,
        adopted_sessions: r.adopted_sessions,
    };
    let dir = state.config.data_dir.clone();
    let written = tokio::task::spawn_blocking(move || write_file(&dir, &status)).await;
    if let Ok(Err(e)) = written {
        warn!(state.log, "writing the server status file failed"; "error" => %e);
    }
}
