//! The session actor's messages and the answers it gives (attach, catch-up).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use nix::sys::signal::Signal;
use ractor::RpcReplyPort;
use tokio::sync::OwnedSemaphorePermit;

use super::handover::SessionHandover;
use crate::actors::session_types::SessionInfo;
use crate::actors::viewers::ViewerQueue;
use crate::pty::{ExitInfo, WindowSize};
use crate::replay::Replay;
use crate::screen::recording::Timeline;
use crate::screen::Snapshot;

/// Whether a viewer may type and resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerMode {
    ReadWrite,
    ReadOnly,
}

pub enum TerminalMsg {
    /// A PTY read; the permit goes back to the reader when this is handled.
    Output(Bytes, OwnedSemaphorePermit),
    /// The master reported end of output (EIO) or failed.
    OutputEnded,
    ChildExited(Result<ExitInfo, String>),
    DrainDeadline,
    /// The activity of output that came within `TOUCH_INTERVAL` (5 s) of the last record of
    /// it is recorded now, whether or not more output follows.
    TouchDue,
    Attach {
        mode: ViewerMode,
        since: Option<u64>,
        /// The viewer's device, as people say it (`http::device`).
        client: String,
        reply: RpcReplyPort<Result<Attached, AttachRefused>>,
    },
    Detach(u64),
    /// A lagging viewer asks for ring bytes from `from`.
    Catchup {
        viewer: u64,
        from: u64,
        reply: RpcReplyPort<Catchup>,
    },
    /// A viewer's size; `take`: make it the session's now (else only when it types or no
    /// viewer holds the size).
    Resize {
        viewer: u64,
        size: WindowSize,
        take: bool,
    },
    /// A read-write viewer that does not hold the size typed: the size follows it.
    Typed(u64),
    Info(RpcReplyPort<SessionInfo>),
    /// What `GET …/recording.cast` is made of: the output still in the ring and its timeline.
    /// The caller builds the cast, off the runtime (a large ring takes a while).
    Recording(RpcReplyPort<(Timeline, Replay)>),
    /// Begin the stop sequence; replies with whether the child had already exited.
    Stop(RpcReplyPort<(SessionInfo, bool)>),
    /// Begin the stop sequence and record `reason` on the execution (the reaper: `idle`).
    StopFor(String),
    /// Server shutdown: the stop sequence, and the execution is recorded `interrupted`.
    ShutdownStop,
    Escalate(Signal),
    /// Reload: stop reading, then (`HandOverFinish`, after the reads already queued) pass the
    /// master, ring and child on; `None` if the session ended meanwhile.
    HandOver(RpcReplyPort<Option<SessionHandover>>),
    HandOverFinish(RpcReplyPort<Option<SessionHandover>>),
    /// Fault injection for tests: the actor panics (never compiled into a release build's API).
    #[cfg(any(test, feature = "fault-injection"))]
    Panic,
}

/// What a new viewer gets: the replay `[offset, end)` and its live queue from `end` on.
pub struct Attached {
    pub viewer: u64,
    /// Whether this viewer holds the session's size (its socket tells the actor when it types
    /// while it does not).
    pub holds_size: Arc<AtomicBool>,
    pub size_by: Option<u64>,
    /// The device of the viewer that holds the size.
    pub size_by_client: Option<String>,
    pub queue: Arc<ViewerQueue>,
    pub input: super::Input,
    pub offset: u64,
    pub end: u64,
    pub truncated: bool,
    pub size: WindowSize,
    /// The screen at `offset`, sent before the replay: on first attach and when `since` has
    /// left the ring (DESIGN "Terminal screen on the server").
    pub snapshot: Option<Snapshot>,
    pub replay: Bytes,
    /// `resize` messages to send among the replay's frames, at their offsets (`ReplaySizes`).
    pub replay_sizes: ReplaySizes,
    /// The session's lane (`actors/lanes.rs`): the viewer's socket is served there.
    pub lane: Option<tokio::runtime::Handle>,
}

pub enum AttachRefused {
    TooManyViewers,
}

/// Where the PTY's size changed inside ring bytes sent to a viewer: each offset with the
/// `resize` message to send before the byte at it, oldest first, so that the output before a
/// resize is drawn at the size it was printed at.
pub type ReplaySizes = Vec<(u64, String)>;

pub enum Catchup {
    /// Ring bytes starting at the requested offset; `caught_up` when they reach the end.
    Bytes {
        bytes: Bytes,
        sizes: ReplaySizes,
        caught_up: bool,
    },
    /// The offset has left the ring: the screen, then ring bytes from its offset.
    Snapshot {
        snapshot: Snapshot,
        bytes: Bytes,
        sizes: ReplaySizes,
        caught_up: bool,
    },
    /// The offset has left the ring and there is no screen to send instead.
    Gone,
}
