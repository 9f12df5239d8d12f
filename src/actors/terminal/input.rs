//! Input from the viewers to the PTY, through a bounded queue to the session's writer task, so
//! input is never reordered within a viewer and a message is never split by another one's. The
//! path that writes a keystroke straight from the socket task when nothing is queued (one task
//! hop less on the echo path) is here but switched off ([`DIRECT`]) until resizes are ordered
//! before the input that follows them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use crate::actors::session_types::Activity;
use crate::pty::{PtyTryWriter, PtyWriter};

/// Whether input may skip the writer task. Off: a viewer's `resize` (and its size take-over when
/// it types) reach the PTY through the actor, so input written straight from the socket task
/// overtook them — a program read keystrokes typed after a resize before it saw the new size
/// (`cli_client` caught it). It needs those messages acknowledged before input goes on.
const DIRECT: bool = false;

/// Input chunks waiting for the child to read them; senders wait beyond it, so a child that
/// stops reading pushes back on the typing client's socket, not on memory.
const QUEUED_CHUNKS: usize = 64;

/// The input has nowhere to go: the child's terminal is closed.
#[derive(Debug, thiserror::Error)]
#[error("the session's terminal no longer takes input")]
pub struct InputClosed;

/// A handle on the session's input, one clone per read-write viewer.
#[derive(Clone)]
pub struct Input {
    now: PtyTryWriter,
    queue: mpsc::Sender<Bytes>,
    /// Chunks handed to the writer task and not written yet; input goes straight to the PTY
    /// only while it is 0.
    queued: Arc<Mutex<usize>>,
    activity: Arc<Activity>,
}

impl Input {
    /// The input handle and the writer task that drains its queue into the PTY.
    pub fn start(writer: PtyWriter, activity: Arc<Activity>) -> (Input, JoinHandle<()>) {
        let (queue, mut rx) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let queued = Arc::new(Mutex::new(0usize));
        let input = Input {
            now: writer.try_writer(),
            queue,
            queued: queued.clone(),
            activity: activity.clone(),
        };
        let task = tokio::spawn(async move {
            let mut writer = writer;
            while let Some(bytes) = rx.recv().await {
                activity.touch();
                let written = writer.write_all(&bytes).await;
                if let Ok(mut queued) = queued.lock() {
                    *queued = queued.saturating_sub(1);
                }
                if written.is_err() {
                    break;
                }
            }
        });
        (input, task)
    }

    /// Writes `bytes` to the PTY, at once if nothing is queued before them; waits only while
    /// the queue is full.
    pub async fn send(&self, bytes: Bytes) -> Result<(), InputClosed> {
        let rest = {
            let mut queued = self.queued.lock().map_err(|_| InputClosed)?;
            // Straight to the PTY only when nothing is queued and the viewer has no resize or
            // size take-over on its way to the actor (see `DIRECT`).
            let rest = if DIRECT && *queued == 0 {
                self.activity.touch();
                match self.now.try_write(&bytes) {
                    Ok(n) if n == bytes.len() => return Ok(()),
                    Ok(n) => bytes.slice(n..),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => bytes,
                    Err(_) => return Err(InputClosed),
                }
            } else {
                bytes
            };
            *queued += 1;
            match self.queue.try_send(rest) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(rest)) => rest,
                Err(TrySendError::Closed(_)) => {
                    *queued -= 1;
                    return Err(InputClosed);
                }
            }
        };
        // The child has not read the last QUEUED_CHUNKS chunks: wait for room, holding no lock.
        if self.queue.send(rest).await.is_err() {
            if let Ok(mut queued) = self.queued.lock() {
                *queued = queued.saturating_sub(1);
            }
            return Err(InputClosed);
        }
        Ok(())
    }
}
