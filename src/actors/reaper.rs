//! The reaper: a periodic pass that keeps a long-running server tidy (DESIGN "Shape").
//!
//! Every `reap_interval` it asks the sessions supervisor to stop idle sessions (recorded
//! `cancelled`, reason `idle`) and to forget sessions exited longer than `exited_retention`, then
//! prunes `execution_events` beyond the per-execution cap. It never blocks the runtime (the DB
//! work runs on the DB actor's blocking threads) and never waits on a session actor: the
//! supervisor decides from shared clocks and casts the stops; if the supervisor itself does not
//! answer within [`SESSIONS_TIMEOUT`], that part of the pass is skipped and counted.
//!
//! A ticker task drives the passes with `call`, so a slow pass delays the next one instead of
//! piling ticks up in the mailbox.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use slog::{info, warn, Logger};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::db::Db;
use super::sessions::{ReapPolicy, Sessions};
use crate::db::executions;
use crate::isolation;

/// How long a pass waits for the sessions supervisor (busy creating a session, say) before
/// skipping the sessions part until the next tick.
const SESSIONS_TIMEOUT: Duration = Duration::from_secs(1);

pub enum ReaperMsg {
    /// Run one pass; replies when it is done.
    Tick(RpcReplyPort<()>),
}

/// What the reaper has done, for detailed health and `/metrics`.
#[derive(Debug, Default)]
pub struct ReaperStats {
    pub runs: AtomicU64,
    /// Unix ms of the end of the last pass; 0 = none yet.
    pub last_run_at_ms: AtomicU64,
    pub last_duration_us: AtomicU64,
    pub reaped_idle: AtomicU64,
    pub reaped_exited: AtomicU64,
    pub events_pruned: AtomicU64,
    /// Passes whose sessions part was skipped because the supervisor did not answer in time.
    pub skipped: AtomicU64,
    /// Run worktrees on disk after the last pass, and the bytes they use (measured at most
    /// every [`WORKTREE_DISK_EVERY`]).
    pub worktrees_live: AtomicU64,
    pub worktrees_disk_bytes: AtomicU64,
    pub worktrees_removed: AtomicU64,
}

/// Walking every worktree's files costs disk reads: measure their size this often at most.
const WORKTREE_DISK_EVERY: Duration = Duration::from_secs(600);

/// The `worktrees` object of detailed health.
#[derive(Debug, Serialize)]
pub struct WorktreesHealth {
    pub count: u64,
    pub disk_bytes: u64,
    pub removed_total: u64,
}

/// The `reaper` object of detailed health.
#[derive(Debug, Serialize)]
pub struct ReaperHealth {
    pub last_run_at: Option<String>,
    pub runs: u64,
    /// Sessions reaped (idle stops + exited sessions dropped from memory).
    pub reaped_total: u64,
    pub reaped_idle_total: u64,
    pub reaped_exited_total: u64,
    pub events_pruned_total: u64,
    pub skipped_total: u64,
    pub last_duration_ms: f64,
}

impl ReaperStats {
    pub fn worktrees(&self) -> WorktreesHealth {
        WorktreesHealth {
            count: self.worktrees_live.load(Ordering::Relaxed),
            disk_bytes: self.worktrees_disk_bytes.load(Ordering::Relaxed),
            removed_total: self.worktrees_removed.load(Ordering::Relaxed),
        }
    }

