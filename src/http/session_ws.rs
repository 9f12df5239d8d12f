//! WS `/api/terminals/{id}/ws?since=OFFSET&mode=rw|ro` (and `/api/agent-sessions/{id}/ws`):
//! one viewer of a session, exactly as DESIGN "Terminal WebSocket protocol".
//!
//! Order on the wire: `attached` JSON, the replay `[offset, end)` as binary, then live output.
//! Two halves run side by side: *outgoing* drains this viewer's bounded queue (see
//! `actors/viewers.rs`) to the socket, catching up from the ring with `resync` when it fell
//! behind; *incoming* forwards binary input to the PTY and handles `resize` and `ping`. A slow
//! socket blocks only its own outgoing half.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use ractor::rpc::CallResult;
use ractor::ActorRef;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use warp::reply::Response;
use warp::Filter;

use super::json::{raw_query, reject, Query};
use super::ws_frames::{frames, replay_frames, snapshot_frames};
use super::ws_upgrade::{upgrade, ServerSocket, Upgrade, Upgraded};
use crate::actors::session_types::{is_valid_session_id, SessionKind};
use crate::actors::sessions::CALL_TIMEOUT;
use crate::actors::terminal::{AttachRefused, Attached, Catchup, TerminalMsg, ViewerMode};
use crate::actors::viewers::{CloseReason, Taken, ViewerQueue};
use crate::protocol::{
    ClientMsg, Control, ServerMsg, CLOSE_NORMAL, CLOSE_NOT_FOUND as CLOSE_NO_SESSION,
    CLOSE_TOO_MANY_VIEWERS, CLOSE_TOO_SLOW,
};
use crate::pty::WindowSize;
use crate::state::{shutting_down, AppState, Gauge};

/// Client frames carry keystrokes, pastes and small JSON; 64 KiB bounds a paste per frame.
const CLIENT_MESSAGE_MAX_BYTES: usize = 64 * 1024;
/// A viewer whose socket takes not one frame (≤ 256 KiB) in this long has stopped reading: it is
/// dropped and counted as 4008. A viewer that reads, however slowly, is never closed: it catches
/// up from the ring, or from a snapshot once its offset has left the ring.
const STALLED_VIEWER: std::time::Duration = std::time::Duration::from_secs(60);

pub fn route(state: &AppState, kind: SessionKind) -> warp::filters::BoxedFilter<(Response,)> {
    let state = state.clone();
    super::sessions::session_path(kind)
        .and(warp::path("ws"))
        .and(warp::path::end())
        .and(warp::get())
        .and(raw_query())
        .and(warp::header::headers_cloned())
        .and(upgrade())
        .and_then(
            move |id: String, query: String, headers: warp::http::HeaderMap, ws: Upgrade| {
                let state = state.clone();
                async move {
                    let q = Query::parse(&query, &["since", "mode"]).map_err(reject)?;
                    let since = q
                        .int("since", 0, i64::MAX)
                        .map_err(reject)?
                        .map(|n| n as u64);
                    let mode = q
                        .choice("mode", &["rw", "ro"], |m| match m {
                            "rw" => Some(ViewerMode::ReadWrite),
                            "ro" => Some(ViewerMode::ReadOnly),
                            _ => None,
                        })
                        .map_err(reject)?
                        .unwrap_or(ViewerMode::ReadWrite);
                    let client = super::device::label(
                        headers
                            .get(warp::http::header::USER_AGENT)
                            .and_then(|v| v.to_str().ok()),
                    );
                    let who = Who {
                        since,
                        mode,
                        client,
                    };
                    Ok::<_, warp::Rejection>(ws.accept(CLIENT_MESSAGE_MAX_BYTES, move |socket| {
                        viewer(socket, state, kind, id, who)
                    }))
                }
            },
        )
        .boxed()
}

type Tx = SplitSink<ServerSocket, Message>;
type Rx = SplitStream<ServerSocket>;

/// What a viewer asked for on attach, and its device's name.
struct Who {
    since: Option<u64>,
    mode: ViewerMode,
    client: String,
}

