//! A session's viewers: attaching one (replay and live queue), catching a lagging one up from the
//! scrollback, and a viewer's resize, told to the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use slog::warn;

use super::{AttachRefused, Attached, Catchup, ReplaySizes, TerminalState, Viewer, ViewerMode};
use crate::actors::viewers::ViewerQueue;
use crate::protocol::Control;
use crate::pty::WindowSize;
use crate::screen::recording::Size;
use crate::screen::Snapshot;

impl TerminalState {
    pub(super) fn attach(
        &mut self,
        mode: ViewerMode,
        since: Option<u64>,
        client: String,
    ) -> Result<Attached, AttachRefused> {
        if self.viewers.len() >= self.deps.max_viewers {
            return Err(AttachRefused::TooManyViewers);
        }
        // A byte-exact `since` inside the ring gets raw bytes; a first attach, or a `since` that
        // left the ring, gets the screen and the ring bytes the screen has not parsed yet.
        let lost = since.is_some_and(|s| s < self.replay.start());
        let snapshot = match since {
            Some(_) if !lost => None,
            _ => self.snapshot(),
        };
        let from = match (&snapshot, since) {
            (Some(snap), _) => snap.offset,
            (None, Some(since)) => since,
            (None, None) => self.replay.safe_start(),
        };
        let replay = self.replay.read_from(from);
        let queue = ViewerQueue::with_flow(
            self.deps.viewer_queue_bytes,
            Some(self.flow.clone()),
            replay.end,
        );
        if let Some(exit) = self.final_exit_json() {
            queue.push_text(exit);
        }
        let viewer = self.next_viewer;
        self.next_viewer += 1;
        let holds_size = Arc::new(AtomicBool::new(false));
        self.flow.add(viewer, queue.clone());
        self.viewers.insert(
            viewer,
            Viewer {
                queue: queue.clone(),
                mode,
                size: None,
                holds_size: holds_size.clone(),
                client,
            },
        );
        // The device whose last viewer held the size gets it back when it comes back.
        if mode == ViewerMode::ReadWrite
            && self.size_by.is_none()
            && self.size_left_by.as_deref() == self.viewers.get(&viewer).map(|v| v.client.as_str())
        {
            self.size_by = Some(viewer);
            self.size_left_by = None;
            holds_size.store(true, Ordering::Relaxed);
        }
        let size_by_client = self.size_holder_client();
        // `attached` tells the size now, a snapshot the size it was taken at.
        let told = snapshot
            .as_ref()
            .map_or((self.size.cols, self.size.rows), |s| (s.cols, s.rows));
        let replay_end = replay.start + replay.bytes.len() as u64;
        let replay_sizes = self.replay_sizes(replay.start, replay_end, Some(told));
        Ok(Attached {
            viewer,
            holds_size,
            size_by: self.size_by,
            size_by_client,
            queue,
            input: self.input.clone(),
            offset: replay.start,
            end: replay.end,
            truncated: replay.truncated || lost,
            size: self.size,
            snapshot,
            replay: Bytes::from(replay.bytes),
            replay_sizes,
            lane: self.lane.as_ref().map(|lane| lane.handle().clone()),
        })
    }

    /// The screen, as a snapshot the ring goes on from (`ScreenFeed::snapshot_from`).
    fn snapshot(&mut self) -> Option<Snapshot> {
        let replay = &self.replay;
        self.screen.snapshot_from(
            replay.start(),
            |most| {
                let tail = replay.read_from(replay.end().saturating_sub(most as u64));
                (tail.start, Bytes::from(tail.bytes))
            },
            (self.size.cols, self.size.rows),
        )
    }

    pub(super) fn catchup(&mut self, viewer: u64, from: u64) -> Catchup {
        // Fell out of the ring: the screen as it is, then what the screen has not parsed yet.
        let snapshot = match from < self.replay.start() {
            true => match self.snapshot() {
                Some(snapshot) => Some(snapshot),
                None => return Catchup::Gone,
            },
            false => None,
        };
        let from = snapshot.as_ref().map_or(from, |s| s.offset);
        let mut replay = self.replay.read_from(from);
        let cap = self.deps.viewer_queue_bytes.max(1);
        let caught_up = replay.bytes.len() <= cap;
        replay.bytes.truncate(cap);
        if let Some(v) = self.viewers.get(&viewer) {
            if caught_up {
                v.queue.rejoin(self.replay.end());
                if let Some(exit) = self.final_exit_json() {
                    v.queue.push_text(exit);
                }
            } else {
                // The next catch-up goes on after these bytes (not from `from` again).
                v.queue.lag_from(replay.start + replay.bytes.len() as u64);
            }
        }
        // A lagging viewer was told no resize after the offset it lags from (its queue takes
        // none): the bytes that catch it up tell each one among them. A snapshot tells its own.
        let told = snapshot.as_ref().map(|s| (s.cols, s.rows));
        let sizes = self.replay_sizes(replay.start, replay.start + replay.bytes.len() as u64, told);
        let bytes = Bytes::from(replay.bytes);
        match snapshot {
            Some(snapshot) => Catchup::Snapshot {
                snapshot,
                bytes,
                sizes,
                caught_up,
            },
            None => Catchup::Bytes {
                bytes,
                sizes,
                caught_up,
            },
        }
    }

