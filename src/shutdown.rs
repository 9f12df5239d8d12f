//! The last resort of a shutdown: when the grace runs out or a second SIGTERM/SIGINT arrives,
//! every process group this run still owns gets SIGKILL and every execution of this boot still
//! `running` becomes `interrupted` — so the process can exit 0 with every record true and no
//! child left, even if an actor is stuck.
//!
//! The sessions supervisor registers each live session's group here when it starts one and
//! removes it when the session's end is recorded; a std mutex guards the map, held only for the
//! insert, the remove or the copy (never across an `.await`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nix::sys::signal::Signal;
use slog::{info, warn, Logger};

use crate::db::{executions, Pool};
use crate::pty;

/// Recorded on executions the last resort ended.
pub const REASON_SHUTDOWN_FORCED: &str =
    "server shut down: the session was killed when the shutdown grace ran out";

/// Process groups of this run's live sessions: execution id → (pgid, leader start time).
#[derive(Debug, Default)]
pub struct LiveGroups(Mutex<HashMap<i64, (i32, Option<u64>)>>);

impl LiveGroups {
    pub fn insert(&self, execution_id: i64, pgid: i32, start_time: Option<u64>) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(execution_id, (pgid, start_time));
        }
    }

    pub fn remove(&self, execution_id: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&execution_id);
        }
    }

    fn snapshot(&self) -> Vec<(i32, Option<u64>)> {
        self.0
            .lock()
            .map(|map| map.values().copied().collect())
            .unwrap_or_default()
    }
}

/// What the last resort needs, taken from the server before its graceful shutdown begins.
#[derive(Clone)]
pub struct LastResort {
    pub groups: Arc<LiveGroups>,
    pub pool: Pool,
    pub boot_id: Arc<str>,
    pub log: Logger,
}

impl LastResort {
    /// SIGKILLs what is left and records it. Blocking work runs on a blocking thread; calling
    /// it again (or after a clean shutdown) is harmless: dead groups and recorded rows are skipped.
    pub async fn run(&self) {
        let this = self.clone();
        let done = tokio::task::spawn_blocking(move || this.run_blocking()).await;
        if let Err(e) = done {
            warn!(self.log, "last-resort shutdown step failed"; "error" => %e);
        }
    }

    fn run_blocking(&self) {
        // Recorded first: a session whose child dies of the SIGKILL below must not record its
        // end as `failed` (the first outcome recorded is the one kept).
        let marked = self
            .pool
            .get()
            .map_err(crate::db::DbError::from)
            .and_then(|c| executions::interrupt_boot(&c, &self.boot_id, REASON_SHUTDOWN_FORCED));
        let mut killed = 0u64;
        for (pgid, start) in self.groups.snapshot() {
            let outcome = match start {
                Some(start) => pty::signal_recorded_group(pgid, start, Signal::SIGKILL),
                None => pty::signal_group(pgid, Signal::SIGKILL),
            };
            if matches!(outcome, Ok(pty::SignalOutcome::Delivered)) {
                killed += 1;
            }
        }
        match marked {
            Ok(n) if killed + n as u64 > 0 => {
                warn!(self.log, "shutdown: killed what was left"; "groups" => killed, "executions" => n)
            }
            Ok(_) => info!(self.log, "shutdown: nothing was left to kill"),
            Err(e) => {
                warn!(self.log, "shutdown: recording interrupted executions failed"; "error" => %e)
            }
        }
    }
}
