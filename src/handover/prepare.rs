//! The old image's side: the sessions handed over become one record plus the fds it names.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::Signal;

use super::exec::{exec_next, ExecError};
use super::record::{Record, SessionRecord, RECORD_VERSION};
use crate::actors::sessions::kind_name;
use crate::actors::terminal::SessionHandover;
use crate::pty::ProcessTree;

/// Everything the exec passes on; dropped (closing every fd) only if the exec failed.
pub struct Prepared {
    pub record: Box<Record>,
    pub(super) rings: Vec<Vec<u8>>,
    pub(super) fds: Vec<OwnedFd>,
    pub(super) trees: Vec<ProcessTree>,
}

/// What the record says about the reload itself.
pub struct ReloadMeta {
    pub generation: u64,
    pub boot_id: String,
    pub reload_seq: u64,
    pub requested_at: String,
}

impl Prepared {
    pub fn new(meta: ReloadMeta, listener: OwnedFd, handed: Vec<SessionHandover>) -> Prepared {
        let mut sessions = Vec::with_capacity(handed.len());
        let mut rings = Vec::with_capacity(handed.len());
        let mut trees = Vec::with_capacity(handed.len());
        let mut fds = Vec::with_capacity(handed.len() + 1);
        let listener_fd = listener.as_raw_fd();
        fds.push(listener);
        let mut blob_at = 0u64;
        for h in handed {
            sessions.push(SessionRecord {
                id: h.id,
                kind: kind_name(h.spec.kind).to_string(),
                name: h.spec.name,
                argv: h.spec.argv,
                cwd: h.spec.cwd.display().to_string(),
                cols: h.size.cols,
                rows: h.size.rows,
                task_id: h.spec.task_id,
                agent_id: h.spec.agent_id,
                conversation_id: h.spec.conversation_id,
                idle_timeout_ms: h.spec.idle_timeout.map(|d| d.as_millis() as u64),
                execution_id: h.execution_id,
                created_at: h.created_at,
                pid: h.tree.leader,
                start_time: h.tree.start_time,
                cgroup: h.tree.cgroup.as_ref().map(|c| c.display().to_string()),
                master_fd: h.master.as_raw_fd(),
                ring_start: h.ring_start,
                ring_blob_at: blob_at,
                ring_len: h.ring.len() as u64,
                size_held_by: h.size_held_by,
                title: h.title,
            });
            blob_at += h.ring.len() as u64;
            rings.push(h.ring);
            fds.push(h.master);
            trees.push(h.tree);
        }
        Prepared {
            record: Box::new(Record {
                version: RECORD_VERSION,
                generation: meta.generation,
                boot_id: meta.boot_id,
                listener_fd,
                reload_seq: meta.reload_seq,
                requested_at: meta.requested_at,
                exec_error: None,
                sessions,
                runs: Vec::new(),
            }),
            rings,
            fds,
            trees,
        }
    }

    /// Executes the next image; returns only if no image could be executed.
    pub fn exec(&self) -> ExecError {
        let rings: Vec<&[u8]> = self.rings.iter().map(Vec::as_slice).collect();
        let keep: Vec<_> = self.fds.iter().map(|fd| fd.as_fd()).collect();
        exec_next((*self.record).clone(), &rings, &keep)
    }

    /// Executes the next image; if none can be, stops every session (logged) and returns.
    pub fn exec_or_stop(self, log: &slog::Logger, mut flush: impl FnMut()) {
        slog::info!(log, "executing the next image"; "sessions" => self.record.sessions.len());
        flush();
        let failed = self.exec();
        // Neither the new binary nor the running image could be executed: nothing serves any
        // more, so no session may be left running unknown.
        slog::error!(log, "reload: no image could be executed; stopping the sessions"; "error" => %failed);
        eprintln!("claude-manager: reload failed: {failed}");
        self.abandon();
        flush();
    }

    /// No image could be executed: end every handed-over session (killed and reaped) so none is
    /// left running unknown; the next start reconciles their records (`interrupted`).
    pub fn abandon(self) {
        for tree in &self.trees {
            let _ = tree.signal(Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(tree.leader), None);
        }
    }
}