/// Sends a close frame and returns its code (counted by the caller, `viewer`). Boxed, like every
/// await that runs once or rarely here: an idle viewer's task then holds only what it waits on
/// (memory per session, docs/benchmarks.md).
async fn close(tx: &mut Tx, code: u16, reason: &'static str) -> Option<u16> {
    Box::pin(async move {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = tx.send(Message::Close(Some(frame))).await;
        let _ = tx.close().await;
        Some(code)
    })
    .await
}

/// One viewer, counted while it is open. A block, not an `async fn`: an `async fn` keeps a
/// second copy of each argument it takes by value, for the whole life of the socket.
#[allow(clippy::manual_async_fn)] // on purpose: see the doc above
fn viewer(
    socket: Upgraded,
    state: AppState,
    kind: SessionKind,
    id: String,
    who: Who,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let open = state.sockets.hold();
        let label = match kind {
            SessionKind::Terminal => "terminal",
            SessionKind::AgentSession => "agent",
        };
        state.http_metrics.websocket_opened(label);
        let mode = who.mode;
        let mut attached = Box::pin(attach(&state, kind, &id, who)).await;
        let lane = match &mut attached {
            Ok((_, attached)) => attached.lane.take(),
            Err(_) => None,
        };
        let serve = async move {
            let _open = open;
            let _gauge = Gauge::hold(match kind {
                SessionKind::Terminal => &state.metrics.ws_terminals,
                SessionKind::AgentSession => &state.metrics.ws_agents,
            });
            let socket = socket.into_socket().await;
            let sent = match (attached, socket) {
                (Ok((actor, attached)), None) => {
                    // The connection is gone: nothing to serve, and the actor must not wait for
                    // this viewer.
                    let _ = actor.cast(TerminalMsg::Detach(attached.viewer));
                    None
                }
                (Err(_), None) => None,
                (Err((code, reason)), Some(socket)) => {
                    close(&mut socket.split().0, code, reason).await
                }
                (Ok((actor, attached)), Some(socket)) => {
                    // Split before serving: the future then holds two small halves for the
                    // socket's lifetime, not the whole socket by value.
                    let (mut tx, rx) = socket.split();
                    let shutdown = state.shutdown.clone();
                    serve_viewer(&mut tx, rx, shutdown, &id, mode, actor, attached).await
                }
            };
            if let Some(code) = sent {
                state.http_metrics.viewer_closed(code);
            }
        };
        match lane {
            // On the session's lane, with the rest of its byte path (`actors/lanes.rs`); this
            // task ends here.
            Some(lane) => drop(lane.spawn(serve)),
            None => serve.await,
        }
    }
}

/// Serves one attached viewer; returns the close code the server sent, if it sent one.
async fn serve_viewer(
    tx: &mut Tx,
    rx: Rx,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    id: &str,
    mode: ViewerMode,
    actor: ActorRef<TerminalMsg>,
    attached: Box<Attached>,
) -> Option<u16> {
    let viewer_id = attached.viewer;
    let queue = attached.queue.clone();
    let input = attached.input.clone();
    let holds_size = attached.holds_size.clone();
    let sent = tokio::select! {
        sent = async {
            match Box::pin(greet(tx, id, attached, &mut shutdown)).await {
                Some(sent) => sent,
                None => outgoing(tx, &actor, viewer_id, &queue, &mut shutdown).await,
            }
        } => sent,
        broken = incoming(rx, &actor, viewer_id, mode, &queue, input, &holds_size) => match broken {
            Some((code, reason)) => close(tx, code, reason).await,
            None => None,
        },
    };
    let _ = actor.cast(TerminalMsg::Detach(viewer_id));
    let _ = tx.close().await;
    sent
}

