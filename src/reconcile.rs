//! Startup reconciliation: make every record tell the truth after a crash or restart.
//!
//! Before the server serves, every execution still `pending` or `running` from another boot
//! becomes `interrupted`. Each one's recorded process tree (its cgroup, or every process of its
//! session id) is stopped if anything of it survived — but a pid is only signalled after checking
//! that the recorded leader pid still names the process recorded (same start time): a reused pid
//! belongs to someone else and is never signalled. The stop escalates SIGHUP → SIGTERM → SIGKILL
//! two seconds apart, like every stop here, in the background so the start is not delayed; then
//! the emptied cgroups are removed.

use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::signal::Signal;
use serde::Serialize;
use slog::{info, warn, Logger};

use crate::db::executions::{interrupt_stale, StaleExecution};
use crate::db::{Conn, DbError};
use crate::lifecycle::{next_stop_signal, STOP_STEP};
use crate::pty::CgroupRoot;
use crate::pty::{ProcessTree, SignalOutcome};

/// Why reconciled executions ended, as recorded in their `reason`.
pub const REASON_SERVER_RESTART: &str =
    "server restarted: the run that owned this execution ended before recording its outcome";

/// Counts shown in detailed health.
#[derive(Debug, Default, Serialize)]
pub struct Reconciliation {
    pub interrupted: AtomicU64,
    /// Surviving process trees of an earlier boot that were signalled.
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
) -> Result<Vec<ProcessTree>, DbError> {
    reconcile_because(conn, boot_id, REASON_SERVER_RESTART, report, log)
}

/// [`reconcile`], recording `reason` (a reload whose handover record could not be read says so).
pub fn reconcile_because(
    conn: &mut Conn,
    boot_id: &str,
    reason: &str,
    report: &Reconciliation,
    log: &Logger,
) -> Result<Vec<ProcessTree>, DbError> {
    let stale = interrupt_stale(conn, boot_id, reason)?;
    report
        .interrupted
        .store(stale.len() as u64, Ordering::Relaxed);
    let mut signalled = Vec::new();
    for StaleExecution {
        id,
        pgid,
        pid_start_time,
        cgroup,
    } in stale
    {
        let (Some(pgid), Some(start)) = (pgid, pid_start_time) else {
            continue;
        };
        let (Ok(leader), Ok(start)) = (i32::try_from(pgid), u64::try_from(start)) else {
            continue;
        };
        let tree = ProcessTree {
            leader,
            start_time: Some(start),
            cgroup: cgroup.map(Into::into),
        };
        match tree.signal(Signal::SIGHUP) {
            Ok(SignalOutcome::Delivered) => {
                report.groups_stopped.fetch_add(1, Ordering::Relaxed);
                signalled.push(tree);
            }
            Ok(SignalOutcome::PidReused) => {
                report.pid_reused.fetch_add(1, Ordering::Relaxed);
                info!(log, "recorded pid now belongs to another process; left alone";
                      "execution_id" => id, "pgid" => pgid);
            }
            Ok(SignalOutcome::NoSuchGroup) => {
                let _ = tree.remove_cgroup();
            }
            Err(e) => {
                warn!(log, "could not signal a surviving tree"; "execution_id" => id, "error" => %e)
            }
        }
    }
    info!(log, "reconciled executions of earlier runs";
          "interrupted" => report.interrupted.load(Ordering::Relaxed),
          "groups_stopped" => report.groups_stopped.load(Ordering::Relaxed),
          "pid_reused" => report.pid_reused.load(Ordering::Relaxed));
    Ok(signalled)
}

/// Removes the empty session cgroups earlier runs of this data dir left behind (a session's
/// cgroup is removed when it ends, but a shutdown or a crash can cut that short). Only names
/// whose boot id is recorded in this database are considered, so another server's cgroups are
/// never touched; one that still holds a process cannot be removed anyway (EBUSY). Blocking.
pub fn remove_leftover_cgroups(conn: &Conn, root: &CgroupRoot, boot_id: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(root.dir()) else {
        return 0;
    };
    let ours = |boot: &str| {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM executions WHERE boot_id = ?1)",
            [boot],
            |r| r.get::<_, bool>(0),
        )
        .unwrap_or(false)
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let Some((boot, _execution)) = name.to_str().and_then(|n| n.rsplit_once('-')) else {
                return false;
            };
            boot != boot_id && ours(boot) && std::fs::remove_dir(entry.path()).is_ok()
        })
        .count()
}

/// Finishes the stop of trees that got SIGHUP: SIGTERM after 2 s, SIGKILL after 2 s more, each
/// only to what is left (start-time checked), then removes their emptied cgroups.
pub async fn escalate(trees: Vec<ProcessTree>, log: Logger) {
    // Every stopped tree's cgroup goes at the end, including those that ended on SIGHUP or SIGTERM
    // (they leave `left` early, and the start-up sweep ran while they still had processes).
    let with_cgroup: Vec<ProcessTree> = trees
        .iter()
        .filter(|t| t.cgroup.is_some())
        .cloned()
        .collect();
    let mut left = trees;
    let mut sent = Signal::SIGHUP;
    while let Some(signal) = next_stop_signal(sent).filter(|_| !left.is_empty()) {
        sent = signal;
        tokio::time::sleep(STOP_STEP).await;
        let step = std::mem::take(&mut left);
        left = tokio::task::spawn_blocking(move || {
            step.into_iter()
                .filter(|tree| matches!(tree.signal(signal), Ok(SignalOutcome::Delivered)))
                .collect()
        })
        .await
        .unwrap_or_default();
        if signal == Signal::SIGKILL && !left.is_empty() {
            warn!(log, "process trees of an earlier run got SIGKILL"; "trees" => left.len());
        }
    }
    for tree in &with_cgroup {
        if let Err(e) = tree.kill_and_remove().await {
            warn!(log, "removing an earlier run's cgroup failed"; "error" => %e);
        }
    }
}