    /// A viewer's size. The session takes it when `take` is set, when this viewer already
    /// holds the size, or when none does and none left (`size_left_by`); otherwise it is kept
    /// for when this viewer types.
    pub(super) fn resize(&mut self, from: u64, size: WindowSize, take: bool) {
        let Some(viewer) = self.viewers.get_mut(&from) else {
            return;
        };
        if viewer.mode != ViewerMode::ReadWrite {
            return;
        }
        viewer.size = Some(size);
        let unheld = self.size_by.is_none() && self.size_left_by.is_none();
        if take || unheld || self.size_by == Some(from) {
            self.take_size(from);
        }
    }

    /// The device of the viewer that holds the size, or of the last one that did.
    pub(super) fn size_holder_client(&self) -> Option<String> {
        match self.size_by.and_then(|holder| self.viewers.get(&holder)) {
            Some(holder) => Some(holder.client.clone()),
            None => self.size_left_by.as_deref().map(str::to_string),
        }
    }

    /// A viewer has gone; if it held the size, its device is remembered (`size_left_by`).
    pub(super) fn detached(&mut self, viewer: u64) {
        self.flow.remove(viewer);
        let Some(gone) = self.viewers.remove(&viewer) else {
            return;
        };
        if self.size_by == Some(viewer) {
            self.size_by = None;
            self.size_left_by = Some(gone.client.into_boxed_str());
        }
    }

    /// A read-write viewer that does not hold the size typed: the size follows it.
    pub(super) fn typed(&mut self, from: u64) {
        if self.size_by != Some(from)
            && self
                .viewers
                .get(&from)
                .is_some_and(|v| v.mode == ViewerMode::ReadWrite)
        {
            self.take_size(from);
        }
    }

    /// `from` holds the size now; the PTY takes its size (if it told one) and every viewer is
    /// told, `from` too (so it knows it holds the size).
    fn take_size(&mut self, from: u64) {
        if self.final_status.is_some() {
            return;
        }
        let size = self
            .viewers
            .get(&from)
            .and_then(|v| v.size)
            .unwrap_or(self.size);
        if self.size_by == Some(from) && size == self.size {
            return;
        }
        self.size_by = Some(from);
        self.size_left_by = None;
        for (id, viewer) in &self.viewers {
            viewer.holds_size.store(*id == from, Ordering::Relaxed);
        }
        if size != self.size {
            if let Err(e) = self.resizer.resize(size) {
                warn!(self.log, "resize failed"; "error" => %e);
                return;
            }
            self.size = size;
            self.timeline
                .resize(self.replay.end(), size.cols, size.rows);
        }
        let text = self.resize_text((size.cols, size.rows));
        for viewer in self.viewers.values() {
            viewer.queue.push_text(text.clone());
        }
    }

    /// A `resize` message for `(cols, rows)`, naming who holds the size now.
    fn resize_text(&self, (cols, rows): Size) -> String {
        Control::Resize {
            cols,
            rows,
            by: self.size_by,
            by_client: self.size_holder_client().as_deref(),
        }
        .to_text()
    }

    /// The `resize` messages for ring bytes `[from, to)` sent to a viewer ([`ReplaySizes`]):
    /// first the size in force before `from` if the viewer was `told` another just before them
    /// (`None`: it has that size already), then each resize from `from` on, and, when they
    /// reach the ring's end, the size now if the last one told is another (marks are bounded:
    /// the oldest may have been dropped).
    fn replay_sizes(&self, from: u64, to: u64, told: Option<Size>) -> ReplaySizes {
        let now = (self.size.cols, self.size.rows);
        let (at_start, after) = self.timeline.sizes(from, to);
        let mut sizes: Vec<(u64, Size)> = Vec::new();
        if told.is_some_and(|told| told != at_start) {
            sizes.push((from, at_start));
        }
        sizes.extend(after);
        if to >= self.replay.end() && sizes.last().is_some_and(|&(_, size)| size != now) {
            sizes.push((to, now));
        }
        sizes
            .into_iter()
            .map(|(offset, size)| (offset, self.resize_text(size)))
            .collect()
    }
}
