//! The DB actor: the only way the server touches SQLite.
//!
//! It owns the r2d2 pool. Each request is a closure run on tokio's blocking threads, never on the
//! async runtime. Writes are serialised — the actor queues them and starts the next only when the
//! running one reports back, so SQLite never sees two writers fight over its lock — while reads
//! are dispatched at once and run in parallel, up to the pool size, even during a long write. A request that cannot get a connection within the checkout
//! timeout (counting the time it waited in the mailbox) fails at once with [`DbError::Busy`]
//! (503 `db_busy`), and the timeout is counted for health and metrics.
//!
//! Callers use the cloneable [`Db`] handle. It finds the current actor through a slot the root
//! supervisor updates when it restarts the actor, so requests made during a restart fail fast
//! with [`DbError::Unavailable`] instead of hanging.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::slot::ActorSlot;
use crate::db::{DbError, Pool};

/// A unit of work: gets a connection (or the reason there is none) and sends its own reply.
pub type DbJob = Box<dyn FnOnce(Result<&mut Connection, DbError>) + Send + 'static>;

pub enum DbMsg {
    /// Runs alongside other reads.
    Read { job: DbJob, queued_at: Instant },
    /// Runs alone: the next write starts only when this one is done.
    Write { job: DbJob, queued_at: Instant },
    /// The running write finished (sent by the actor to itself).
    WriteDone,
}

/// Writes waiting behind the running one before new writes are refused as busy. Callers give up
/// after the checkout timeout anyway; this only bounds memory under a flood.
const WRITE_QUEUE_MAX: usize = 10_000;

/// Pool numbers for health and metrics.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub in_use: u32,
    pub checkout_timeouts_total: u64,
}

/// What the actor needs to (re)start: the pool survives actor restarts.
#[derive(Clone)]
pub struct DbArgs {
    pub pool: Pool,
    pub checkout_timeout: Duration,
    pub checkout_timeouts: Arc<AtomicU64>,
}

pub struct DbActor;

pub struct DbState {
    args: DbArgs,
    writing: bool,
    writes: VecDeque<(DbJob, Instant)>,
}

impl DbActor {
    /// Starts one write on a blocking thread; its completion comes back as `WriteDone`, so the
    /// actor keeps dispatching reads while the write runs.
    fn start_write(me: &ActorRef<DbMsg>, state: &mut DbState, job: DbJob, queued_at: Instant) {
        state.writing = true;
        let args = state.args.clone();
        let running = tokio::task::spawn_blocking(move || run_job(&args, job, queued_at));
        let me = me.clone();
        tokio::spawn(async move {
            // A panic inside the job ends here; its waiter sees the reply dropped (503).
            let _ = running.await;
            let _ = me.cast(DbMsg::WriteDone);
        });
    }
}

impl Actor for DbActor {
    type Msg = DbMsg;
    type State = DbState;
    type Arguments = DbArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<DbMsg>,
        args: DbArgs,
    ) -> Result<DbState, ActorProcessingErr> {
        Ok(DbState {
            args,
            writing: false,
            writes: VecDeque::new(),
        })
    }

    async fn handle(
        &self,
        me: ActorRef<DbMsg>,
        msg: DbMsg,
        state: &mut DbState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DbMsg::Read { job, queued_at } => {
                let args = state.args.clone();
                tokio::task::spawn_blocking(move || run_job(&args, job, queued_at));
            }
            DbMsg::Write { job, queued_at } if !state.writing => {
                Self::start_write(&me, state, job, queued_at);
            }
            DbMsg::Write { job, queued_at } => {
                if state.writes.len() >= WRITE_QUEUE_MAX {
                    state.args.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
                    let timeout_ms = state.args.checkout_timeout.as_millis() as u64;
                    job(Err(DbError::Busy { timeout_ms }));
                } else {
                    state.writes.push_back((job, queued_at));
                }
            }
            DbMsg::WriteDone => {
                state.writing = false;
                if let Some((job, queued_at)) = state.writes.pop_front() {
                    Self::start_write(&me, state, job, queued_at);
                }
            }
        }
        Ok(())
    }
}

