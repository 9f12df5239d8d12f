//! What every request handler and actor may reach: settings, handles to actors, counters.
//!
//! Everything here is cheap to clone (handles and `Arc`s). Nobody holds a lock across an
//! `.await`: the handles hand out actor refs and counters, not guarded state.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use slog::Logger;
use tokio::sync::watch;

use crate::actors::db::Db;
use crate::actors::events::Events;
use crate::actors::sessions::Sessions;
use crate::auth::limiter::LoginLimiter;
use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub events: Events,
    /// The sessions supervisor: terminal and agent sessions.
    pub sessions: Sessions,
    /// The run queue: headless agent runs.
    pub runs: crate::actors::runs::Runs,
    pub log: Logger,
    pub metrics: Arc<Metrics>,
    /// This server run's id, recorded on every execution it starts (startup reconciliation).
    pub boot_id: Arc<str>,
    /// What startup reconciliation found (detailed health).
    pub reconciliation: Arc<crate::reconcile::Reconciliation>,
    /// What the reaper has done (detailed health, metrics).
    pub reaper: Arc<crate::actors::reaper::ReaperStats>,
    pub started_at: Instant,
    /// Turns true when shutdown begins: WebSockets close with 1001, loops end.
    pub shutdown: watch::Receiver<bool>,
    /// Open WebSocket tasks; shutdown waits for them to close.
    pub sockets: Arc<Tracker>,
    /// Prometheus counters bumped while serving (`/metrics`).
    pub http_metrics: Arc<crate::metrics::HttpMetrics>,
    /// Failed logins per client address (bounded).
    pub login_limiter: Arc<LoginLimiter>,
    /// Attention and permission approvals of agents (issue 16).
    pub approvals: crate::approvals::Approvals,
    /// Web Push and the webhook: the VAPID key and the queue to the sender (`src/push/`).
    pub push: crate::push::Notifier,
}

/// Live counters for health and metrics.
#[derive(Default)]
pub struct Metrics {
    pub ws_events: AtomicUsize,
    pub ws_terminals: AtomicUsize,
    pub ws_agents: AtomicUsize,
    /// `/api/executions/{id}/events` sockets (a run's parsed events).
    pub ws_run_events: AtomicUsize,
    pub sessions_terminals: AtomicUsize,
    pub sessions_agents: AtomicUsize,
    pub log_records_dropped: Arc<AtomicU64>,
    /// Bytes read from every session's PTY (`pty_output_bytes_total`).
    pub pty_output_bytes: Arc<AtomicU64>,
}

/// Counts a live connection of one kind for as long as it is held.
pub struct Gauge<'a>(&'a AtomicUsize);

impl<'a> Gauge<'a> {
    pub fn hold(counter: &'a AtomicUsize) -> Gauge<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        Gauge(counter)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Long-lived connection tasks (WebSockets) still running, so shutdown can wait until each one
/// has sent its close frame — completion is seen, not guessed with a sleep.
#[derive(Default)]
pub struct Tracker {
    open: AtomicUsize,
    idle: tokio::sync::Notify,
}

pub struct TrackerGuard(Arc<Tracker>);

impl Tracker {
    pub fn hold(self: &Arc<Self>) -> TrackerGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        TrackerGuard(self.clone())
    }

    /// Resolves once no guard is held.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl AppState {
    /// A logger for one request: every line it writes carries the request id.
    pub fn request_log(&self, request_id: &str) -> Logger {
        self.log
            .new(slog::o!("request_id" => request_id.to_string()))
    }
}

/// Resolves when shutdown has begun (the flag turned true, or its sender is gone).
pub async fn shutting_down(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, inside this future.
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}
