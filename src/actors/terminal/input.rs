//! Input from the viewers to the PTY. A keystroke is written straight from the viewer's socket
//! task when nothing is queued before it — no hop to another task on the echo path. What the
//! PTY does not take at once (a child that is not reading) is queued, bounded, for the writer
//! task, and everything after it waits its turn there, so input is never reordered within a
//! viewer and a message is never split by another one's.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use crate::actors::session_types::Activity;
use crate::pty::{PtyTryWriter, PtyWriter};

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
            let rest = if *queued == 0 {
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
