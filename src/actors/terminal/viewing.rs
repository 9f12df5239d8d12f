//! A session's viewers: attaching one (replay and live queue), catching a lagging one up from the
//! scrollback, and a viewer's resize, told to the others.

use bytes::Bytes;
use slog::warn;

use super::{AttachRefused, Attached, Catchup, TerminalState, Viewer, ViewerMode};
use crate::actors::viewers::ViewerQueue;
use crate::protocol::Control;
use crate::pty::WindowSize;

impl TerminalState {
    pub(super) fn attach(
        &mut self,
        mode: ViewerMode,
        since: Option<u64>,
    ) -> Result<Attached, AttachRefused> {
        if self.viewers.len() >= self.deps.max_viewers {
            return Err(AttachRefused::TooManyViewers);
        }
        let replay = self
            .replay
            .read_from(since.unwrap_or_else(|| self.replay.safe_start()));
        let queue = ViewerQueue::new(self.deps.viewer_queue_bytes);
        if let Some(exit) = self.final_exit_json() {
            queue.push_text(exit);
        }
        let viewer = self.next_viewer;
        self.next_viewer += 1;
        self.viewers.insert(
            viewer,
            Viewer {
                queue: queue.clone(),
                mode,
            },
        );
        Ok(Attached {
            viewer,
            queue,
            input: self.input.clone(),
            offset: replay.start,
            end: replay.end,
            truncated: replay.truncated,
            size: self.size,
            replay: Bytes::from(replay.bytes),
        })
    }

    pub(super) fn catchup(&mut self, viewer: u64, from: u64) -> Catchup {
        if from < self.replay.start() {
            return Catchup::Gone;
        }
        let mut replay = self.replay.read_from(from);
        let cap = self.deps.viewer_queue_bytes.max(1);
        let caught_up = replay.bytes.len() <= cap;
        replay.bytes.truncate(cap);
        if caught_up {
            if let Some(v) = self.viewers.get(&viewer) {
                v.queue.rejoin();
                if let Some(exit) = self.final_exit_json() {
                    v.queue.push_text(exit);
                }
            }
        }
        Catchup::Bytes {
            bytes: Bytes::from(replay.bytes),
            caught_up,
        }
    }

    pub(super) fn resize(&mut self, from: u64, size: WindowSize) {
        let allowed = self
            .viewers
            .get(&from)
            .is_some_and(|v| v.mode == ViewerMode::ReadWrite);
        if !allowed || self.final_status.is_some() || size == self.size {
            return;
        }
        if let Err(e) = self.resizer.resize(size) {
            warn!(self.log, "resize failed"; "error" => %e);
            return;
        }
        self.size = size;
        let text = Control::Resize {
            cols: size.cols,
            rows: size.rows,
        }
        .to_text();
        for (id, viewer) in &self.viewers {
            if *id != from {
                viewer.queue.push_text(text.clone());
            }
        }
    }
}
