//! WS `/api/events`: every state change, live.
//!
//! Each subscriber reads from its own position in the event bus's bounded broadcast channel. A
//! subscriber whose socket is slow falls behind only itself: when it has missed events it gets
//! `{"type":"lagged","missed":N}` and continues with the newest ones.

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::actors::events::EventJson;
use crate::protocol::{Control, CLOSE_SERVICE_RESTART};
use crate::state::{shutting_down, AppState, Gauge};

/// Clients send nothing but pings and closes; a small cap keeps memory bounded.
const CLIENT_MESSAGE_MAX_BYTES: usize = 64 * 1024;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let state = state.clone();
    warp::path!("api" / "events")
        .and(warp::get())
        .and(warp::ws())
        .map(move |ws: Ws| {
            let state = state.clone();
            ws.max_message_size(CLIENT_MESSAGE_MAX_BYTES)
                .max_frame_size(CLIENT_MESSAGE_MAX_BYTES)
                .on_upgrade(move |socket| subscriber(socket, state))
                .into_response()
        })
        .boxed()
}

/// A WebSocket's subscription to the event bus; when the bus is restarting, the socket is closed
/// with 1012 (the client reconnects) and there is none.
pub(super) async fn subscribe_or_close(
    state: &AppState,
    tx: &mut SplitSink<WebSocket, Message>,
) -> Option<broadcast::Receiver<EventJson>> {
    let events = state.events.subscribe().await;
    if events.is_none() {
        let _ = tx
            .send(Message::close_with(
                CLOSE_SERVICE_RESTART,
                "event bus restarting",
            ))
            .await;
    }
    events
}

async fn subscriber(socket: WebSocket, state: AppState) {
    let _open = state.sockets.hold();
    let _gauge = Gauge::hold(&state.metrics.ws_events);
    state.http_metrics.websocket_opened("events");
    let (mut tx, mut rx) = socket.split();
    let Some(mut events) = subscribe_or_close(&state, &mut tx).await else {
        return;
    };
    let mut shutdown = state.shutdown.clone();
    loop {
        let outgoing = tokio::select! {
            ev = events.recv() => match ev {
                Ok(event) => Message::text(event.json.clone()),
                Err(RecvError::Lagged(missed)) => {
                    Message::text(Control::Lagged { missed }.to_text())
                }
                Err(RecvError::Closed) => {
                    Message::close_with(CLOSE_SERVICE_RESTART, "event bus restarted; reconnect")
                }
            },
            incoming = rx.next() => match incoming {
                Some(Ok(msg)) if msg.is_close() => break,
                Some(Ok(msg)) if is_ping_request(&msg) => Message::text(Control::Pong.to_text()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => match super::ws_upgrade::close_for_error(&e) {
                    Some((code, reason)) => Message::close_with(code, reason),
                    None => break,
                },
                None => break,
            },
            _ = shutting_down(&mut shutdown) => {
                let (code, why) = crate::handover::going_away();
                Message::close_with(code, why)
            }
        };
        let closing = outgoing.is_close();
        // A stalled client blocks only this send; shutdown still ends it.
        let sent = tokio::select! {
            r = tx.send(outgoing) => r.is_ok(),
            _ = shutting_down(&mut shutdown), if !closing => false,
        };
        if !sent || closing {
            break;
        }
    }
    let _ = tx.close().await;
}

fn is_ping_request(msg: &Message) -> bool {
    msg.to_str()
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .is_some_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("ping"))
}
