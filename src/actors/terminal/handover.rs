//! A session handed over to the next image on reload (`src/handover/`): the reader stops, what
//! it already read is pushed into the ring, then the master (a duplicate fd), the ring (bytes and
//! absolute offsets) and the child (left running, unreaped: it stays our child across the exec)
//! are passed on. Viewers are closed with 1012 and resume on the next image with `since`.

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use nix::sys::signal::Signal;
use ractor::{ActorRef, RpcReplyPort};
use slog::{info, warn};

use super::{TerminalMsg, TerminalState};
use crate::actors::session_types::SessionSpec;
use crate::actors::viewers::CloseReason;
use crate::db::executions::ExecutionStatus;
use crate::protocol::CLOSE_SERVICE_RESTART;
use crate::pty::{process_start_time, ProcessTree, WindowSize};

/// Everything the next image needs to continue one session.
#[derive(Debug)]
pub struct SessionHandover {
    pub id: String,
    pub spec: SessionSpec,
    pub execution_id: i64,
    pub created_at: String,
    pub tree: ProcessTree,
    pub size: WindowSize,
    pub master: OwnedFd,
    /// Absolute offset of `ring[0]`.
    pub ring_start: u64,
    pub ring: Vec<u8>,
    /// The device of the viewer that holds the size, or held it last.
    pub size_held_by: Option<String>,
    /// The window title the program set, as the screen parsed it.
    pub title: Option<String>,
}

impl TerminalState {
    /// Stops the reader; the finish is queued behind every chunk it had already read.
    pub(super) async fn hand_over_begin(
        &mut self,
        me: &ActorRef<TerminalMsg>,
        reply: RpcReplyPort<Option<SessionHandover>>,
    ) {
        if self.final_status.is_some() || self.tasks.is_empty() {
            let _ = reply.send(None);
            return;
        }
        let reader = self.tasks.remove(0);
        reader.abort();
        let _ = reader.await;
        if me.cast(TerminalMsg::HandOverFinish(reply)).is_err() {
            warn!(self.log, "handover: cannot queue the finish step");
        }
    }

    pub(super) async fn hand_over_finish(&mut self) -> Option<SessionHandover> {
        if self.exit.is_some() || self.final_status.is_some() {
            // It ended meanwhile: record it here (nothing more will be read).
            self.output_ended = true;
            self.finalize().await;
            return None;
        }
        self.keeper.keep();
        if let Some(waiter) = self.waiter.take() {
            waiter.abort();
            let _ = waiter.await;
        }
        if process_start_time(self.pid) != self.tree.start_time {
            // Reaped by the waiter just before it stopped: its exit is in the mailbox.
            return None;
        }
        let master = match self.resizer.dup_master() {
            Ok(fd) => fd,
            Err(e) => {
                warn!(self.log, "handover: cannot duplicate the master; stopping the session"; "error" => %e);
                self.signal(Signal::SIGKILL);
                self.record(
                    ExecutionStatus::Interrupted,
                    Some(format!(
                        "server reloaded: the session could not be handed over ({e})"
                    )),
                )
                .await;
                return None;
            }
        };
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.handed_over = true;
        self.recorded.store(true, Ordering::SeqCst);
        self.deps.lifecycle.live.remove(self.execution_id);
        self.flow.clear();
        let size_held_by = self.size_holder_client();
        for (_, viewer) in self.viewers.drain() {
            viewer.queue.close(CloseReason {
                code: CLOSE_SERVICE_RESTART,
                reason: "server reloading; reconnect with since",
            });
        }
        let ring = self.replay.read_from(self.replay.start());
        info!(self.log, "session handed over"; "pid" => self.pid, "offset" => ring.end);
        Some(SessionHandover {
            id: self.id.clone(),
            spec: (*self.spec).clone(),
            execution_id: self.execution_id,
            created_at: self.created_at.clone(),
            tree: self.tree.clone(),
            size: self.size,
            master,
            ring_start: ring.start,
            ring: ring.bytes,
            size_held_by,
            title: self.screen.title().map(|t| t.to_string()),
        })
    }
}