fn run_job(state: &DbArgs, job: DbJob, queued_at: Instant) {
    let remaining = state.checkout_timeout.saturating_sub(queued_at.elapsed());
    let timeout_ms = state.checkout_timeout.as_millis() as u64;
    if remaining.is_zero() {
        state.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
        return job(Err(DbError::Busy { timeout_ms }));
    }
    match state.pool.get_timeout(remaining) {
        Ok(mut conn) => job(Ok(&mut conn)),
        Err(_) => {
            state.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
            job(Err(DbError::Busy { timeout_ms }))
        }
    }
}

/// The cloneable handle every other part of the server uses.
#[derive(Clone)]
pub struct Db {
    actor: ActorSlot<DbMsg>,
    pool: Pool,
    checkout_timeout: Duration,
    checkout_timeouts: Arc<AtomicU64>,
}

/// Who decided a request's fate first: the job starting, or its caller giving up.
const JOB_WAITING: u8 = 0;
const JOB_RUNNING: u8 = 1;
const JOB_ABANDONED: u8 = 2;

impl Db {
    pub fn new(pool: Pool, checkout_timeout: Duration, checkout_timeouts: Arc<AtomicU64>) -> Db {
        Db {
            actor: ActorSlot::default(),
            pool,
            checkout_timeout,
            checkout_timeouts,
        }
    }

    /// Called by the root supervisor whenever it (re)starts the actor, or with `None` while down.
    pub fn set_actor(&self, actor: Option<ActorRef<DbMsg>>) {
        self.actor.set(actor);
    }

    pub fn actor(&self) -> Option<ActorRef<DbMsg>> {
        self.actor.get()
    }

    /// Runs `f` with a pooled connection, in parallel with other reads.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// Runs `f` with a pooled connection, after every write sent before it and before any after.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<T, E, F>(&self, f: F, write: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let Some(actor) = self.actor() else {
            return Err(DbError::Unavailable.into());
        };
        let (tx, mut rx) = oneshot::channel::<Result<T, E>>();
        // A job queued behind a long write must not run after its caller was told 503: the
        // first of "job starts" and "caller gives up" wins, and the other side respects it.
        let claim = Arc::new(AtomicU8::new(JOB_WAITING));
        let job_claim = claim.clone();
        let job: DbJob = Box::new(move |conn| {
            if job_claim
                .compare_exchange(
                    JOB_WAITING,
                    JOB_RUNNING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
            {
                return;
            }
            let result = match conn {
                Ok(conn) => f(conn),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        });
        let queued_at = Instant::now();
        let msg = if write {
            DbMsg::Write { job, queued_at }
        } else {
            DbMsg::Read { job, queued_at }
        };
        if actor.cast(msg).is_err() {
            return Err(DbError::Unavailable.into());
        }
        // The reply is dropped unanswered only if the actor died with the job queued.
        let dead = |_| Err(DbError::Unavailable.into());
        match tokio::time::timeout(self.checkout_timeout, &mut rx).await {
            Ok(reply) => reply.unwrap_or_else(dead),
            Err(_) => {
                let abandoned = claim
                    .compare_exchange(
                        JOB_WAITING,
                        JOB_ABANDONED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok();
                if abandoned {
                    self.checkout_timeouts.fetch_add(1, Ordering::Relaxed);
                    Err(DbError::Busy {
                        timeout_ms: self.checkout_timeout.as_millis() as u64,
                    }
                    .into())
                } else {
                    // It started in time: its own duration is not bounded by the checkout timeout.
                    rx.await.unwrap_or_else(dead)
                }
            }
        }
    }

    pub fn stats(&self) -> PoolStats {
        let s = self.pool.state();
        PoolStats {
            size: self.pool.max_size(),
            idle: s.idle_connections,
            in_use: s.connections.saturating_sub(s.idle_connections),
            checkout_timeouts_total: self.checkout_timeouts.load(Ordering::Relaxed),
        }
    }

    /// The pool itself, for work that must not queue behind the actor (shutdown checkpoint).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}
