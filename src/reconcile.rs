//! Startup reconciliation: make every record tell the truth after a crash or restart.
//!
//! Before the server serves, every execution still `pending` or `running` from another boot
//! becomes `interrupted`. Each one's recorded process group is stopped if it survived — but only
//! after checking that the pid still names the process recorded (same start time): a reused pid
//! belongs to someone else and is never signalled. The stop escalates SIGHUP → SIGTERM → SIGKILL
//! two seconds apart, like every stop here, in the background so the start is not delayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde::Serialize;
use slog::{info, warn, Logger};

use crate::db::executions::{interrupt_stale, StaleExecution};
use crate::db::{Conn, DbError};
use crate::pty::{signal_recorded_group, SignalOutcome};

/// Why reconciled executions ended, as recorded in their `reason`.
pub const REASON_SERVER_RESTART: &str =
    "server restarted: the run that owned this execution ended before recording its outcome";
/// Pause between the steps of a stop (SIGHUP, SIGTERM, SIGKILL), as everywhere (DESIGN).
const STOP_STEP: Duration = Duration::from_secs(2);

/// Counts shown in detailed health.
#[derive(Debug, Default, Serialize)]
pub struct Reconciliation {
    pub interrupted: AtomicU64,
    /// Surviving process groups of an earlier boot that were signalled.
    pub groups_stopped: AtomicU64,
    /// Recorded pids now naming another process: left alone.
    pub pid_reused: AtomicU64,
}

/// Marks stale executions interrupted and sends the first signal to surviving groups.
/// Blocking (DB, /proc, signals): run it on a blocking thread, before serving.
/// Returns the groups still to be escalated.
pub fn reconcile(
    conn: &mut Conn,
    boot_id: &str,
    report: &Reconciliation,
    log: &Logger,
) -> Result<Vec<(i32, u64)>, DbError> {
    let stale = interrupt_stale(conn, boot_id, REASON_SERVER_RESTART)?;
    report
        .interrupted
        .store(stale.len() as u64, Ordering::Relaxed);
    let mut signalled = Vec::new();
    for StaleExecution {
        id,
        pgid,
        pid_start_time,
    } in stale
    {
        let (Some(pgid), Some(start)) = (pgid, pid_start_time) else {
            continue;
        };
        let (Ok(pgid), Ok(start)) = (i32::try_from(pgid), u64::try_from(start)) else {
            continue;
        };
        match signal_recorded_group(pgid, start, Signal::SIGHUP) {
            Ok(SignalOutcome::Delivered) => {
                report.groups_stopped.fetch_add(1, Ordering::Relaxed);
                signalled.push((pgid, start));
            }
            Ok(SignalOutcome::PidReused) => {
                report.pid_reused.fetch_add(1, Ordering::Relaxed);
                info!(log, "recorded pid now belongs to another process; left alone";
                      "execution_id" => id, "pgid" => pgid);
            }
            Ok(SignalOutcome::NoSuchGroup) => {}
            Err(e) => {
                warn!(log, "could not signal a surviving group"; "execution_id" => id, "error" => %e)
            }
        }
    }
    info!(log, "reconciled executions of earlier runs";
          "interrupted" => report.interrupted.load(Ordering::Relaxed),
          "groups_stopped" => report.groups_stopped.load(Ordering::Relaxed),
          "pid_reused" => report.pid_reused.load(Ordering::Relaxed));
    Ok(signalled)
}

/// Finishes the stop of groups that got SIGHUP: SIGTERM after 2 s, SIGKILL after 2 s more,
/// each only if the group is still there and its leader (if any) is still the recorded one.
pub async fn escalate(groups: Vec<(i32, u64)>, log: Logger, _report: Arc<Reconciliation>) {
    if groups.is_empty() {
        return;
    }
    let mut left = groups;
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        tokio::time::sleep(STOP_STEP).await;
        let step = left.clone();
        left = tokio::task::spawn_blocking(move || {
            step.into_iter()
                .filter(|(pgid, start)| {
                    matches!(
                        signal_recorded_group(*pgid, *start, signal),
                        Ok(SignalOutcome::Delivered)
                    )
                })
                .collect()
        })
        .await
        .unwrap_or_default();
        if left.is_empty() {
            return;
        }
    }
    warn!(log, "process groups of an earlier run got SIGKILL"; "groups" => left.len());
}
