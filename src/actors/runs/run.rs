//! The run actor: one headless agent run, owner of its child process (pipes, no PTY).
//!
//! ```text
//! stdin task  ── writes the prompt, closes stdin (the prompt is never in argv)
//! stdout task ──Line (call: waits for the actor)──▶ RunActor ──▶ execution_events + /api/events
//! stderr task ── keeps the last STDERR_TAIL_BYTES (shown on failure)
//! waiter task ──ChildExited──▶ RunActor ── records the outcome, tells the queue, stops
//! ```
//!
//! The stdout reader waits for each line to be handled, so the mailbox holds at most one line
//! (bounded by [`LINE_MAX_BYTES`]). The end is decided by the child's exit, then a short drain
//! of stdout. Timeout and cancel run the stop sequence used everywhere (HUP, TERM, KILL, 2 s
//! apart) on the whole process group. Dropping the state kills the group (panic safety).

use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use slog::{info, warn, Logger};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::outcome;
use super::stream::{OutputReader, RunResult};
use super::RunsMsg;
use crate::actors::db::Db;
use crate::actors::events::{EventType, Events};
use crate::agent_cli::OutputFormat;
use crate::db::execution_events::{self, ExecutionEvent};
use crate::db::executions::{self, ExecutionStatus, Finish};
use crate::db::tasks::{self, TaskPatch, TaskStatus};
use crate::lifecycle::{self, Lifecycle};
use crate::pty::{ExitInfo, ProcessTree, SpawnedPiped};
use crate::time::format_ts;

/// A stdout line longer than this is cut into pieces (each a `raw` event at worst).
const LINE_MAX_BYTES: usize = 1024 * 1024;
/// The end of stderr kept for a failed run's record.
const STDERR_TAIL_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    TimedOut,
    Shutdown,
}

pub enum RunMsg {
    Line(Vec<u8>, RpcReplyPort<()>),
    StdoutEnded,
    ChildExited(Result<ExitInfo, String>),
    DrainDeadline,
    Stop(StopReason),
    Escalate(Signal),
}

#[derive(Clone)]
pub struct RunDeps {
    pub db: Db,
    pub events: Events,
    pub log: Logger,
    pub timeout: Duration,
    pub events_max: usize,
    pub lifecycle: Lifecycle,
    /// Where its permission prompts go (issue 16).
    pub approvals: crate::approvals::Approvals,
}

pub struct RunArgs {
    pub execution_id: i64,
    pub task_id: i64,
    pub prompt: String,
    /// How its stdout is read: its agent kind's format.
    pub output: OutputFormat,
    pub spawned: SpawnedPiped,
    pub deps: RunDeps,
    pub queue: ActorRef<RunsMsg>,
    /// Its secret and MCP config, dropped when it ends.
    pub hooks: Option<crate::approvals::setup::AgentHooks>,
}

pub struct RunState {
    execution_id: i64,
    task_id: i64,
    deps: RunDeps,
    log: Logger,
    queue: ActorRef<RunsMsg>,
    tree: ProcessTree,
    next_seq: i64,
    dropped_events: u64,
    bytes_out: i64,
    reader: OutputReader,
    result: Option<RunResult>,
    exit: Option<ExitInfo>,
    /// When the leader's exit was seen, and when stdout last gave a line (the exit drain).
    exited_at: Option<Instant>,
    last_output: Instant,
    stdout_ended: bool,
    stop: Option<StopReason>,
    recorded: bool,
    stderr: Option<JoinHandle<Vec<u8>>>,
    tasks: Vec<JoinHandle<()>>,
    hooks: Option<crate::approvals::setup::AgentHooks>,
}

pub struct RunActor;

impl Actor for RunActor {
    type Msg = RunMsg;
    type State = RunState;
    type Arguments = RunArgs;

