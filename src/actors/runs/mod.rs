//! The run queue: headless agent runs, at most `max_concurrent_runs` at once.
//!
//! ```text
//! Run queue (this actor, child of the root supervisor)
//!   └── RunActor × ≤ max_concurrent_runs   one per running run (run.rs), never restarted
//! ```
//!
//! `Enqueue` records the execution (`agent_run`, `pending`) and queues it; runs start highest
//! task priority first, then oldest. Queued runs outlive the server: shutdown leaves them
//! `pending`, and the next start takes them over (`adopt`) and runs them. `Cancel` takes a pending run out of the queue (recorded
//! `cancelled`) or starts a running one's stop sequence. A run actor that dies before recording
//! its outcome is recorded `failed` here (its state's Drop has killed the group). On reload
//! (`HandOver`) every running run is handed to the next image, which takes it over (`adopt.rs`).

mod adopt;
mod decide;
mod outcome;
mod pipes;
mod run;
pub mod stream;
mod task_status;
mod worktree;

use crate::actors::events::EventType;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use slog::{error, info, Logger};

pub use decide::{prompt_for, RunAsk, RunRequest};
use run::{move_task, RunActor, RunArgs, RunIo, RunMsg, StopReason};
pub use run::{RunDeps, RunHandover, RunPosition};

use crate::actors::slot::ActorSlot;
use crate::db::executions::{
    self, ExecutionStatus, ExecutionSummary, ExecutionType, Finish, NewExecution,
};
use crate::db::tasks::TaskStatus;
use crate::db::DbError;
use crate::pty::{self, PtyCommand, WindowSize};

/// Runs waiting at most; more is 429 (each holds its prompt in memory).
const QUEUED_MAX: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0} runs are queued, the most allowed; try again later")]
    QueueFull(usize),
    #[error("execution {0} is not a pending or running agent run")]
    NotActive(i64),
    #[error("the run queue is restarting; try again")]
    Unavailable,
    #[error("no task with id {0}")]
    TaskNotFound(i64),
    #[error("task {0} already has a pending or running execution")]
    TaskBusy(i64),
    #[error("{}", .0.message)]
    Invalid(crate::error::ApiError),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub enum RunsMsg {
    /// Decide whether and how the task runs (`decide.rs`), then record and queue it.
    Enqueue(
        Box<RunAsk>,
        RpcReplyPort<Result<ExecutionSummary, RunError>>,
    ),
    Cancel(i64, RpcReplyPort<Result<(), RunError>>),
    /// From a run actor: its outcome is recorded.
    Finished(i64),
    /// Shutdown: stop every run (recorded `interrupted`), then reply.
    StopAll(RpcReplyPort<()>),
    /// Reload: start no more runs, hand every running one over (those that end meanwhile are
    /// recorded here), reply with them.
    HandOver(RpcReplyPort<Vec<RunHandover>>),
}

#[derive(Clone)]
pub struct RunsArgs {
    pub deps: RunDeps,
    pub boot_id: Arc<str>,
    pub max_concurrent: usize,
    /// Where a run may work (`allowed_roots`).
    pub allowed_roots: Vec<PathBuf>,
    /// Where isolated runs get their git worktrees (`<data_dir>/worktrees`).
    pub worktrees_dir: PathBuf,
    /// Runs handed over by the image before a reload, taken over at start (once).
    pub inherited: Arc<Mutex<Vec<crate::handover::InheritedRun>>>,
}

struct Queued {
    execution_id: i64,
    order: u64,
    request: RunRequest,
}

pub struct RunsState {
    args: RunsArgs,
    log: Logger,
    pending: Vec<Queued>,
    next_order: u64,
    running: HashMap<i64, ActorRef<RunMsg>>,
    stopping: bool,
}

pub struct RunQueue;

impl RunsState {
    async fn enqueue(&mut self, mut request: RunRequest) -> Result<ExecutionSummary, RunError> {
        if self.pending.len() >= QUEUED_MAX {
            return Err(RunError::QueueFull(self.pending.len()));
        }
        let new = NewExecution {
            kind: ExecutionType::AgentRun,
            status: ExecutionStatus::Pending,
            task_id: Some(request.task_id),
            agent_id: Some(request.agent_id),
            boot_id: self.args.boot_id.to_string(),
            session_id: None,
            cwd: Some(request.cwd.display().to_string()),
            command: request.argv.clone(),
            meta: serde_json::json!({}),
        };
        let mut row = self
            .args
            .deps
            .db
            .write(move |c| executions::insert(c, &new))
            .await?;
        self.args
            .deps
            .events
            .publish(EventType::ExecutionCreated, &row);
        if let Some(ended) = self.give_worktree(&mut row, &mut request).await? {
            return Ok(ended);
        }
        self.pending.push(Queued {
            execution_id: row.id,
            order: self.next_order,
            request,
        });
        self.next_order += 1;
        Ok(row)
    }

