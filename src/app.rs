//! A running server: start it (DB, actors, listener), stop it gracefully.
//!
//! Used by `main` and by the integration tests, which start servers in-process on 127.0.0.1:0.
//! Start order: open and migrate the DB (blocking work, off the runtime), start the supervision
//! tree, bind, serve. Shutdown order: stop accepting, tell every WebSocket (1001), let in-flight
//! requests finish within the grace, stop the actors (DB last), checkpoint the WAL.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorRef};
use slog::{info, warn, Logger};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::actors::db::{Db, DbArgs};
use crate::actors::events::Events;
use crate::actors::reaper::{ReaperArgs, ReaperStats};
use crate::actors::sessions::{Sessions, SessionsArgs};
use crate::actors::supervisor::{RootArgs, RootMsg, RootSupervisor};
use crate::actors::terminal::SessionDeps;
use crate::backup::DataDirLock;
use crate::config::Config;
use crate::db::{self, DbError};
use crate::handover::{Inherited, Unreadable};
use crate::lifecycle::{Lifecycle, LiveTrees};
use crate::reconcile::{escalate, reconcile_because, remove_leftover_cgroups, Reconciliation};
use crate::shutdown::LastResort;
use crate::state::{AppState, Metrics, Tracker};

mod reload;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database {path}: {source}")]
    Db { path: String, source: DbError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the supervision tree: {0}")]
    Actors(String),
    #[error("data dir {path}: {source}")]
    DataDir {
        path: String,
        source: crate::backup::BackupError,
    },
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot create the first admin token: {0}")]
    Auth(#[from] crate::auth::AuthError),
    #[error("notifications: {0}")]
    Push(#[from] crate::push::PushError),
    #[error("cannot start the session threads: {0}")]
    Lanes(std::io::Error),
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The admin token created on the very first start (no token existed): shown once by `main`
    /// on stderr, never logged. `None` on every later start.
    pub first_admin_token: Option<String>,
    shutdown_tx: watch::Sender<bool>,
    serve_task: JoinHandle<()>,
    root: ActorRef<RootMsg>,
    root_task: JoinHandle<()>,
    last_resort: LastResort,
    /// A second fd for the listening socket: it keeps listening (connections wait in the
    /// backlog) after the accept loop stops, and is what a reload hands to the next image.
    listener_keep: Option<std::os::fd::OwnedFd>,
    /// One server per data dir: a second one would fight over the same sessions and rows.
    _lock: DataDirLock,
}

/// Opens the database and applies the schema. Blocking: run it off the runtime.
pub fn open_database(config: &Config) -> Result<db::Pool, DbError> {
    let pool = db::open_pool(
        &config.db_path(),
        config.db_pool_size,
        config.db_checkout_timeout,
    )?;
    let mut conn = pool.get()?;
    db::migrate::migrate(&mut conn)?;
    Ok(pool)
}

/// Where session cgroups go (`session_cgroups`). `auto` falls back to running without cgroups,
/// saying why in the log; a directory the setting names must work, or the server does not start.
fn session_cgroups(
    config: &Config,
    log: &Logger,
) -> Result<Option<crate::pty::CgroupRoot>, StartError> {
    use crate::config::CgroupSetting;
    match crate::pty::CgroupRoot::discover(&config.session_cgroups) {
        Ok(Some(root)) => {
            info!(log, "sessions run in cgroups"; "dir" => %root.dir().display());
            Ok(Some(root))
        }
        Ok(None) => {
            info!(log, "sessions run without cgroups (session_cgroups = off)");
            Ok(None)
        }
        Err(why) if config.session_cgroups == CgroupSetting::Auto => {
            warn!(log, "sessions run without cgroups: a process that calls setsid() itself can outlive its session";
                  "why" => &why);
            Ok(None)
        }
        Err(why) => Err(StartError::Config(crate::config::ConfigError {
            setting: "session_cgroups (CM_SESSION_CGROUPS)".into(),
            value: format!("{:?}", config.session_cgroups),
            allowed: why,
        })),
    }
}

impl Server {
    /// Starts a server; `log_dropped` is the log drain's drop counter (for health).
    pub async fn start(
        config: Config,
        log: Logger,
        log_dropped: Arc<AtomicU64>,
    ) -> Result<Server, StartError> {
        Self::start_with(config, log, log_dropped, None).await
    }

    /// Starts a server that continues the one before a reload when `inherited` is set: its
    /// listening socket, boot id and sessions (`src/handover/`). A record that could not be
    /// read stops the sessions it named (reconciled `interrupted`, with that reason).
    pub async fn start_with(
        config: Config,
        log: Logger,
        log_dropped: Arc<AtomicU64>,
        inherited: Option<Result<Inherited, Unreadable>>,
    ) -> Result<Server, StartError> {
        let mut continued = crate::handover::Continued::new(inherited);
        let started_at = Instant::now();
        config.check_auth_binding()?;
        let config = Arc::new(config);
        let db_path = config.db_path().display().to_string();
        let lock = DataDirLock::try_acquire(&config.data_dir, "starting another on it").map_err(
            |source| StartError::DataDir {
                path: config.data_dir.display().to_string(),
                source,
            },
        )?;
        crate::permissions::warn_if_loose(&config, &log);
        let boot_id: Arc<str> = match &continued.inherited {
            Some(i) => i.record.boot_id.clone().into(),
            None => uuid::Uuid::new_v4().to_string().into(),
        };
        let reason = continued.reconcile_reason();
        let reconciliation = Arc::new(Reconciliation::default());
        let cgroups = session_cgroups(&config, &log)?;
        // Open, migrate and reconcile before anything serves: no request may see a record of
        // an earlier run that still claims to be running.
        let (pool, surviving_groups, recovered) = {
            let config = config.clone();
            let boot_id = boot_id.clone();
            let report = reconciliation.clone();
            let log = log.clone();
            let cgroups = cgroups.clone();
            tokio::task::spawn_blocking(move || -> Result<_, DbError> {
                let pool = open_database(&config)?;
                let mut conn = pool.get()?;
                // Sessions kept in systemd's fd store across a crash: before the reconciliation.
                let recovered = crate::handover::crash::sort(&conn, &boot_id, &log)?;
                let groups = reconcile_because(&mut conn, &boot_id, &reason, &report, &log)?;
                if let Some(root) = &cgroups {
                    let removed = remove_leftover_cgroups(&conn, root, &boot_id);
                    info!(log, "removed empty cgroups of earlier runs"; "cgroups" => removed);
                }
                drop(conn);
                Ok((pool, groups, recovered))
            })
            .await
            .map_err(|e| StartError::Actors(e.to_string()))?
            .map_err(|source| StartError::Db {
                path: db_path.clone(),
                source,
            })?
        };
        continued.reap_unadopted().await;
        let inherited_runs = (continued.inherited.as_mut())
            .map(|i| std::mem::take(&mut i.runs))
            .unwrap_or_default();
        tokio::spawn(escalate(surviving_groups, log.clone()));
        let first_admin_token = if config.insecure_no_auth {
            None
        } else {
            let pool = pool.clone();
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(DbError::from)?;
                crate::auth::ensure_first_admin(&mut conn)
            })
            .await
            .map_err(|e| StartError::Actors(e.to_string()))??
        };
        if let Some(t) = &first_admin_token {
            info!(log, "first start: admin token created"; "token_id" => t.id);
        }
        if config.insecure_no_auth {
            warn!(
                log,
                "authentication is disabled (--insecure-no-auth); loopback only"
            );
        }

        let checkout_timeouts = Arc::new(AtomicU64::new(0));
        let db = Db::new(
            pool.clone(),
            config.db_checkout_timeout,
            checkout_timeouts.clone(),
        );
        let events = Events::default();
        let sessions = Sessions::default();
        let runs = crate::actors::runs::Runs::default();
        let metrics = Arc::new(Metrics {
            log_records_dropped: log_dropped,
            ..Metrics::default()
        });
        let live_trees = Arc::new(LiveTrees::default());
        let last_resort = LastResort {
            trees: live_trees.clone(),
            pool: pool.clone(),
            boot_id: boot_id.clone(),
            log: log.clone(),
        };
        let lifecycle = Lifecycle {
            db: db.clone(),
            events: events.clone(),
            log: log.clone(),
            boot_id: boot_id.clone(),
            cgroups,
            live: live_trees,
        };
        let approvals = crate::approvals::Approvals::new(
            db.clone(),
            events.clone(),
            log.clone(),
            &config.data_dir,
            config.hook_program.clone(),
        );
        let lanes = crate::actors::lanes::Lanes::start(config.session_threads)
            .map_err(StartError::Lanes)?;
        let sessions_args = SessionsArgs {
            deps: Arc::new(SessionDeps {
                db: db.clone(),
                events: events.clone(),
                log: log.clone(),
                scrollback_bytes: config.scrollback_bytes,
                max_viewers: config.max_viewers,
                viewer_queue_bytes: config.viewer_queue_bytes,
                output_bytes: metrics.pty_output_bytes.clone(),
                lifecycle: lifecycle.clone(),
                lanes: Arc::new(lanes),
            }),
            metrics: metrics.clone(),
            boot_id: boot_id.clone(),
            max_sessions: config.max_sessions,
            approvals: approvals.clone(),
        };
        let reaper = Arc::new(ReaperStats::default());
        let reaper_args = ReaperArgs {
            sessions: sessions.clone(),
            db: db.clone(),
            stats: reaper.clone(),
            interval: config.reap_interval,
            exited_retention: config.exited_retention,
            execution_events_max: config.execution_events_max,
            worktree_retention: config.worktree_retention,
            worktrees_dir: crate::isolation::worktrees_dir(&config.data_dir),
            log: log.new(slog::o!("actor" => "reaper")),
        };
        let (root, root_task) = Actor::spawn(
            None,
            RootSupervisor,
            RootArgs {
                db: db.clone(),
                db_args: DbArgs {
                    pool,
                    checkout_timeout: config.db_checkout_timeout,
                    checkout_timeouts,
                },
                events: events.clone(),
                events_queue_len: config.events_queue_len,
                sessions: sessions.clone(),
                sessions_args,
                reaper_args,
                runs: runs.clone(),
                runs_args: crate::actors::runs::RunsArgs {
                    deps: crate::actors::runs::RunDeps {
                        db: db.clone(),
                        events: events.clone(),
                        log: log.clone(),
                        timeout: config.run_timeout,
                        events_max: config.run_events_max,
                        lifecycle: lifecycle.clone(),
                        approvals: approvals.clone(),
                    },
                    boot_id: boot_id.clone(),
                    max_concurrent: config.max_concurrent_runs,
                    allowed_roots: config.allowed_roots.clone(),
                    worktrees_dir: crate::isolation::worktrees_dir(&config.data_dir),
                    inherited: Arc::new(std::sync::Mutex::new(inherited_runs)),
                },
                log: log.new(slog::o!("actor" => "root")),
            },
        )
        .await
        .map_err(|e| StartError::Actors(e.to_string()))?;

        let (listener, listener_keep) =
            continued
                .listener(config.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.bind,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;

        let push = {
            let (config, db, log) = (
                config.clone(),
                db.clone(),
                log.new(slog::o!("task" => "push")),
            );
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                crate::push::Notifier::start(&config, db, &runtime, log)
            })
            .await
            .map_err(|e| StartError::Actors(e.to_string()))??
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // The hook channel, then the requests an earlier run left pending (their askers
        // reconnect with their keys, or are gone and the request is closed).
        crate::approvals::channel::serve(approvals.clone(), shutdown_rx.clone())
            .await
            .map_err(|e| StartError::Actors(format!("hook channel: {e}")))?;
        approvals.resume().await;
        push.watch_events(events.clone(), shutdown_rx.clone());
        let state = AppState {
            config: config.clone(),
            db,
            events,
            sessions,
            runs,
            log: log.clone(),
            metrics,
            boot_id,
            reconciliation,
            reaper,
            started_at,
            shutdown: shutdown_rx.clone(),
            sockets: Arc::new(Tracker::default()),
            http_metrics: Arc::new(crate::metrics::HttpMetrics::new()),
            login_limiter: Arc::default(),
            approvals,
            push,
        };
        crate::handover::crash::adopt(&state, recovered).await;
        if let Some(i) = continued.inherited.take() {
            crate::handover::adopt(&state, i).await;
        } else if let Some(why) = &continued.unreadable {
            crate::handover::record_unreadable(&state, why);
        }
        let routes = crate::http::routes(&state);
        let serve_task = tokio::spawn(crate::http::server::serve(
            listener,
            routes,
            log.clone(),
            state.http_metrics.clone(),
            crate::http::connections::ConnectionGate::new(
                crate::http::connections::ConnectionLimits::from_config(&config, &log),
            ),
            shutdown_rx,
            config.shutdown_grace,
        ));
        info!(log, "listening"; "addr" => %addr, "boot_id" => &*state.boot_id,
              "startup_ms" => started_at.elapsed().as_millis() as u64);
        Ok(Server {
            addr,
            state,
            first_admin_token: first_admin_token.map(|t| t.secret),
            shutdown_tx,
            serve_task,
            root,
            root_task,
            last_resort,
            listener_keep: Some(listener_keep),
            _lock: lock,
        })
    }

    /// What a second SIGTERM runs while [`Server::shutdown`] is still going (`shutdown.rs`).
    pub fn last_resort(&self) -> LastResort {
        self.last_resort.clone()
    }

    /// Graceful shutdown, bounded by the configured grace. Returns when everything has stopped
    /// or the grace ran out; then whatever is left is killed and recorded (the last resort).
    pub async fn shutdown(mut self) {
        let deadline = self.stop_serving().await;
        self.stop_actors(deadline).await;
    }

    /// Stops accepting, closes every WebSocket and lets in-flight requests finish; returns the
    /// deadline of the grace.
    async fn stop_serving(&mut self) -> tokio::time::Instant {
        let log = self.state.log.clone();
        let grace = self.state.config.shutdown_grace;
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.shutdown_tx.send(true);
        info!(log, "shutting down"; "grace_s" => grace.as_secs());

        let sockets = self.state.sockets.clone();
        if tokio::time::timeout_at(deadline, sockets.wait_idle())
            .await
            .is_err()
        {
            warn!(log, "some WebSockets did not close within the grace");
        }
        if tokio::time::timeout_at(deadline, &mut self.serve_task)
            .await
            .is_err()
        {
            warn!(log, "HTTP server did not drain within the grace");
        }
        deadline
    }

    /// Stops the actors (DB last), runs the last resort, checkpoints the WAL.
    async fn stop_actors(self, deadline: tokio::time::Instant) {
        let log = self.state.log.clone();
        let stop = self.root.call(RootMsg::StopChildren, None);
        if tokio::time::timeout_at(deadline, stop).await.is_err() {
            warn!(log, "actors did not stop within the grace");
        }
        self.root.stop(None);
        let _ = tokio::time::timeout_at(deadline, self.root_task).await;
        // Normally a no-op: every session recorded its own end. After a grace that ran out, it
        // kills and records what is left.
        self.last_resort.run().await;

        let pool = self.state.db.pool().clone();
        let checkpoint = tokio::task::spawn_blocking(move || -> Result<(), DbError> {
            let conn = pool.get()?;
            db::checkpoint(&conn)
        });
        match tokio::time::timeout_at(deadline, checkpoint).await {
            Ok(Ok(Ok(()))) => info!(log, "database checkpointed"),
            Ok(Ok(Err(e))) => warn!(log, "WAL checkpoint failed"; "error" => %e),
            _ => warn!(log, "WAL checkpoint did not finish within the grace"),
        }
        info!(log, "stopped");
    }
}