/// The session's actor and this viewer's attachment, or the close code and reason to send.
async fn attach(
    state: &AppState,
    kind: SessionKind,
    id: &str,
    who: Who,
) -> Result<(ActorRef<TerminalMsg>, Box<Attached>), (u16, &'static str)> {
    let Who {
        since,
        mode,
        client,
    } = who;
    let actor = match is_valid_session_id(id) {
        true => state.sessions.lookup(kind, id).await.ok(),
        false => None,
    };
    let no_session = (CLOSE_NO_SESSION, "no such session");
    let actor = actor.ok_or(no_session)?;
    let reply = actor
        .call(
            |reply| TerminalMsg::Attach {
                mode,
                since,
                client,
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await;
    match reply {
        // Boxed: it is moved on once more, and each async fn it passes through keeps a copy.
        Ok(CallResult::Success(Ok(attached))) => Ok((actor, Box::new(attached))),
        Ok(CallResult::Success(Err(AttachRefused::TooManyViewers))) => {
            Err((CLOSE_TOO_MANY_VIEWERS, "too many viewers"))
        }
        _ => Err(no_session),
    }
}

/// The first frames: `attached`, the snapshot if there is one, and the replay. Returns as
/// [`send_or_stall`] does.
async fn greet(
    tx: &mut Tx,
    session: &str,
    attached: Box<Attached>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Option<u16>> {
    let Attached {
        viewer,
        size_by,
        size_by_client,
        offset,
        end,
        truncated,
        size,
        snapshot,
        replay,
        replay_sizes,
        ..
    } = *attached;
    let hello = ServerMsg::Attached {
        session: &session,
        viewer,
        size_by,
        size_by_client: size_by_client.as_deref(),
        offset,
        end,
        cols: size.cols,
        rows: size.rows,
        truncated,
    };
    let mut first = vec![Message::text(hello.to_text())];
    if let Some(snapshot) = snapshot {
        first.extend(snapshot_frames(snapshot));
    }
    first.extend(replay_frames(offset, replay, replay_sizes));
    send_or_stall(tx, first, shutdown).await
}

/// Everything the server sends after [`greet`], in order. Returns when the socket is done.
async fn outgoing(
    tx: &mut Tx,
    actor: &ActorRef<TerminalMsg>,
    viewer: u64,
    queue: &ViewerQueue,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<u16> {
    let mut resyncing = false;
    loop {
        let batch = match queue.take() {
            Taken::Items(items) => frames(items),
            Taken::Close(CloseReason { code, reason }) => {
                return close(tx, code, reason).await;
            }
            Taken::Lagging(from) => {
                match Box::pin(catch_up(tx, actor, viewer, from, &mut resyncing)).await {
                    Ok(batch) => batch,
                    Err(closed) => return closed,
                }
            }
            Taken::Empty => {
                tokio::select! {
                    _ = queue.changed() => continue,
                    _ = shutting_down(shutdown) => {
                        let (code, why) = crate::handover::going_away();
                        return close(tx, code, why).await;
                    }
                }
            }
        };
        if let Some(sent) = send_or_stall(tx, batch, shutdown).await {
            if sent.is_none() && *shutdown.borrow() {
                // Cut short by a stop or reload: the viewer still learns why (1001/1012), and
                // resumes from the last byte it received.
                let (code, why) = crate::handover::going_away();
                return close(tx, code, why).await;
            }
            return sent;
        }
    }
}

/// What a viewer that fell behind is sent next: the output from `from` on, out of the ring, or a
/// snapshot once `from` has left it. `Err` is what `outgoing` returns (the socket was closed).
async fn catch_up(
    tx: &mut Tx,
    actor: &ActorRef<TerminalMsg>,
    viewer: u64,
    from: u64,
    resyncing: &mut bool,
) -> Result<Vec<Message>, Option<u16>> {
    let reply = actor
        .call(
            |reply| TerminalMsg::Catchup {
                viewer,
                from,
                reply,
            },
            Some(CALL_TIMEOUT),
        )
        .await;
    match reply {
        Ok(CallResult::Success(Catchup::Bytes {
            bytes,
            sizes,
            caught_up,
        })) => {
            let mut batch = Vec::new();
            if !*resyncing {
                batch.push(Message::text(Control::Resync { offset: from }.to_text()));
            }
            *resyncing = !caught_up;
            batch.extend(replay_frames(from, bytes, sizes));
            Ok(batch)
        }
        Ok(CallResult::Success(Catchup::Snapshot {
            snapshot,
            bytes,
            sizes,
            caught_up,
        })) => {
            *resyncing = !caught_up;
            let start = snapshot.offset;
            let mut batch: Vec<Message> = snapshot_frames(snapshot).collect();
            batch.extend(replay_frames(start, bytes, sizes));
            Ok(batch)
        }
        Ok(CallResult::Success(Catchup::Gone)) => {
            Err(close(tx, CLOSE_TOO_SLOW, "viewer too slow; reconnect").await)
        }
        _ => Err(close(tx, CLOSE_NORMAL, "session ended").await),
    }
}

/// Sends a batch; `None` when it went out, else what `outgoing` returns: nothing when the
/// socket is gone or the server stops, 4008 when a frame sat unsent for [`STALLED_VIEWER`].
async fn send_or_stall(
    tx: &mut Tx,
    batch: Vec<Message>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Option<u16>> {
    let mut stalled = false;
    // Boxed: its timers and the sink's futures are only alive while a batch goes out.
    match Box::pin(send_all(tx, batch, shutdown, &mut stalled)).await {
        true => None,
        // The close frame cannot get through a full socket either: drop the connection.
        false => Some(stalled.then_some(CLOSE_TOO_SLOW)),
    }
}

/// Sends a batch with one flush; false when the socket is gone or the server is stopping, or
/// when one frame took longer than [`STALLED_VIEWER`] to go out (`stalled` is then set).
async fn send_all(
    tx: &mut Tx,
    batch: Vec<Message>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    stalled: &mut bool,
) -> bool {
    let send = async {
        for msg in batch {
            match tokio::time::timeout(STALLED_VIEWER, tx.feed(msg)).await {
                Ok(fed) => fed.map_err(|_| false)?,
                Err(_) => return Err(true),
            }
        }
        match tokio::time::timeout(STALLED_VIEWER, tx.flush()).await {
            Ok(flushed) => flushed.map_err(|_| false),
            Err(_) => Err(true),
        }
    };
    tokio::select! {
        sent = send => match sent {
            Ok(()) => true,
            Err(stall) => {
                *stalled = stall;
                false
            }
        },
        _ = shutting_down(shutdown) => false,
    }
}

fn error_json(code: &str, message: &str) -> String {
    Control::Error { code, message }.to_text()
}

/// Everything the client sends. Returns when the client closes or the socket fails, with the
/// close code owed to a client that broke the protocol.
async fn incoming(
    mut rx: SplitStream<ServerSocket>,
    actor: &ActorRef<TerminalMsg>,
    viewer: u64,
    mode: ViewerMode,
    queue: &ViewerQueue,
    input: crate::actors::terminal::Input,
    holds_size: &std::sync::atomic::AtomicBool,
) -> Option<(u16, &'static str)> {
    while let Some(msg) = rx.next().await {
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) => return super::ws_upgrade::close_for_error(&e),
        };
        if msg.is_close() {
            break;
        }
        if msg.is_binary() {
            if mode == ViewerMode::ReadOnly {
                queue.push_text(error_json(
                    "read_only",
                    "this viewer is read-only (mode=ro)",
                ));
                continue;
            }
            // The size follows the last viewer to type: one relaxed load on the input path.
            if !holds_size.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = actor.cast(TerminalMsg::Typed(viewer));
            }
            // Waits while the child is not reading: back-pressure on this client only. After
            // the child exited the channel is closed and input goes nowhere.
            let _ = input.send(msg.into_data()).await;
            continue;
        }
        let Ok(text) = msg.to_text() else { continue };
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Ping) => queue.push_text(Control::Pong.to_text()),
            Ok(ClientMsg::Resize { .. }) if mode == ViewerMode::ReadOnly => {
                queue.push_text(error_json(
                    "read_only",
                    "this viewer is read-only (mode=ro)",
                ));
            }
            Ok(ClientMsg::Resize { cols, rows, take }) => {
                let max = super::terminals::MAX_CELLS;
                if (1..=max).contains(&cols) && (1..=max).contains(&rows) {
                    let size = WindowSize {
                        cols: cols as u16,
                        rows: rows as u16,
                    };
                    let _ = actor.cast(TerminalMsg::Resize { viewer, size, take });
                } else {
                    queue.push_text(error_json(
                        "invalid_resize",
                        "cols and rows must be whole numbers from 1 to 1000",
                    ));
                }
            }
            Err(_) => queue.push_text(error_json(
                "bad_message",
                "expected {\"type\":\"resize\",\"cols\":N,\"rows\":N} or {\"type\":\"ping\"}",
            )),
        }
    }
    None
}