    /// The next run to start: highest task priority, then oldest.
    fn take_next(&mut self) -> Option<Queued> {
        let best = self
            .pending
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                a.request
                    .priority
                    .cmp(&b.request.priority)
                    .then(b.order.cmp(&a.order))
            })
            .map(|(i, _)| i)?;
        Some(self.pending.remove(best))
    }

    async fn start_ready(&mut self, me: &ActorRef<RunsMsg>) {
        while !self.stopping && self.running.len() < self.args.max_concurrent {
            let Some(next) = self.take_next() else { return };
            self.start(me, next).await;
        }
    }

    /// Records a run that ended without its actor recording it, and moves its task (if any).
    async fn record_end(
        &self,
        id: i64,
        task_id: Option<i64>,
        status: ExecutionStatus,
        reason: String,
    ) {
        let finish = Finish::without_exit(status, reason);
        let deps = &self.args.deps;
        if deps
            .lifecycle
            .record_end(id, finish, |_| Ok(()))
            .await
            .is_none()
        {
            // Already recorded by the run itself: its task was moved then.
            return;
        }
        let task_status = match status {
            ExecutionStatus::Cancelled => TaskStatus::Cancelled,
            _ => TaskStatus::Failed,
        };
        if let Some(task_id) = task_id {
            move_task(&deps.db, &deps.events, task_id, task_status).await;
        }
    }

    async fn start(&mut self, me: &ActorRef<RunsMsg>, queued: Queued) {
        let Queued {
            execution_id: id,
            request,
            ..
        } = queued;
        let deps = self.args.deps.clone();
        // Not in the recorded argv: the secret and the MCP file belong to this start only.
        let (agent, timeout) = (request.agent_id, request.approval_timeout_secs);
        let hooks = deps.approvals.prepare_run(agent, timeout).await;
        let (mut args, mut env) = (request.argv[1..].to_vec(), request.env.clone());
        if let Some(h) = &hooks {
            h.apply(&mut args, &mut env);
            deps.approvals.started(h, id, None).await;
        }
        let command = PtyCommand {
            program: request.argv[0].clone(),
            args,
            cwd: request.cwd.clone(),
            env,
            size: WindowSize { cols: 80, rows: 24 },
            cgroup: None,
            caps: crate::pty::Caps::default(),
        };
        let spawned = match deps.lifecycle.launch(id, command, pty::spawn_piped).await {
            Ok(s) => s,
            Err(e) => {
                if let Some(h) = hooks {
                    deps.approvals.ended(h, Some(id)).await;
                }
                // Recorded `failed` by the launch; the task follows.
                error!(self.log, "could not start the agent"; "execution_id" => id, "error" => %e);
                move_task(&deps.db, &deps.events, request.task_id, TaskStatus::Failed).await;
                return;
            }
        };
        let pid = spawned.child.pid();
        move_task(&deps.db, &deps.events, request.task_id, TaskStatus::Running).await;
        let position = RunPosition::fresh(request.output, deps.timeout, hooks);
        let args = RunArgs {
            execution_id: id,
            task_id: request.task_id,
            io: RunIo::fresh(spawned, request.prompt),
            position,
            deps,
            queue: me.clone(),
        };
        match Actor::spawn_linked(None, RunActor, args, me.get_cell()).await {
            Ok((actor, _)) => {
                info!(self.log, "run started"; "execution_id" => id, "pid" => pid);
                self.running.insert(id, actor);
            }
            Err(e) => {
                // The args (and the child) were dropped: the group is killed.
                let reason = format!("run actor failed to start: {e}");
                self.record_end(id, Some(request.task_id), ExecutionStatus::Failed, reason)
                    .await;
            }
        }
    }

    async fn cancel(&mut self, id: i64) -> Result<(), RunError> {
        if let Some(actor) = self.running.get(&id) {
            let _ = actor.cast(RunMsg::Stop(StopReason::Cancelled));
            return Ok(());
        }
        let Some(i) = self.pending.iter().position(|q| q.execution_id == id) else {
            return Err(RunError::NotActive(id));
        };
        let queued = self.pending.remove(i);
        self.record_end(
            id,
            Some(queued.request.task_id),
            ExecutionStatus::Cancelled,
            "cancelled before it started".into(),
        )
        .await;
        Ok(())
    }
}

