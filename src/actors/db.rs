//! The DB actor: the only way the server touches SQLite.
//!
//! It owns the r2d2 pool. Each request is a closure run on tokio's blocking threads, never on the
//! async runtime. Writes are serialised — the actor awaits one write before taking the next, so
//! SQLite never sees two writers fight over its lock — while reads are started and left to run in
//! parallel, up to the pool size. A request that cannot get a connection within the checkout
//! timeout (counting the time it waited in the mailbox) fails at once with [`DbError::Busy`]
//! (503 `db_busy`), and the timeout is counted for health and metrics.
//!
//! Callers use the cloneable [`Db`] handle. It finds the current actor through a slot the root
//! supervisor updates when it restarts the actor, so requests made during a restart fail fast
//! with [`DbError::Unavailable`] instead of hanging.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::{DbError, Pool};

/// A unit of work: gets a connection (or the reason there is none) and sends its own reply.
pub type DbJob = Box<dyn FnOnce(Result<&mut Connection, DbError>) + Send + 'static>;

pub enum DbMsg {
    /// Runs alongside other reads.
    Read { job: DbJob, queued_at: Instant },
    /// Runs alone: the actor takes the next message only when it is done.
    Write { job: DbJob, queued_at: Instant },
}

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

impl Actor for DbActor {
    type Msg = DbMsg;
    type State = DbArgs;
    type Arguments = DbArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<DbMsg>,
        args: DbArgs,
    ) -> Result<DbArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _me: ActorRef<DbMsg>,
        msg: DbMsg,
        state: &mut DbArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DbMsg::Read { job, queued_at } => {
                let state = state.clone();
                tokio::task::spawn_blocking(move || run_job(&state, job, queued_at));
            }
            DbMsg::Write { job, queued_at } => {
                let state = state.clone();
                // A panic inside the job is caught by the JoinHandle; the waiter sees its reply
                // dropped and gets `Unavailable`. The actor itself keeps serving.
                let _ = tokio::task::spawn_blocking(move || run_job(&state, job, queued_at)).await;
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
    actor: Arc<RwLock<Option<ActorRef<DbMsg>>>>,
    pool: Pool,
    checkout_timeouts: Arc<AtomicU64>,
}

impl Db {
    pub fn new(pool: Pool, checkout_timeouts: Arc<AtomicU64>) -> Db {
        Db {
            actor: Arc::new(RwLock::new(None)),
            pool,
            checkout_timeouts,
        }
    }

    /// Called by the root supervisor whenever it (re)starts the actor, or with `None` while down.
    pub fn set_actor(&self, actor: Option<ActorRef<DbMsg>>) {
        if let Ok(mut slot) = self.actor.write() {
            *slot = actor;
        }
    }

    pub fn actor(&self) -> Option<ActorRef<DbMsg>> {
        self.actor.read().ok().and_then(|slot| slot.clone())
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
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: DbJob = Box::new(move |conn| {
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
        rx.await
            .unwrap_or_else(|_| Err(DbError::Unavailable.into()))
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
