//! A session's viewers: one bounded outbound queue per attached WebSocket.
//!
//! The terminal actor pushes each PTY read into every viewer's queue as a shared [`Bytes`] (no
//! copy per viewer) and wakes the viewer's socket task, which sends it at once — no timer, no
//! batching beyond what is already queued. The queue is capped in bytes: a viewer whose socket
//! does not keep up is not pushed to any more once it would go over the cap. It is marked
//! *lagging* from the first offset it missed, and its socket task later catches up from the
//! session's ring (`resync`), or gets the screen (a snapshot) when that offset has left the
//! ring. So a slow viewer costs at most its cap in memory.
//!
//! Flow control ([`Flow`]): a viewer that is *reading* — it took from its queue within
//! [`READING_GRACE`] — holds the session's reader back while one more read could take it past
//! its queue's cap or half the ring (counting what is read but not yet queued), until it has
//! taken, as ttyd's flow control does: the
//! child waits for it instead of the viewer losing bytes, so a reading viewer gets every byte
//! of a flood. A viewer that stops reading holds nothing back after [`READING_GRACE`]: it never
//! slows the PTY or the other viewers for longer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

/// A viewer that took from its queue this recently is reading, and may hold the reader back.
pub const READING_GRACE: Duration = Duration::from_secs(1);

/// What a viewer's socket task sends next, in order.
#[derive(Debug)]
pub enum Outbound {
    /// PTY output, sent as one binary frame.
    Data(Bytes),
    /// One JSON text frame (`resize`, `exit`, `pong`, `error`).
    Text(String),
}

/// How a viewer's socket should close (WebSocket close code and reason).
#[derive(Debug, Clone)]
pub struct CloseReason {
    pub code: u16,
    pub reason: &'static str,
}

#[derive(Debug, Default)]
struct QueueInner {
    items: VecDeque<Outbound>,
    bytes: usize,
    /// Set when a push would have gone over the cap: the absolute offset of the first byte this
    /// viewer did not get. Nothing more is pushed until it has caught up from the ring.
    lagging_from: Option<u64>,
    close: Option<CloseReason>,
    /// When the socket task last took from the queue (or attached).
    last_take: Option<Instant>,
    /// The output offset the socket task has taken everything before (what it holds back by).
    taken_to: u64,
    /// The output offset everything queued ends at.
    pushed_to: u64,
}

/// One viewer's outbound queue, shared by the terminal actor (producer) and the socket task.
#[derive(Debug)]
pub struct ViewerQueue {
    inner: Mutex<QueueInner>,
    cap_bytes: usize,
    wake: Notify,
    /// The session's flow control, told when this viewer takes.
    flow: Option<Arc<Flow>>,
}

/// What the socket task finds when it takes from the queue.
pub enum Taken {
    Items(Vec<Outbound>),
    /// Queue drained and the viewer is lagging: catch up from the ring at this offset.
    Lagging(u64),
    Close(CloseReason),
    Empty,
}

impl ViewerQueue {
    pub fn new(cap_bytes: usize) -> Arc<ViewerQueue> {
        Self::with_flow(cap_bytes, None, 0)
    }

    /// A queue that can hold the session's reader back through `flow` (module doc); its viewer
    /// has the output before offset `at` (the replay it is sent on attach).
    pub fn with_flow(cap_bytes: usize, flow: Option<Arc<Flow>>, at: u64) -> Arc<ViewerQueue> {
        Arc::new(ViewerQueue {
            inner: Mutex::new(QueueInner {
                last_take: Some(Instant::now()),
                taken_to: at,
                pushed_to: at,
                ..QueueInner::default()
            }),
            cap_bytes,
            wake: Notify::new(),
            flow,
        })
    }

    /// Whether this viewer holds the reader back now that the output has reached `read_end`.
    fn holds_back(&self, read_end: u64, ring_bytes: u64) -> bool {
        let Ok(q) = self.inner.lock() else {
            return false;
        };
        let reading = q.last_take.is_some_and(|t| t.elapsed() < READING_GRACE);
        if !reading || q.close.is_some() {
            return false;
        }
        // Measured from what the reader has read, not from what is queued: chunks still on
        // their way to the actor count too. One more read must leave the viewer inside its
        // queue's cap and inside the ring.
        let position = q.lagging_from.unwrap_or(q.taken_to);
        let limit = (self.cap_bytes as u64)
            .min(ring_bytes / 2)
            .saturating_sub(crate::pty::READ_CHUNK_BYTES as u64);
        read_end.saturating_sub(position) > limit
    }

    fn took(&self) {
        if let Some(flow) = &self.flow {
            flow.room.notify_one();
        }
    }

    /// Queues output that starts at absolute offset `offset`. Returns false when the viewer is
    /// (now) lagging and the bytes were not queued.
    pub fn push_data(&self, offset: u64, data: &Bytes) -> bool {
        let Ok(mut q) = self.inner.lock() else {
            return false;
        };
        if q.lagging_from.is_some() || q.close.is_some() {
            return false;
        }
        if q.bytes + data.len() > self.cap_bytes && q.bytes > 0 {
            q.lagging_from = Some(offset);
            drop(q);
            self.wake.notify_one();
            return false;
        }
        q.bytes += data.len();
        q.pushed_to = offset + data.len() as u64;
        q.items.push_back(Outbound::Data(data.clone()));
        drop(q);
        self.wake.notify_one();
        true
    }

