//! The last resort of a shutdown: when the grace runs out or a second SIGTERM/SIGINT arrives,
//! every process tree this run still owns gets SIGKILL and every execution of this boot still
//! `running` becomes `interrupted` — so the process can exit 0 with every record true and no
//! child left, even if an actor is stuck.
//!
//! Every session and run is registered in [`LiveTrees`] when it starts and removed when its end
//! is recorded (`lifecycle.rs`), so this step reaches terminals, agent sessions and runs alike.

use std::sync::Arc;

use nix::sys::signal::Signal;
use slog::{info, warn, Logger};

use crate::db::{executions, Pool};
use crate::lifecycle::LiveTrees;
use crate::pty;

/// Recorded on executions the last resort ended.
pub const REASON_SHUTDOWN_FORCED: &str =
    "server shut down: the session was killed when the shutdown grace ran out";

/// What the last resort needs, taken from the server before its graceful shutdown begins.
#[derive(Clone)]
pub struct LastResort {
    pub trees: Arc<LiveTrees>,
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
        for tree in self.trees.snapshot() {
            if matches!(
                tree.signal(Signal::SIGKILL),
                Ok(pty::SignalOutcome::Delivered)
            ) {
                killed += 1;
            }
        }
        match marked {
            Ok(n) if killed + n as u64 > 0 => {
                warn!(self.log, "shutdown: killed what was left"; "sessions" => killed, "executions" => n)
            }
            Ok(_) => info!(self.log, "shutdown: nothing was left to kill"),
            Err(e) => {
                warn!(self.log, "shutdown: recording interrupted executions failed"; "error" => %e)
            }
        }
    }
}
