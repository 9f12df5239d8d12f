//! A run's three pipes, each served by one task that can be stopped between two reads or writes
//! (a reload hands the pipe and what the task holds to the next image; `run/handover.rs`).
//!
//! ```text
//! write_prompt ── the prompt (or what a reload left of it) to stdin, then closes it
//! read_lines   ── stdout as lines, each handed to the actor (waits for it: one line buffered)
//! read_tail    ── stderr to its end, keeping the last STDERR_TAIL_BYTES
//! ```

use std::sync::Arc;

use ractor::ActorRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::Notify;

use super::run::RunMsg;

/// A stdout line longer than this is cut into pieces (each a `raw` event at worst).
pub const LINE_MAX_BYTES: usize = 1024 * 1024;
/// The end of stderr kept for a failed run's record.
pub const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// A pipe whose task was stopped, and what that task held (prompt bytes not yet written, the
/// partial stdout line, the stderr tail).
pub type Held<P> = (P, Vec<u8>);

/// Writes `rest` to stdin and closes it. Stopped: returns stdin and what was not written.
pub async fn write_prompt(
    mut stdin: ChildStdin,
    rest: Vec<u8>,
    stop: Arc<Notify>,
) -> Option<Held<ChildStdin>> {
    let mut at = 0;
    while at < rest.len() {
        tokio::select! {
            biased;
            _ = stop.notified() => return Some((stdin, rest[at..].to_vec())),
            // A child that exits without reading its prompt is its own failure, seen at exit.
            written = stdin.write(&rest[at..]) => match written {
                Ok(0) | Err(_) => return None,
                Ok(n) => at += n,
            },
        }
    }
    let _ = stdin.shutdown().await;
    None
}

/// Reads stdout as lines (at most [`LINE_MAX_BYTES`] each), `line` being a partial line already
/// read, and hands each to the actor, waiting for it to be handled: the only buffer is this one
/// line. Stopped (only ever between two reads, so every whole line read was delivered): sends
/// stdout and the partial line back to the actor.
pub async fn read_lines(
    mut stdout: ChildStdout,
    mut line: Vec<u8>,
    actor: ActorRef<RunMsg>,
    stop: Arc<Notify>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            biased;
            _ = stop.notified() => {
                let _ = actor.cast(RunMsg::ReaderStopped(Box::new((stdout, line))));
                return;
            }
            read = stdout.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
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

/// Reads stderr to its end, keeping the last [`STDERR_TAIL_BYTES`] (starting from `tail`).
/// Returns the tail, and stderr itself when stopped before its end.
pub async fn read_tail(
    mut stderr: ChildStderr,
    mut tail: Vec<u8>,
    stop: Arc<Notify>,
) -> (Vec<u8>, Option<ChildStderr>) {
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            biased;
            _ = stop.notified() => return (tail, Some(stderr)),
            read = stderr.read(&mut buf) => match read {
                Ok(0) | Err(_) => return (tail, None),
                Ok(n) => {
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > STDERR_TAIL_BYTES {
                        tail.drain(..tail.len() - STDERR_TAIL_BYTES);
                    }
                }
            },
        }
    }
}
