//! The WebSocket upgrade for session viewers, done with tokio-tungstenite directly.
//!
//! warp's `ws()` cannot size tungstenite's read buffer, and tungstenite zero-fills the whole
//! buffer (128 KiB by default) before its first read: 128 KiB of resident memory per viewer,
//! four times the rest of a session's cost (docs/benchmarks.md). Viewers send keystrokes and
//! small JSON, so a 1 KiB buffer is plenty: tungstenite grows it to the frame's length for a
//! large paste, which then takes one `read` per KiB (a paste is rare; an idle viewer is the
//! common case). Same crate and version as warp uses, so nothing new is compiled.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::reject;
use crate::error::ApiError;

/// The server side of one upgraded connection.
pub type ServerSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Read buffer per viewer (see the module doc).
const READ_BUFFER_BYTES: usize = 1024;

/// The RFC 6455 close code and reason owed to a client whose frames broke the protocol:
/// 1009 for a message or frame over the cap, 1007 for a text message that is not UTF-8, 1002
/// for any other protocol violation (unmasked frame, RSV bits, bad opcode). `None` for
/// failures that are not the client's protocol errors (a reset connection). Looks through
/// wrappers such as `warp::Error`.
pub fn close_for_error(err: &(dyn std::error::Error + 'static)) -> Option<(u16, &'static str)> {
    use crate::protocol::{CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG};
    use tokio_tungstenite::tungstenite::Error;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(e) = e.downcast_ref::<Error>() {
            return match e {
                Error::Capacity(_) => Some((CLOSE_TOO_BIG, "message too big")),
                Error::Utf8(_) => Some((CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8")),
                Error::Protocol(_) => Some((CLOSE_PROTOCOL_ERROR, "WebSocket protocol error")),
                _ => None,
            };
        }
        current = e.source();
    }
    None
}

/// A validated upgrade request, ready to be accepted.
pub struct Upgrade {
    key: String,
    on_upgrade: OnUpgrade,
}

/// Matches a WebSocket upgrade request (RFC 6455 §4.2.1); anything else is a 400 JSON error.
pub fn upgrade() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .and_then(
            |headers: HeaderMap, on_upgrade: Option<OnUpgrade>| async move {
                let has = |name: &str, token: &str| {
                    headers.get_all(name).iter().any(|v| {
                        v.to_str().is_ok_and(|v| {
                            v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
                        })
                    })
                };
                let key = headers
                    .get("sec-websocket-key")
                    .and_then(|k| k.to_str().ok())
                    .map(str::to_string);
                match (key, on_upgrade) {
                (Some(key), Some(on_upgrade))
                    if has("connection", "upgrade")
                        && has("upgrade", "websocket")
                        && has("sec-websocket-version", "13") =>
                {
                    Ok(Upgrade { key, on_upgrade })
                }
                _ => Err(reject(ApiError::bad_request(
                    "this endpoint is a WebSocket: send a WebSocket upgrade request (version 13)",
                ))),
            }
            },
        )
}

impl Upgrade {
    /// Answers 101 and runs `handler` on the socket once the connection has switched.
    /// `max_message_bytes` caps each client message and frame.
    pub fn accept<F, U>(self, max_message_bytes: usize, handler: F) -> Response
    where
        F: FnOnce(ServerSocket) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        // Boxed: the task keeps its captures for the socket's whole life, and the handler's
        // (the session's state, ids) are only needed to start it.
        let handler = Box::new(handler);
        tokio::spawn(async move {
            // A client that goes away mid-handshake leaves nothing to do.
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let config = WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER_BYTES)
                .max_message_size(Some(max_message_bytes))
                .max_frame_size(Some(max_message_bytes));
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            handler(socket).await;
        });
        let mut resp = Response::new(Vec::<u8>::new().into());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = resp.headers_mut();
        headers.insert(
            "connection",
            warp::http::HeaderValue::from_static("upgrade"),
        );
        headers.insert("upgrade", warp::http::HeaderValue::from_static("websocket"));
        if let Ok(v) = warp::http::HeaderValue::from_str(&accept) {
            headers.insert("sec-websocket-accept", v);
        }
        resp
    }
}