    pub fn health(&self) -> ReaperHealth {
        let at = self.last_run_at_ms.load(Ordering::Relaxed);
        let (idle, exited) = (
            self.reaped_idle.load(Ordering::Relaxed),
            self.reaped_exited.load(Ordering::Relaxed),
        );
        ReaperHealth {
            last_run_at: (at > 0).then(|| {
                let t = time::OffsetDateTime::UNIX_EPOCH + Duration::from_millis(at);
                crate::time::format_ts(t)
            }),
            runs: self.runs.load(Ordering::Relaxed),
            reaped_total: idle + exited,
            reaped_idle_total: idle,
            reaped_exited_total: exited,
            events_pruned_total: self.events_pruned.load(Ordering::Relaxed),
            skipped_total: self.skipped.load(Ordering::Relaxed),
            last_duration_ms: self.last_duration_us.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

#[derive(Clone)]
pub struct ReaperArgs {
    pub sessions: Sessions,
    pub db: Db,
    pub stats: Arc<ReaperStats>,
    pub interval: Duration,
    pub exited_retention: Duration,
    pub execution_events_max: u64,
    /// `None`: run worktrees are removed only after merge or discard.
    pub worktree_retention: Option<Duration>,
    pub worktrees_dir: PathBuf,
    pub log: Logger,
}

pub struct ReaperState {
    args: ReaperArgs,
    ticker: JoinHandle<()>,
    /// When worktree disk use was last measured, and how many there were then.
    disk_measured: Option<(Instant, u64)>,
    /// Worktrees whose failed removal was logged already (logged once, retried every pass).
    worktrees_warned: std::collections::HashSet<i64>,
}

pub struct Reaper;

impl Actor for Reaper {
    type Msg = ReaperMsg;
    type State = ReaperState;
    type Arguments = ReaperArgs;

    async fn pre_start(
        &self,
        me: ActorRef<ReaperMsg>,
        args: ReaperArgs,
    ) -> Result<ReaperState, ActorProcessingErr> {
        let interval = args.interval;
        let ticker = tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if me.call(ReaperMsg::Tick, None).await.is_err() {
                    return;
                }
            }
        });
        info!(args.log, "reaper started"; "interval_s" => interval.as_secs());
        Ok(ReaperState {
            args,
            ticker,
            disk_measured: None,
            worktrees_warned: Default::default(),
        })
    }

    async fn handle(
        &self,
        _me: ActorRef<ReaperMsg>,
        msg: ReaperMsg,
        state: &mut ReaperState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ReaperMsg::Tick(reply) => {
                state.pass().await;
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _me: ActorRef<ReaperMsg>,
        state: &mut ReaperState,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        Ok(())
    }
}

impl ReaperState {
    async fn worktrees(&mut self) {
        let a = &self.args;
        let warned = &mut self.worktrees_warned;
        let sweep =
            isolation::housekeeping::sweep(&a.db, a.worktree_retention, &a.log, warned).await;
        a.stats
            .worktrees_removed
            .fetch_add(sweep.removed, Ordering::Relaxed);
        let stale = match self.disk_measured {
            None => true,
            Some((at, count)) => count != sweep.live || at.elapsed() >= WORKTREE_DISK_EVERY,
        };
        if stale {
            let dir = a.worktrees_dir.clone();
            let bytes =
                tokio::task::spawn_blocking(move || isolation::housekeeping::disk_usage(&dir))
                    .await
                    .unwrap_or(0);
            a.stats.worktrees_disk_bytes.store(bytes, Ordering::Relaxed);
            self.disk_measured = Some((Instant::now(), sweep.live));
        }
        // After the disk usage: health never shows a new count beside the old count's bytes.
        a.stats.worktrees_live.store(sweep.live, Ordering::Relaxed);
    }

    async fn pass(&mut self) {
        let started = Instant::now();
        let a = &self.args;
        let policy = ReapPolicy {
            exited_retention: a.exited_retention,
        };
        match a.sessions.reap(policy, SESSIONS_TIMEOUT).await {
            Ok(report) => {
                a.stats
                    .reaped_idle
                    .fetch_add(report.idle, Ordering::Relaxed);
                a.stats
                    .reaped_exited
                    .fetch_add(report.exited, Ordering::Relaxed);
                if report.idle + report.exited > 0 {
                    info!(a.log, "reaped sessions"; "idle" => report.idle, "exited" => report.exited);
                }
            }
            Err(e) => {
                a.stats.skipped.fetch_add(1, Ordering::Relaxed);
                warn!(a.log, "reaper skipped the sessions this pass"; "error" => %e);
            }
        }
        let keep = a.execution_events_max;
        match a.db.write(move |c| executions::prune_events(c, keep)).await {
            Ok(0) => {}
            Ok(n) => {
                a.stats.events_pruned.fetch_add(n as u64, Ordering::Relaxed);
                info!(a.log, "pruned execution events"; "rows" => n);
            }
            Err(e) => warn!(a.log, "pruning execution events failed"; "error" => %e),
        }
        self.worktrees().await;
        let a = &self.args;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        a.stats
            .last_duration_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        a.stats.last_run_at_ms.store(now_ms, Ordering::Relaxed);
        a.stats.runs.fetch_add(1, Ordering::Relaxed);
    }
}
