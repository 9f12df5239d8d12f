//! Runs a session's [`Screen`] beside its actor, off the byte path to the viewers.
//!
//! The actor hands each PTY read over (a shared `Bytes`, no copy) after it has queued it for the
//! viewers; what is queued is parsed in batches on the blocking pool. The screen never holds
//! back the reader or a viewer: when output comes faster than it parses (a flood), a batch
//! parses only its newest [`PARSE_BUDGET`] bytes, from a line start, and skips the rest — for
//! scrolling output the screen is the same; a full-screen program's screen is exact again at its
//! next redraw. The queue is bounded ([`QUEUED_CHUNKS`]); a chunk that finds it full is skipped
//! the same way. After [`FREEZE_AFTER`] without output the screen is frozen to its snapshot
//! bytes, so an idle session does not keep a whole grid.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Screen, Snapshot};

/// Chunks queued for the screen at most (≤ 64 KiB each: the reader's read size).
pub const QUEUED_CHUNKS: usize = 64;
/// The most bytes one batch parses; older queued output is skipped (see the module doc).
pub const PARSE_BUDGET: usize = 256 * 1024;
/// An idle screen is frozen to its snapshot bytes after this long without output.
pub const FREEZE_AFTER: Duration = Duration::from_secs(10);

struct Feed {
    offset: u64,
    bytes: Bytes,
    cols: u16,
    rows: u16,
}

/// The actor's handle on its screen.
pub struct ScreenFeed {
    tx: mpsc::Sender<Feed>,
    screen: Arc<Mutex<Screen>>,
    /// The screen's offset after each parsed batch.
    parsed: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl ScreenFeed {
    pub fn start(cols: u16, rows: u16) -> ScreenFeed {
        let screen = Arc::new(Mutex::new(Screen::new(cols, rows)));
        let (tx, rx) = mpsc::channel(QUEUED_CHUNKS);
        let (parsed_tx, parsed) = watch::channel(0);
        let task = tokio::spawn(run(rx, screen.clone(), parsed_tx));
        ScreenFeed {
            tx,
            screen,
            parsed,
            task,
        }
    }

    /// Output that starts at `offset`, produced while the PTY was `cols` × `rows`.
    pub fn feed(&self, offset: u64, bytes: Bytes, (cols, rows): (u16, u16)) {
        // Full: the screen is far behind a flood; it skips this chunk (see the module doc).
        let _ = self.tx.try_send(Feed {
            offset,
            bytes,
            cols,
            rows,
        });
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
        self.task.abort();
    }
}

async fn run(mut rx: mpsc::Receiver<Feed>, screen: Arc<Mutex<Screen>>, parsed: watch::Sender<u64>) {
    let mut frozen = false;
    loop {
        let first = if frozen {
            rx.recv().await
        } else {
            match tokio::time::timeout(FREEZE_AFTER, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    if let Ok(mut s) = screen.lock() {
                        s.freeze();
                    }
                    frozen = true;
                    continue;
                }
            }
        };
        let Some(first) = first else { return };
        frozen = false;
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let screen = screen.clone();
        let parsed_now = tokio::task::spawn_blocking(move || {
            let mut s = screen.lock().ok()?;
            let total: usize = batch.iter().map(|f| f.bytes.len()).sum();
            let mut skip = total.saturating_sub(PARSE_BUDGET);
            for feed in &batch {
                s.resize(feed.cols, feed.rows);
                let from = match skip {
                    0 => 0,
                    n if n >= feed.bytes.len() => {
                        skip -= feed.bytes.len();
                        continue;
                    }
                    n => {
                        skip = 0;
                        // Resume at a line start, so the skipped bytes leave no half line.
                        feed.bytes[n..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(feed.bytes.len(), |i| n + i + 1)
                    }
                };
                s.feed(feed.offset + from as u64, &feed.bytes[from..]);
            }
            Some(s.offset())
        });
        match parsed_now.await {
            Ok(Some(offset)) => {
                parsed.send_replace(offset);
            }
            _ => return,
        }
    }
}