    async fn pre_start(
        &self,
        me: ActorRef<RunMsg>,
        args: RunArgs,
    ) -> Result<RunState, ActorProcessingErr> {
        let SpawnedPiped {
            child,
            mut stdin,
            stdout,
            stderr,
        } = args.spawned;
        let tree = child.tree().clone();
        let prompt = args.prompt;
        let writer = tokio::spawn(async move {
            // A child that exits without reading its prompt is its own failure, seen at exit.
            let _ = stdin.write_all(prompt.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
        let reader = tokio::spawn(read_lines(stdout, me.clone()));
        let stderr = tokio::spawn(read_tail(stderr));
        let log = args
            .deps
            .log
            .new(slog::o!("execution_id" => args.execution_id));
        {
            let (me, log) = (me.clone(), log.clone());
            tokio::spawn(async move {
                let exit = lifecycle::wait_child(child, &log).await;
                let _ = me.cast(RunMsg::ChildExited(exit));
            });
        }
        me.send_after(args.deps.timeout, || RunMsg::Stop(StopReason::TimedOut));
        Ok(RunState {
            execution_id: args.execution_id,
            task_id: args.task_id,
            deps: args.deps,
            log,
            queue: args.queue,
            tree,
            next_seq: 1,
            dropped_events: 0,
            bytes_out: 0,
            reader: OutputReader::new(args.output),
            result: None,
            exit: None,
            exited_at: None,
            last_output: Instant::now(),
            stdout_ended: false,
            stop: None,
            recorded: false,
            stderr: Some(stderr),
            tasks: vec![writer, reader],
            hooks: args.hooks,
        })
    }

    async fn handle(
        &self,
        me: ActorRef<RunMsg>,
        msg: RunMsg,
        state: &mut RunState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RunMsg::Line(line, reply) => {
                state.last_output = Instant::now();
                state.on_line(&line).await;
                let _ = reply.send(());
            }
            RunMsg::StdoutEnded => {
                state.stdout_ended = true;
                if state.exit.is_some() {
                    state.finish(&me).await;
                }
            }
            RunMsg::ChildExited(result) => {
                let exit = result.unwrap_or_else(|why| {
                    warn!(state.log, "waiting for the run's child failed"; "error" => why);
                    ExitInfo {
                        code: None,
                        signal: None,
                    }
                });
                state.exit = Some(exit);
                state.exited_at = Some(Instant::now());
                if state.stdout_ended {
                    state.finish(&me).await;
                } else {
                    me.send_after(lifecycle::DRAIN_QUIET, || RunMsg::DrainDeadline);
                }
            }
            RunMsg::DrainDeadline => {
                // The terminal's rule: drain while lines still arrive, at most DRAIN_MAX.
                let draining = state
                    .exited_at
                    .is_some_and(|exited| lifecycle::keep_draining(exited, state.last_output, 0));
                if draining && !state.recorded {
                    me.send_after(lifecycle::DRAIN_QUIET / 5, || RunMsg::DrainDeadline);
                } else {
                    state.finish(&me).await;
                }
            }
            RunMsg::Stop(reason) => {
                if state.exit.is_none() && state.stop.is_none() {
                    state.stop = Some(reason);
                    info!(state.log, "stopping run"; "reason" => ?reason);
                    lifecycle::stop_step(
                        &me,
                        Signal::SIGHUP,
                        |s| state.signal(s),
                        RunMsg::Escalate,
                    );
                }
            }
            RunMsg::Escalate(signal) => {
                if state.exit.is_none() {
                    lifecycle::stop_step(&me, signal, |s| state.signal(s), RunMsg::Escalate);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        me: ActorRef<RunMsg>,
        state: &mut RunState,
    ) -> Result<(), ActorProcessingErr> {
        // Stopped while the child runs: only server shutdown does that.
        if !state.recorded {
            state.signal(Signal::SIGKILL);
            state.stop = Some(StopReason::Shutdown);
            state.finish(&me).await;
        }
        Ok(())
    }
}

/// Reads stdout as lines (at most [`LINE_MAX_BYTES`] each) and hands each to the actor,
/// waiting for it to be handled: the only buffer is this one line.
async fn read_lines(mut stdout: impl AsyncRead + Unpin, actor: ActorRef<RunMsg>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || line.len() >= LINE_MAX_BYTES {
                let full = std::mem::take(&mut line);
                if actor.call(|r| RunMsg::Line(full, r), None).await.is_err() {
                    return;
                }
                if b == b'\n' {
                    continue;
                }
            }
            line.push(b);
        }
    }
    if !line.is_empty() {
        let _ = actor.call(|r| RunMsg::Line(line, r), None).await;
    }
    let _ = actor.cast(RunMsg::StdoutEnded);
}

/// Reads stderr to its end, keeping the last [`STDERR_TAIL_BYTES`].
async fn read_tail(mut stderr: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL_BYTES {
            tail.drain(..tail.len() - STDERR_TAIL_BYTES);
        }
    }
    tail
}

/// Moves a task along its state machine toward `to`, via `pending` when it must, so that its
/// status is that of its latest run: a run started on a succeeded task re-opens it first. A task
/// that cannot get there (deleted, or cancelled by its user while the run ended) is left as it is.
pub async fn move_task(db: &Db, events: &Events, task_id: i64, to: TaskStatus) {
    let moved = db
        .write(move |c| {
            let Some(task) = tasks::get(c, task_id)? else {
                return Ok(None);
            };
            if task.status == to {
                return Ok(None);
            }
            if task.status == TaskStatus::Succeeded && to == TaskStatus::Running {
                tasks::reopen(c, task_id)?;
            }
            if !task.status.allowed_next().contains(&to)
                && task.status.allowed_next().contains(&TaskStatus::Pending)
                && task.status != TaskStatus::Pending
            {
                let via = TaskPatch {
                    status: Some(TaskStatus::Pending),
                    ..TaskPatch::default()
                };
                let _ = tasks::update(c, task_id, &via);
            }
            let patch = TaskPatch {
                status: Some(to),
                ..TaskPatch::default()
            };
            Ok::<_, tasks::TaskError>(tasks::update(c, task_id, &patch).ok())
        })
        .await;
    if let Ok(Some(task)) = moved {
        events.publish(EventType::TaskUpdated, &task);
    }
}

impl RunState {
    async fn on_line(&mut self, line: &[u8]) {
        self.bytes_out += line.len() as i64 + 1;
        let Some(parsed) = self.reader.line(line) else {
            return;
        };
        if let Some(result) = parsed.result {
            self.result = Some(result);
        }
        if self.next_seq as usize > self.deps.events_max {
            self.dropped_events += 1;
            return;
        }
        let mut event = ExecutionEvent {
            execution_id: self.execution_id,
            seq: self.next_seq,
            ts: format_ts(SystemTime::now().into()),
            kind: parsed.kind,
            data: parsed.data,
        };
        self.next_seq += 1;
        let stored = event.clone();
        match self
            .deps
            .db
            .write(move |c| {
                execution_events::append(
                    c,
                    stored.execution_id,
                    &stored.ts,
                    &stored.kind,
                    &stored.data,
                )
            })
            .await
        {
            Ok(seq) => event.seq = seq,
            Err(e) => warn!(self.log, "storing a run event failed"; "error" => %e),
        }
        self.deps.events.publish_about(
            EventType::ExecutionEvent,
            Some(self.execution_id),
            Some(event.seq),
            &event,
        );
    }

    fn signal(&self, signal: Signal) {
        if let Err(e) = self.tree.signal(signal) {
            warn!(self.log, "signalling the run failed"; "signal" => %signal, "error" => %e);
        }
    }

    /// The outcome: from the stop reason, else the `result` event and the exit code.
    fn outcome(&self) -> (ExecutionStatus, Option<String>) {
        let exit = self.exit.unwrap_or(ExitInfo {
            code: None,
            signal: None,
        });
        match self.stop {
            Some(StopReason::Cancelled) => (ExecutionStatus::Cancelled, Some("cancelled".into())),
            Some(StopReason::TimedOut) => (
                ExecutionStatus::Failed,
                Some(format!(
                    "timed out after {} s (run_timeout_secs)",
                    self.deps.timeout.as_secs()
                )),
            ),
            Some(StopReason::Shutdown) => (
                ExecutionStatus::Interrupted,
                Some("server shut down".into()),
            ),
            None if self.reader.text_result().is_some() => outcome::ended_plain(exit),
            None => outcome::ended(self.result.as_ref(), exit),
        }
    }

    async fn finish(&mut self, me: &ActorRef<RunMsg>) {
        if self.recorded {
            return;
        }
        self.recorded = true;
        for task in &self.tasks {
            task.abort();
        }
        if let Some(text) = self.reader.text_result() {
            self.result = Some(text);
        }
        let (status, reason) = self.outcome();
        let stderr = match self.stderr.take() {
            Some(h) => tokio::time::timeout(lifecycle::DRAIN_QUIET, h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let exit = self.exit.unwrap_or(ExitInfo {
            code: None,
            signal: None,
        });
        info!(self.log, "run finished"; "status" => status.as_str(), "code" => exit.code,
              "signal" => exit.signal, "events_dropped" => self.dropped_events);
        let failed = status != ExecutionStatus::Succeeded;
        let finish = Finish {
            status,
            reason,
            exit_code: exit.code,
            exit_signal: exit.signal,
            bytes_out: self.bytes_out,
            output_truncated: false,
            output_tail: (failed && !stderr.is_empty()).then_some(stderr),
        };
        let (id, result) = (self.execution_id, self.result.clone().unwrap_or_default());
        self.deps
            .lifecycle
            .record_end(self.execution_id, finish, move |c| {
                executions::set_result(
                    c,
                    id,
                    result.text.as_deref(),
                    result.cost_usd,
                    result.usage.as_ref(),
                )
            })
            .await;
        let task_status = match status {
            ExecutionStatus::Succeeded => TaskStatus::Succeeded,
            ExecutionStatus::Cancelled => TaskStatus::Cancelled,
            _ => TaskStatus::Failed,
        };
        move_task(&self.deps.db, &self.deps.events, self.task_id, task_status).await;
        if let Some(h) = self.hooks.take() {
            self.deps.approvals.ended(h, Some(self.execution_id)).await;
        }
        let _ = self.queue.cast(RunsMsg::Finished(self.execution_id));
        me.stop(None);
    }
}

impl Drop for RunState {
    /// Runs even after a panic: no process group outlives its run.
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.signal(Signal::SIGKILL);
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}
