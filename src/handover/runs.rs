//! Headless runs in the handover record (version 2): each run's child (still our child across
//! the exec), its open pipes (fds named in the record) and its position (`RunPosition`: parser
//! state, event count, bytes, result so far, time left), and three byte strings in the blob
//! area: the partial stdout line, the stderr tail, the prompt bytes not yet written to stdin.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use super::prepare::Prepared;
use super::take::{own, Unreadable};
use crate::actors::runs::{RunHandover, RunPosition};

/// One headless run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub execution_id: i64,
    pub task_id: i64,
    pub pid: i32,
    pub start_time: Option<u64>,
    pub cgroup: Option<String>,
    /// Pipes still open (a closed one is `None`).
    pub stdin_fd: Option<RawFd>,
    pub stdout_fd: Option<RawFd>,
    pub stderr_fd: Option<RawFd>,
    pub position: RunPosition,
    /// Where its bytes are in the blob area: partial line, stderr tail, prompt left, in order.
    pub blob_at: u64,
    pub partial_len: u64,
    pub tail_len: u64,
    pub stdin_len: u64,
}

impl RunRecord {
    fn blob_len(&self) -> u64 {
        self.partial_len
            .saturating_add(self.tail_len)
            .saturating_add(self.stdin_len)
    }
}

/// A run read back from the record, owning its fds.
#[derive(Debug)]
pub struct InheritedRun {
    pub record: RunRecord,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub partial: Vec<u8>,
    pub tail: Vec<u8>,
    pub stdin_rest: Vec<u8>,
}

impl Prepared {
    /// Adds the handed-over runs: their fds, their bytes after the sessions' rings, their trees
    /// (killed if no image can be executed).
    pub fn with_runs(mut self, runs: Vec<RunHandover>) -> Prepared {
        let mut blob_at: u64 = self.rings.iter().map(|r| r.len() as u64).sum();
        for h in runs {
            let (mut bytes, mut lens) = (Vec::new(), [0u64; 3]);
            let mut fd_of = |pipe: Option<(OwnedFd, Vec<u8>)>, len: &mut u64| {
                let (fd, held) = pipe?;
                *len = held.len() as u64;
                bytes.extend_from_slice(&held);
                let raw = fd.as_raw_fd();
                self.fds.push(fd);
                Some(raw)
            };
            let [partial_len, tail_len, stdin_len] = &mut lens;
            let stdout_fd = fd_of(h.stdout, partial_len);
            let stderr_fd = fd_of(h.stderr, tail_len);
            let stdin_fd = fd_of(h.stdin, stdin_len);
            self.record.runs.push(RunRecord {
                execution_id: h.execution_id,
                task_id: h.task_id,
                pid: h.tree.leader,
                start_time: h.tree.start_time,
                cgroup: h.tree.cgroup.as_ref().map(|c| c.display().to_string()),
                stdin_fd,
                stdout_fd,
                stderr_fd,
                position: h.position,
                blob_at,
                partial_len: lens[0],
                tail_len: lens[1],
                stdin_len: lens[2],
            });
            blob_at += bytes.len() as u64;
            self.rings.push(bytes);
            self.trees.push(h.tree);
        }
        self
    }
}

/// Checks that every run's bytes are inside the blob area.
pub fn check_blobs(runs: &[RunRecord], blobs_len: u64) -> Result<(), String> {
    for r in runs {
        if r.blob_at.saturating_add(r.blob_len()) > blobs_len {
            return Err(format!(
                "run {}: its bytes are past the end of the record",
                r.execution_id
            ));
        }
    }
    Ok(())
}

/// Takes ownership of every run's fds and bytes.
pub fn take_runs(
    runs: &[RunRecord],
    blobs: &[u8],
    seen: &mut HashSet<RawFd>,
) -> Result<Vec<InheritedRun>, Unreadable> {
    let mut out = Vec::with_capacity(runs.len());
    for r in runs {
        let mut fd = |raw: Option<RawFd>| raw.map(|fd| own(fd, seen)).transpose();
        let (stdin, stdout, stderr) = (fd(r.stdin_fd)?, fd(r.stdout_fd)?, fd(r.stderr_fd)?);
        let mut at = r.blob_at as usize;
        let mut next = |len: u64| {
            let bytes = blobs[at..at + len as usize].to_vec();
            at += len as usize;
            bytes
        };
        let (partial, tail, stdin_rest) =
            (next(r.partial_len), next(r.tail_len), next(r.stdin_len));
        out.push(InheritedRun {
            record: r.clone(),
            stdin,
            stdout,
            stderr,
            partial,
            tail,
            stdin_rest,
        });
    }
    Ok(out)
}