impl Actor for RunQueue {
    type Msg = RunsMsg;
    type State = RunsState;
    type Arguments = RunsArgs;

    async fn pre_start(
        &self,
        _me: ActorRef<RunsMsg>,
        args: RunsArgs,
    ) -> Result<RunsState, ActorProcessingErr> {
        let log = args.deps.log.new(slog::o!("actor" => "runs"));
        Ok(RunsState {
            args,
            log,
            pending: Vec::new(),
            next_order: 0,
            running: HashMap::new(),
            stopping: false,
        })
    }

    async fn post_start(
        &self,
        me: ActorRef<RunsMsg>,
        state: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        state.adopt_inherited(&me).await;
        state.adopt().await;
        state.start_ready(&me).await;
        Ok(())
    }

    async fn handle(
        &self,
        me: ActorRef<RunsMsg>,
        msg: RunsMsg,
        state: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunsMsg::Enqueue(ask, reply) => {
                let result = if state.stopping {
                    Err(RunError::Unavailable)
                } else {
                    match state.decide(*ask).await {
                        Ok(request) => state.enqueue(request).await,
                        Err(e) => Err(e),
                    }
                };
                let _ = reply.send(result);
                state.start_ready(&me).await;
            }
            RunsMsg::Cancel(id, reply) => {
                let _ = reply.send(state.cancel(id).await);
            }
            RunsMsg::Finished(id) => {
                state.running.remove(&id);
                state.start_ready(&me).await;
            }
            RunsMsg::StopAll(reply) => {
                state.stopping = true;
                for (_, actor) in state.running.drain() {
                    let _ = actor
                        .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
                        .await;
                }
                // Queued runs stay `pending` in the DB: the next start takes them over.
                let kept = std::mem::take(&mut state.pending).len();
                if kept > 0 {
                    info!(state.log, "queued runs kept for the next start"; "runs" => kept);
                }
                let _ = reply.send(());
            }
            RunsMsg::HandOver(reply) => {
                let _ = reply.send(state.hand_over().await);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<RunsMsg>,
        evt: SupervisionEvent,
        state: &mut RunsState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell.clone(), reason.clone().unwrap_or_default())
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell.clone(), err.to_string()),
            _ => return Ok(()),
        };
        let Some(id) = state
            .running
            .iter()
            .find(|(_, a)| a.get_id() == cell.get_id())
            .map(|(id, _)| *id)
        else {
            return Ok(());
        };
        // Gone without telling us it finished: record it (a no-op if it had recorded).
        state.running.remove(&id);
        error!(state.log, "run actor died"; "execution_id" => id, "reason" => &why);
        let task_id = state
            .args
            .deps
            .db
            .read(move |c| executions::get_summary(c, id))
            .await
            .ok()
            .flatten()
            .and_then(|r| r.task_id);
        if let Some(task_id) = task_id {
            state
                .record_end(
                    id,
                    Some(task_id),
                    ExecutionStatus::Failed,
                    format!("run actor failed: {why}"),
                )
                .await;
        }
        state.start_ready(&me).await;
        Ok(())
    }
}

/// The cloneable handle HTTP handlers use; the root supervisor points it at the live actor.
#[derive(Clone, Default)]
pub struct Runs {
    actor: ActorSlot<RunsMsg>,
}

impl Runs {
    pub fn set_actor(&self, actor: Option<ActorRef<RunsMsg>>) {
        self.actor.set(actor);
    }

    async fn ask<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> RunsMsg,
        timeout: Duration,
    ) -> Result<T, RunError> {
        self.actor
            .call(msg, timeout)
            .await
            .ok_or(RunError::Unavailable)
    }

    pub async fn enqueue(&self, ask: RunAsk) -> Result<ExecutionSummary, RunError> {
        self.ask(
            |r| RunsMsg::Enqueue(Box::new(ask), r),
            Duration::from_secs(30),
        )
        .await?
    }

    pub async fn cancel(&self, execution_id: i64) -> Result<(), RunError> {
        self.ask(
            |r| RunsMsg::Cancel(execution_id, r),
            Duration::from_secs(30),
        )
        .await?
    }

    pub async fn stop_all(&self, timeout: Duration) {
        let _ = self.ask(RunsMsg::StopAll, timeout).await;
    }

    /// Reload: every running run, handed over (none if the queue does not answer in time).
    pub async fn hand_over(&self, timeout: Duration) -> Vec<RunHandover> {
        self.ask(RunsMsg::HandOver, timeout)
            .await
            .unwrap_or_default()
    }
}