    /// Queues a control message. Dropped while lagging (the catch-up path re-sends what
    /// matters: `exit`, and the sizes the bytes that catch it up were printed at) or when even
    /// a small message would overflow the cap.
    pub fn push_text(&self, text: String) {
        let Ok(mut q) = self.inner.lock() else {
            return;
        };
        if q.lagging_from.is_some() || q.close.is_some() || q.bytes + text.len() > self.cap_bytes {
            return;
        }
        q.bytes += text.len();
        q.items.push_back(Outbound::Text(text));
        drop(q);
        self.wake.notify_one();
    }

    /// Asks the socket task to close with `reason` once it has sent what is queued.
    pub fn close(&self, reason: CloseReason) {
        if let Ok(mut q) = self.inner.lock() {
            q.close.get_or_insert(reason);
        }
        self.wake.notify_one();
    }

    /// Ends a lag: called by the actor when the viewer has caught up to the ring's end, in the
    /// same actor step that hands it the last catch-up bytes, so nothing is missed or repeated.
    /// `end` is the ring's end, which the viewer now has.
    pub fn rejoin(&self, end: u64) {
        if let Ok(mut q) = self.inner.lock() {
            q.lagging_from = None;
            q.taken_to = end;
            q.pushed_to = end;
            q.last_take = Some(Instant::now());
        }
        self.took();
    }

    /// Moves a lag on: the viewer got the ring bytes before `offset` and catches up from it.
    pub fn lag_from(&self, offset: u64) {
        if let Ok(mut q) = self.inner.lock() {
            if q.lagging_from.is_some() {
                q.lagging_from = Some(offset);
            }
            q.last_take = Some(Instant::now());
        }
        self.took();
    }

    pub fn is_lagging(&self) -> bool {
        self.inner
            .lock()
            .map(|q| q.lagging_from.is_some())
            .unwrap_or(false)
    }

    /// Takes everything queued (the socket task sends it all before taking again).
    pub fn take(&self) -> Taken {
        let Ok(mut q) = self.inner.lock() else {
            return Taken::Close(CloseReason {
                code: crate::protocol::CLOSE_SESSION_GONE,
                reason: "viewer queue poisoned",
            });
        };
        q.last_take = Some(Instant::now());
        if !q.items.is_empty() {
            q.bytes = 0;
            q.taken_to = q.pushed_to;
            let items = q.items.drain(..).collect();
            drop(q);
            self.took();
            return Taken::Items(items);
        }
        if let Some(close) = &q.close {
            return Taken::Close(close.clone());
        }
        match q.lagging_from {
            Some(offset) => Taken::Lagging(offset),
            None => Taken::Empty,
        }
    }

    /// Resolves after the next push (or at once if one happened since the last wait).
    pub async fn changed(&self) {
        self.wake.notified().await;
    }
}

/// A session's flow control: the viewer queues its reader waits for (module doc).
#[derive(Debug)]
pub struct Flow {
    queues: Mutex<Vec<(u64, Arc<ViewerQueue>)>>,
    room: Notify,
    /// The session's ring size: a catching-up viewer holds back when half of it is ahead.
    ring_bytes: u64,
}

impl Flow {
    pub fn new(ring_bytes: usize) -> Arc<Flow> {
        Arc::new(Flow {
            queues: Mutex::new(Vec::new()),
            room: Notify::new(),
            ring_bytes: ring_bytes as u64,
        })
    }

    pub fn add(&self, viewer: u64, queue: Arc<ViewerQueue>) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.push((viewer, queue));
        }
    }

    pub fn remove(&self, viewer: u64) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.retain(|(id, _)| *id != viewer);
        }
        self.room.notify_one();
    }

    pub fn clear(&self) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.clear();
        }
        self.room.notify_one();
    }

    /// Waits while a reading viewer is behind (output has reached `read_end`); a viewer that
    /// stops reading is waited for at most [`READING_GRACE`].
    pub async fn wait_for_room(&self, read_end: u64) {
        loop {
            let held = self.queues.lock().is_ok_and(|queues| {
                queues
                    .iter()
                    .any(|(_, q)| q.holds_back(read_end, self.ring_bytes))
            });
            if !held {
                return;
            }
            let _ = tokio::time::timeout(READING_GRACE, self.room.notified()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn over_the_cap_a_viewer_lags_from_the_first_missed_offset() {
        let q = ViewerQueue::new(10);
        assert!(q.push_data(0, &data(6)));
        assert!(!q.push_data(6, &data(6)), "would exceed the cap");
        // Nothing more is queued while lagging, even what would fit.
        assert!(!q.push_data(12, &data(1)));
        q.push_text("{}".into());
        match q.take() {
            Taken::Items(items) => assert_eq!(items.len(), 1),
            _ => panic!("queued bytes come first"),
        }
        assert!(matches!(q.take(), Taken::Lagging(6)));
        q.rejoin(0);
        assert!(!q.is_lagging());
        assert!(q.push_data(13, &data(4)));
    }

    #[test]
    fn one_chunk_larger_than_the_cap_still_flows_into_an_empty_queue() {
        let q = ViewerQueue::new(4);
        assert!(q.push_data(0, &data(100)));
        assert!(matches!(q.take(), Taken::Items(_)));
        assert!(matches!(q.take(), Taken::Empty));
    }

    #[test]
    fn close_is_seen_after_what_was_queued() {
        let q = ViewerQueue::new(100);
        q.push_data(0, &data(3));
        q.close(CloseReason {
            code: 4008,
            reason: "slow",
        });
        assert!(matches!(q.take(), Taken::Items(_)));
        assert!(matches!(
            q.take(),
            Taken::Close(CloseReason { code: 4008, .. })
        ));
    }
}
