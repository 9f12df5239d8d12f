//! Input from the viewers to the PTY, through a bounded queue to the session's writer task, so
//! input is never reordered within a viewer and a message is never split by another one's.
//!
//! Input goes through this task, not straight from the socket task, on purpose: a viewer's
//! `resize` reaches the PTY through the actor, and input written straight from the socket task
//! overtook it (a program read keys typed after a resize before it saw the new size). A direct
//! path needs resizes acknowledged before the input that follows them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};
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
    queue: Arc<Queue>,
}

/// The queue itself. Not a tokio `mpsc` channel: that allocates a block of 32 slots when it is
/// made, and this one holds nothing while nobody types (memory per idle session).
struct Queue {
    chunks: Mutex<VecDeque<Bytes>>,
    /// One permit per free place; closed when the terminal no longer takes input.
    room: Semaphore,
    queued: Notify,
}

/// The writer task's hold on the queue: when the task ends, however it ends (the terminal
/// closed, or the session aborted it), senders waiting for room and any later ones learn that
/// input goes nowhere.
struct Closing(Arc<Queue>);

impl std::ops::Deref for Closing {
    type Target = Queue;
    fn deref(&self) -> &Queue {
        &self.0
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.room.close();
    }
}

impl Input {
    /// The input handle and the writer task that drains its queue into the PTY.
    pub fn start(writer: PtyWriter, activity: Arc<Activity>) -> (Input, JoinHandle<()>) {
        let queue = Arc::new(Queue {
            chunks: Mutex::new(VecDeque::new()),
            room: Semaphore::new(QUEUED_CHUNKS),
            queued: Notify::new(),
        });
        let drained = Closing(queue.clone());
        let task = tokio::spawn(async move {
            let mut writer = writer;
            loop {
                let next = drained
                    .chunks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop_front();
                let Some(bytes) = next else {
                    drained.queued.notified().await;
                    continue;
                };
                drained.room.add_permits(1);
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
        let room = match self.queue.room.try_acquire() {
            Ok(room) => room,
            Err(tokio::sync::TryAcquireError::NoPermits) => Box::pin(self.queue.room.acquire())
                .await
                .map_err(|_| InputClosed)?,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(InputClosed),
        };
        // The writer gives the place back when it takes the chunk.
        room.forget();
        self.queue
            .chunks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(bytes);
        self.queue.queued.notify_one();
        Ok(())
    }
}
