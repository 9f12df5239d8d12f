//! Runs a session's [`Screen`] beside its actor, off the byte path to the viewers.
//!
//! The actor hands each PTY read over (a shared `Bytes`, no copy) after it has queued it for the
//! viewers; what is queued is parsed in batches, small ones on the runtime (after the viewers'
//! tasks had their turn), large ones on the blocking pool. The screen never holds back the
//! reader or a viewer, and it costs a flood little: the queue keeps the newest
//! [`PARSE_BUDGET`] bytes (older queued output is dropped), and after a large batch the parser
//! pauses for [`FLOOD_PAUSE`], so a flood is parsed at most [`PARSE_BUDGET`] per pause, resuming
//! at a line start after what it dropped. For scrolling output the screen is the same; a
//! full-screen program's screen is exact again at its next redraw. The newest output is never
//! dropped, so the screen always ends where the output ends. After [`FREEZE_AFTER`] without
//! output the screen is frozen to its snapshot bytes, so an idle session does not keep a grid.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{Screen, Snapshot};

/// The most output bytes queued for the screen; older queued output is dropped (module doc).
pub const PARSE_BUDGET: usize = 64 * 1024;
/// A batch at least this large is parsed on the blocking pool and followed by [`FLOOD_PAUSE`].
pub const FLOOD_BATCH: usize = 16 * 1024;
/// How long the parser rests after a large batch: a flood costs at most one budget per pause.
pub const FLOOD_PAUSE: Duration = Duration::from_millis(50);
/// An idle screen is frozen to its snapshot bytes after this long without output.
pub const FREEZE_AFTER: Duration = Duration::from_secs(10);

struct Feed {
    offset: u64,
    bytes: Bytes,
    cols: u16,
    rows: u16,
}

/// Output waiting for the screen, bounded by [`PARSE_BUDGET`] bytes.
#[derive(Default)]
struct Pending {
    feeds: VecDeque<Feed>,
    bytes: usize,
    closed: bool,
}

struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
}

/// The actor's handle on its screen.
pub struct ScreenFeed {
    queue: Arc<Queue>,
    screen: Arc<Mutex<Screen>>,
    /// The screen's offset after each parsed batch.
    parsed: watch::Receiver<u64>,
    /// The parser task, started with the first output: a session that prints nothing holds
    /// no task for its screen (memory per idle session). Until then, its end of `parsed`.
    task: Result<JoinHandle<()>, watch::Sender<u64>>,
}

impl ScreenFeed {
    pub fn start(cols: u16, rows: u16) -> ScreenFeed {
        let screen = Arc::new(Mutex::new(Screen::new(cols, rows)));
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let (parsed_tx, parsed) = watch::channel(0);
        ScreenFeed {
            queue,
            screen,
            parsed,
            task: Err(parsed_tx),
        }
    }

    /// Output that starts at `offset`, produced while the PTY was `cols` × `rows`.
    pub fn feed(&mut self, offset: u64, bytes: Bytes, (cols, rows): (u16, u16)) {
        if let Err(parsed_tx) = &self.task {
            let parsed_tx = parsed_tx.clone();
            let task = tokio::spawn(run(self.queue.clone(), self.screen.clone(), parsed_tx));
            self.task = Ok(task);
        }
        if let Ok(mut pending) = self.queue.pending.lock() {
            pending.bytes += bytes.len();
            pending.feeds.push_back(Feed {
                offset,
                bytes,
                cols,
                rows,
            });
            // The newest chunk always stays: the screen ends where the output ends.
            while pending.bytes > PARSE_BUDGET && pending.feeds.len() > 1 {
                if let Some(old) = pending.feeds.pop_front() {
                    pending.bytes -= old.bytes.len();
                }
            }
        }
        self.queue.wake.notify_one();
    }
    /// The screen as of the bytes it has parsed so far (its `offset` says up to where).
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.screen.lock().ok().map(|mut s| s.snapshot())
    }

    /// The screen rendered as plain text, and whether older lines have left its scrollback,
    /// once it has parsed everything up to `end`; `None` if it has not (the caller falls back
    /// to the raw bytes).
    pub fn text_at(&self, end: u64) -> Option<(String, bool)> {
        let mut screen = self.screen.lock().ok()?;
        (screen.offset() == end).then(|| (screen.text(), screen.scrollback_full()))
    }

    /// Waits (bounded) until the screen has parsed everything up to `end`.
    pub async fn caught_up(&self, end: u64, within: Duration) -> bool {
        let mut parsed = self.parsed.clone();
        let reached = tokio::time::timeout(within, parsed.wait_for(|at| *at >= end)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

impl Drop for ScreenFeed {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.queue.pending.lock() {
            pending.closed = true;
        }
        if let Ok(task) = &self.task {
            task.abort();
        }
    }
}

/// Takes what is queued: `None` once the feed is dropped.
fn take(queue: &Queue) -> Option<Vec<Feed>> {
    let mut pending = queue.pending.lock().ok()?;
    if pending.closed {
        return None;
    }
    pending.bytes = 0;
    Some(pending.feeds.drain(..).collect())
}

async fn run(queue: Arc<Queue>, screen: Arc<Mutex<Screen>>, parsed: watch::Sender<u64>) {
    let mut frozen = false;
    loop {
        let woken = if frozen {
            queue.wake.notified().await;
            true
        } else {
            tokio::time::timeout(FREEZE_AFTER, queue.wake.notified())
                .await
                .is_ok()
        };
        if !woken {
            if let Ok(mut s) = screen.lock() {
                s.freeze();
            }
            frozen = true;
            continue;
        }
        // The viewers' tasks, woken by the same output, go first: the screen is never in the
        // way of an echo.
        tokio::task::yield_now().await;
        let Some(batch) = take(&queue) else { return };
        if batch.is_empty() {
            continue;
        }
        frozen = false;
        let total: usize = batch.iter().map(|f| f.bytes.len()).sum();
        let offset = if total < FLOOD_BATCH {
            parse(&screen, &batch)
        } else {
            let screen = screen.clone();
            // A parse that panicked ends the feed, as a poisoned screen does.
            tokio::task::spawn_blocking(move || parse(&screen, &batch))
                .await
                .unwrap_or(None)
        };
        let Some(offset) = offset else { return };
        parsed.send_replace(offset);
        if total >= FLOOD_BATCH {
            tokio::time::sleep(FLOOD_PAUSE).await;
        }
    }
}

/// Feeds a batch to the screen; after dropped output (a gap before a feed) it resumes at the
/// next line start, so the dropped bytes leave no half line (the batch's last feed is parsed
/// whole if it has none: the screen always ends where the output ends). Returns its offset.
fn parse(screen: &Mutex<Screen>, batch: &[Feed]) -> Option<u64> {
    let mut s = screen.lock().ok()?;
    let mut seek_line = false;
    for (i, feed) in batch.iter().enumerate() {
        let last = i + 1 == batch.len();
        s.resize(feed.cols, feed.rows);
        seek_line |= feed.offset > s.offset();
        let from = if seek_line {
            match feed.bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    seek_line = false;
                    i + 1
                }
                None if last => 0,
                None => continue,
            }
        } else {
            0
        };
        s.feed(feed.offset + from as u64, &feed.bytes[from..]);
    }
    Some(s.offset())
}
