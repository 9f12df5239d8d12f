//! Input from the viewers to the PTY, through a bounded queue to the session's writer task, so
//! input is never reordered within a viewer and a message is never split by another one's.
//!
//! Input goes through this task, not straight from the socket task, on purpose: a viewer's
//! `resize` reaches the PTY through the actor, and input written straight from the socket task
//! overtook it (a program read keys typed after a resize before it saw the new size). A direct
//! path needs resizes acknowledged before the input that follows them.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::actors::session_types::Activity;
use crate::pty::PtyWriter;

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
    queue: mpsc::Sender<Bytes>,
}

impl Input {
    /// The input handle and the writer task that drains its queue into the PTY.
    pub fn start(writer: PtyWriter, activity: Arc<Activity>) -> (Input, JoinHandle<()>) {
        let (queue, mut rx) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
        let task = tokio::spawn(async move {
            let mut writer = writer;
            while let Some(bytes) = rx.recv().await {
                activity.touch();
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        (Input { queue }, task)
    }

    /// Queues `bytes` for the PTY; waits only while the queue is full. The waiting is boxed,
    /// so a viewer's task holds no send future while it only reads (memory per session).
    pub async fn send(&self, bytes: Bytes) -> Result<(), InputClosed> {
        match self.queue.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(bytes)) => Box::pin(self.queue.send(bytes))
                .await
                .map_err(|_| InputClosed),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(InputClosed),
        }
    }
}
