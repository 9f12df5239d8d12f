//! A run handed over to the next image on reload (`src/handover/`), and taken over there.
//!
//! ```text
//! HandOver ── the waiter stops (the child is kept: unreaped, still our child across the exec)
//!          ── every pipe task is told to stop between two reads/writes
//! ReaderStopped (or StdoutEnded) ── stdout and its partial line; stdin and what is left of the
//!          prompt; stderr and its tail; the parser position ──▶ RunHandover ──▶ the record
//! ```
//!
//! The stdout reader only stops between two reads, after every whole line it read has been
//! handled, so the next image's first event follows this image's last one: no gap, no repeat
//! (sequence numbers come from the stored events). A run whose child has already exited is not
//! handed over: it is recorded here, with its exit.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use ractor::RpcReplyPort;
use serde::{Deserialize, Serialize};
use slog::{info, warn};
use tokio::process::ChildStdout;

use super::{RunState, StopReason};
use crate::actors::runs::pipes::Held;
use crate::actors::runs::stream::{OutputReader, RunResult};
use crate::agent_cli::OutputFormat;
use crate::approvals::setup::AgentHooks;
use crate::db::executions::{ExecutionStatus, Finish};
use crate::db::tasks::TaskStatus;
use crate::pty::{process_start_time, ProcessTree};

/// How far a run got: what the next image continues from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPosition {
    pub next_seq: i64,
    pub dropped_events: u64,
    pub bytes_out: i64,
    /// The parser, with what it remembers across lines.
    pub reader: OutputReader,
    pub result: Option<RunResult>,
    /// A cancel or timeout under way: the stop sequence starts again.
    pub stop: Option<StopReason>,
    /// What is left of `run_timeout_secs`.
    pub timeout_left_ms: u64,
    /// Its hook secret and MCP config (revoked when it ends).
    pub hooks: Option<AgentHooks>,
}

impl RunPosition {
    /// A run about to start.
    pub fn fresh(output: OutputFormat, timeout: Duration, hooks: Option<AgentHooks>) -> Self {
        RunPosition {
            next_seq: 1,
            dropped_events: 0,
            bytes_out: 0,
            reader: OutputReader::new(output),
            result: None,
            stop: None,
            timeout_left_ms: timeout.as_millis() as u64,
            hooks,
        }
    }
}

/// Everything the next image needs to continue one run; a pipe already closed is `None`.
#[derive(Debug)]
pub struct RunHandover {
    pub execution_id: i64,
    pub task_id: i64,
    pub tree: ProcessTree,
    /// stdin and the prompt bytes not yet written.
    pub stdin: Option<Held<OwnedFd>>,
    /// stdout and the partial line read.
    pub stdout: Option<Held<OwnedFd>>,
    /// stderr and its tail so far.
    pub stderr: Option<Held<OwnedFd>>,
    pub position: RunPosition,
}

impl RunState {
    /// Stops the waiter (keeping the child) and every pipe task; the answer follows when the
    /// stdout reader has stopped (`ReaderStopped`) or ended (`StdoutEnded`).
    pub(super) async fn hand_over_begin(&mut self, reply: RpcReplyPort<Option<RunHandover>>) {
        if self.recorded || self.exit.is_some() || self.handing_over.is_some() {
            let _ = reply.send(None);
            return;
        }
        self.keeper.keep();
        if let Some(waiter) = self.waiter.take() {
            waiter.abort();
            let _ = waiter.await;
        }
        if process_start_time(self.tree.leader) != self.tree.start_time {
            // Reaped by the waiter just before it stopped: its exit is in the mailbox.
            let _ = reply.send(None);
            return;
        }
        self.handing_over = Some(reply);
        self.stops.stdin.notify_one();
        self.stops.stderr.notify_one();
        self.stops.stdout.notify_one();
        if self.stdout_ended {
            self.hand_over_finish(None).await;
        }
    }

    /// The stdout reader stopped (`stdout`) or had ended (`None`): gathers the rest and answers.
    pub(super) async fn hand_over_finish(&mut self, stdout: Option<Held<ChildStdout>>) {
        let Some(reply) = self.handing_over.take() else {
            return;
        };
        let stdin = match self.writer.take() {
            Some(writer) => writer.await.ok().flatten(),
            None => None,
        };
        let stderr = match self.stderr.take() {
            Some(reader) => reader.await.ok(),
            None => None,
        };
        let mut tail = Vec::new();
        let pipes = (|| -> std::io::Result<_> {
            let stdin = stdin.map(|(p, rest)| Ok::<_, std::io::Error>((p.into_owned_fd()?, rest)));
            let stdout =
                stdout.map(|(p, line)| Ok::<_, std::io::Error>((p.into_owned_fd()?, line)));
            let stderr = match stderr {
                Some((t, Some(p))) => Some((p.into_owned_fd()?, t)),
                Some((t, None)) => {
                    tail = t;
                    None
                }
                None => None,
            };
            Ok((stdin.transpose()?, stdout.transpose()?, stderr))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(p) => p,
            Err(e) => {
                warn!(self.log, "handover: cannot pass the run's pipes on; stopping it"; "error" => %e);
                self.signal(Signal::SIGKILL);
                self.stop_unhanded(format!("the run could not be handed over ({e})"))
                    .await;
                let _ = reply.send(None);
                return;
            }
        };
        // A stderr that ended keeps its tail for the record: an empty pipe stands for it.
        let stderr = stderr.or_else(|| ended_pipe_with(tail));
        for task in &self.tasks {
            task.abort();
        }
        self.handed_over = true;
        self.recorded = true;
        self.deps.lifecycle.live.remove(self.execution_id);
        let position = RunPosition {
            next_seq: self.next_seq,
            dropped_events: self.dropped_events,
            bytes_out: self.bytes_out,
            reader: self.reader.clone(),
            result: self.result.clone(),
            stop: self.stop,
            timeout_left_ms: self
                .deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64,
            hooks: self.hooks.take(),
        };
        info!(self.log, "run handed over"; "pid" => self.tree.leader, "next_seq" => self.next_seq);
        let _ = reply.send(Some(RunHandover {
            execution_id: self.execution_id,
            task_id: self.task_id,
            tree: self.tree.clone(),
            stdin,
            stdout,
            stderr,
            position,
        }));
    }

    /// A run that cannot be handed over after its tasks stopped: recorded `interrupted`.
    async fn stop_unhanded(&mut self, why: String) {
        self.recorded = true;
        let finish = Finish::without_exit(
            ExecutionStatus::Interrupted,
            format!("server reloaded: {why}"),
        );
        self.deps
            .lifecycle
            .record_end(self.execution_id, finish, |_| Ok(()))
            .await;
        let (db, events) = (&self.deps.db, &self.deps.events);
        super::move_task(db, events, self.task_id, TaskStatus::Failed).await;
        let _ = self
            .queue
            .cast(crate::actors::runs::RunsMsg::Finished(self.execution_id));
    }
}

/// The read end of a pipe whose write end is already closed: what an ended stderr becomes in
/// the next image (it reads EOF at once), so that its tail goes on with it.
fn ended_pipe_with(tail: Vec<u8>) -> Option<Held<OwnedFd>> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    drop(write);
    Some((read, tail))
}
