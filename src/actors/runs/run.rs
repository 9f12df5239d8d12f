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

mod handover;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use slog::{info, warn, Logger};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use super::task_status::move_task;
pub use handover::{RunHandover, RunPosition};

use super::outcome;
use super::pipes::{self, Held};
use super::stream::{OutputReader, RunResult};
use super::RunsMsg;
use crate::actors::db::Db;
use crate::actors::events::{EventType, Events};
use crate::db::execution_events::{self, ExecutionEvent};
use crate::db::executions::{self, ExecutionStatus, Finish};
use crate::db::tasks::TaskStatus;
use crate::lifecycle::{self, Lifecycle};
use crate::pty::{ChildKeeper, ExitInfo, ProcessTree, PtyChild, SpawnedPiped};
use crate::time::format_ts;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Reload: hand the run over to the next image (`run/handover.rs`).
    HandOver(RpcReplyPort<Option<RunHandover>>),
    /// The stdout reader stopped for the handover: stdout and its partial line.
    ReaderStopped(Box<Held<ChildStdout>>),
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
    pub io: RunIo,
    /// How far it got: fresh, or handed over by the image before a reload.
    pub position: RunPosition,
    pub deps: RunDeps,
    pub queue: ActorRef<RunsMsg>,
}

/// The child and its pipes, each with what its task starts from (the prompt to write, a partial
/// stdout line, the stderr tail); a pipe already closed is `None`.
pub struct RunIo {
    pub child: PtyChild,
    pub stdin: Option<Held<ChildStdin>>,
    pub stdout: Option<Held<ChildStdout>>,
    pub stderr: Option<Held<ChildStderr>>,
}

impl RunIo {
    /// A child just started: the whole prompt to write, nothing read yet.
    pub fn fresh(spawned: SpawnedPiped, prompt: String) -> RunIo {
        RunIo {
            child: spawned.child,
            stdin: Some((spawned.stdin, prompt.into_bytes())),
            stdout: Some((spawned.stdout, Vec::new())),
            stderr: Some((spawned.stderr, Vec::new())),
        }
    }
}

/// Wakes each pipe task to stop it (a reload).
#[derive(Default)]
struct Stops {
    stdin: Arc<Notify>,
    stdout: Arc<Notify>,
    stderr: Arc<Notify>,
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
    /// When `run_timeout_secs` runs out (carried across a reload).
    deadline: Instant,
    /// When the leader's exit was seen, and when stdout last gave a line (the exit drain).
    exited_at: Option<Instant>,
    last_output: Instant,
    stdout_ended: bool,
    stop: Option<StopReason>,
    recorded: bool,
    stderr: Option<JoinHandle<(Vec<u8>, Option<ChildStderr>)>>,
    writer: Option<JoinHandle<Option<Held<ChildStdin>>>>,
    waiter: Option<JoinHandle<()>>,
    keeper: ChildKeeper,
    stops: Stops,
    /// A handover under way: answered once the stdout reader has stopped.
    handing_over: Option<RpcReplyPort<Option<RunHandover>>>,
    /// Handed to the next image: neither killed nor recorded here.
    handed_over: bool,
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
        let RunIo {
            child,
            stdin,
            stdout,
            stderr,
        } = args.io;
        let (tree, keeper) = (child.tree().clone(), child.keeper());
        let stops = Stops::default();
        let writer = stdin.map(|(stdin, rest)| {
            tokio::spawn(pipes::write_prompt(stdin, rest, stops.stdin.clone()))
        });
        let stdout_ended = stdout.is_none();
        let reader = stdout.map(|(stdout, partial)| {
            tokio::spawn(pipes::read_lines(
                stdout,
                partial,
                me.clone(),
                stops.stdout.clone(),
            ))
        });
        let stderr = stderr.map(|(stderr, tail)| {
            tokio::spawn(pipes::read_tail(stderr, tail, stops.stderr.clone()))
        });
        let log = args
            .deps
            .log
            .new(slog::o!("execution_id" => args.execution_id));
        let waiter = {
            let me = me.clone();
            lifecycle::spawn_waiter(child, log.clone(), move |exit| {
                let _ = me.cast(RunMsg::ChildExited(exit));
            })
        };
        let p = args.position;
        let left = Duration::from_millis(p.timeout_left_ms);
        me.send_after(left, || RunMsg::Stop(StopReason::TimedOut));
        if let Some(reason) = p.stop {
            // Its stop sequence was under way before a reload: it starts again here.
            let _ = me.cast(RunMsg::Stop(reason));
        }
        Ok(RunState {
            execution_id: args.execution_id,
            task_id: args.task_id,
            deps: args.deps,
            log,
            queue: args.queue,
            tree,
            next_seq: p.next_seq,
            dropped_events: p.dropped_events,
            bytes_out: p.bytes_out,
            reader: p.reader,
            result: p.result,
            exit: None,
            deadline: Instant::now() + left,
            exited_at: None,
            last_output: Instant::now(),
            stdout_ended,
            stop: None,
            recorded: false,
            stderr,
            writer,
            waiter: Some(waiter),
            keeper,
            stops,
            handing_over: None,
            handed_over: false,
            tasks: reader.into_iter().collect(),
            hooks: p.hooks,
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
                if state.handing_over.is_some() {
                    state.hand_over_finish(None).await;
                } else if state.exit.is_some() {
                    state.finish(&me).await;
                }
            }
            RunMsg::HandOver(reply) => state.hand_over_begin(reply).await,
            RunMsg::ReaderStopped(stdout) => state.hand_over_finish(Some(*stdout)).await,
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
                let busy = state.handing_over.is_some() || state.handed_over;
                if state.exit.is_none() && state.stop.is_none() && !busy {
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
        // Stopped while the child runs: only server shutdown does that. A child that already
        // exited is recorded with its own exit.
        if !state.recorded {
            if state.exit.is_none() {
                state.signal(Signal::SIGKILL);
                state.stop = Some(StopReason::Shutdown);
            }
            state.finish(&me).await;
        }
        Ok(())
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
        if let Some(writer) = &self.writer {
            writer.abort();
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
                .map(|(tail, _)| tail)
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
        if self.exit.is_none() && !self.handed_over {
            self.signal(Signal::SIGKILL);
        }
        for task in &self.tasks {
            task.abort();
        }
        if let Some(writer) = &self.writer {
            writer.abort();
        }
    }
}
