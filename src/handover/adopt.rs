//! The new image's side: take over the sessions of the record, say how the reload went
//! (detailed health, `/metrics`, the status file, the `server.reloaded` event), and reap what
//! the old image left that is still our child.

use std::time::Duration;

use slog::{error, info};

use super::take::{Inherited, Unreadable};
use super::{update_report, ReloadReport};
use crate::actors::events::EventType;
use crate::db::DbError;
use crate::state::AppState;

/// How long the sessions supervisor may take to adopt every session (1000 sessions: well under).
const ADOPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopped leftover of the old image is waited for to be reaped.
const REAP_WAIT: Duration = Duration::from_secs(15);
const REAP_POLL: Duration = Duration::from_millis(100);

/// Environment variable passed with the record: `GENERATION RELOAD_SEQ`, so that even a record
/// that cannot be read leaves the count and the reload's outcome right.
pub const ENV_SEQ: &str = "CM_HANDOVER_SEQ";

/// Adopts the sessions of `inherited` and reports the reload's outcome.
pub async fn adopt(state: &AppState, inherited: Inherited) {
    let Inherited {
        record, sessions, ..
    } = inherited;
    let named = sessions.len() as u64;
    let adopted = state.sessions.adopt(sessions, ADOPT_TIMEOUT).await;
    let (ok, failed) = match adopted {
        Ok(a) => (a.adopted, a.failed),
        Err(e) => {
            error!(state.log, "adopting the handed-over sessions failed"; "error" => %e);
            (0, named)
        }
    };
    update_report(|r| {
        r.generation = record.generation;
        r.reload_seq = record.reload_seq;
        r.adopted_sessions = ok;
        r.adoption_failures = failed;
        r.last_reload_at = Some(record.requested_at.clone());
        r.last_reload_outcome = Some(
            if record.exec_error.is_none() {
                "ok"
            } else {
                "failed"
            }
            .into(),
        );
        r.last_reload_error = record.exec_error.clone();
    });
    info!(state.log, "reloaded"; "generation" => record.generation, "adopted_sessions" => ok,
          "adoption_failures" => failed, "exec_error" => record.exec_error.as_deref());
    announce(state);
}

/// The record could not be read: its sessions were reconciled `interrupted` with the reason;
/// the reload is reported failed.
pub fn record_unreadable(state: &AppState, why: &Unreadable) {
    let (generation, seq) = std::env::var(ENV_SEQ)
        .ok()
        .and_then(|v| {
            let (g, s) = v.split_once(' ')?;
            Some((g.parse().ok()?, s.parse().ok()?))
        })
        .unwrap_or((0, 0));
    update_report(|r| {
        r.generation = generation;
        r.reload_seq = seq;
        r.last_reload_at = Some(crate::time::format_ts(std::time::SystemTime::now().into()));
        r.last_reload_outcome = Some("failed".into());
        r.last_reload_error = Some(format!("the handover record could not be read: {why}"));
    });
    error!(state.log, "reload: the handover record could not be read; its sessions were stopped";
           "error" => %why);
    announce(state);
}

/// Publishes `server.reloaded` with the report.
pub fn announce(state: &AppState) {
    let report: ReloadReport = super::report();
    state.events.publish(EventType::ServerReloaded, &report);
}

/// Moves the handed-over executions to the next image's boot id (old image, before the exec).
pub fn move_to_boot(
    conn: &rusqlite::Connection,
    ids: &[i64],
    boot_id: &str,
) -> Result<(), DbError> {
    let mut stmt = conn.prepare("UPDATE executions SET boot_id = ?1 WHERE id = ?2")?;
    for id in ids {
        stmt.execute(rusqlite::params![boot_id, id])?;
    }
    Ok(())
}

/// Our children that this image did not start: inherited across the exec. Call before this
/// image starts any child. Blocking (reads `/proc`).
pub fn inherited_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // After the command's closing parenthesis: state, then the parent's pid.
                    let rest = stat.rsplit_once(") ")?.1;
                    rest.split(' ').nth(1)?.parse::<i32>().ok()
                })
                == Some(me)
        })
        .collect()
}

/// Reaps (in the background) inherited children no session adopted — stopped by the
/// reconciliation, or already dead (a zombie): same PID across the exec, so nobody else would.
pub fn reap_when_gone(pids: Vec<i32>) {
    if pids.is_empty() {
        return;
    }
    tokio::task::spawn_blocking(move || {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let deadline = std::time::Instant::now() + REAP_WAIT;
        let mut left = pids;
        while !left.is_empty() && std::time::Instant::now() < deadline {
            left.retain(|&pid| {
                matches!(
                    waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive)
                )
            });
            std::thread::sleep(REAP_POLL);
        }
    });
}
