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
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::reject;
use super::server::ConnFd;
use crate::error::ApiError;

/// The server side of one upgraded connection.
pub type ServerSocket = WebSocketStream<ViewerIo>;

/// Read buffer per viewer (see the module doc).
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes a client may send right behind its upgrade request, before the 101, that are still
/// carried over when its socket moves (`Upgraded::take_socket`); beyond, the socket stays.
const READ_AHEAD_MAX: usize = 64 * 1024;

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
    /// The connection's socket (`server::ConnFd`).
    fd: Option<RawFd>,
}

/// Matches a WebSocket upgrade request (RFC 6455 §4.2.1); anything else is a 400 JSON error.
pub fn upgrade() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<ConnFd>())
        .and_then(
            |headers: HeaderMap, on_upgrade: Option<OnUpgrade>, fd: Option<ConnFd>| async move {
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
                    Ok(Upgrade {
                        key,
                        on_upgrade,
                        fd: fd.map(|ConnFd(fd)| fd),
                    })
                }
                _ => Err(reject(ApiError::bad_request(
                    "this endpoint is a WebSocket: send a WebSocket upgrade request (version 13)",
                ))),
            }
            },
        )
}

impl Upgrade {
    /// Answers 101 and runs `handler` on the connection once it has switched. `max_message_bytes`
    /// caps each client message and frame.
    pub fn accept<F, U>(self, max_message_bytes: usize, handler: F) -> Response
    where
        F: FnOnce(Upgraded) -> U + Send + 'static,
        U: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let (on_upgrade, fd) = (self.on_upgrade, self.fd);
        // Boxed: the task keeps its captures for the socket's whole life, and the handler's
        // (the session's state, ids) are only needed to start it.
        let handler = Box::new(handler);
        tokio::spawn(async move {
            // A client that goes away mid-handshake leaves nothing to do.
            let Ok(io) = on_upgrade.await else {
                return;
            };
            handler(Upgraded {
                io,
                fd,
                max_message_bytes,
            })
            .await;
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

/// A connection that has switched to WebSocket, not yet wrapped: it can still move to the
/// reactor of another runtime (a session's lane, `actors/lanes.rs`).
pub struct Upgraded {
    io: hyper::upgrade::Upgraded,
    fd: Option<RawFd>,
    max_message_bytes: usize,
}

impl Upgraded {
    /// The WebSocket. Its socket is registered with the reactor of the runtime this runs on:
    /// the session's lane then hears its keystrokes itself, with no wakeup of the main runtime
    /// in between. `None` when the socket could not be registered (the connection is closed).
    pub async fn into_socket(self) -> Option<ServerSocket> {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes));
        let (io, read_ahead) = self.take_socket()?;
        Some(WebSocketStream::from_partially_read(io, read_ahead, Role::Server, Some(config)).await)
    }

    /// The socket, moved to this runtime's reactor, and the bytes hyper had already read past
    /// the request (a client that did not wait for the 101). hyper's connection is kept when
    /// the move is not possible: no fd, an fd that cannot be duplicated, a closed connection.
    fn take_socket(self) -> Option<(ViewerIo, Vec<u8>)> {
        let mut io = TokioIo::new(self.io);
        let Some(fd) = self.fd else {
            return Some((ViewerIo::Kept(io), Vec::new()));
        };
        // What hyper holds comes out first; then the socket says it has nothing more.
        let mut read_ahead = Vec::new();
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 1024];
        loop {
            let mut chunk = ReadBuf::new(&mut buf);
            match Pin::new(&mut io).poll_read(&mut cx, &mut chunk) {
                Poll::Pending => break,
                Poll::Ready(Ok(())) if !chunk.filled().is_empty() => {
                    read_ahead.extend_from_slice(chunk.filled());
                    if read_ahead.len() > READ_AHEAD_MAX {
                        return Some((ViewerIo::Kept(io), read_ahead));
                    }
                }
                // End of stream or an error: the WebSocket will see it where it is.
                Poll::Ready(_) => return Some((ViewerIo::Kept(io), read_ahead)),
            }
        }
        // SAFETY: `fd` is the connection's socket, which `io` still owns (it was read from the
        // request of this very connection); F_DUPFD_CLOEXEC only makes a new descriptor.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if copy < 0 {
            return Some((ViewerIo::Kept(io), read_ahead));
        }
        // SAFETY: `copy` was just made above and nothing else owns it.
        let copy = unsafe { OwnedFd::from_raw_fd(copy) };
        // Deregisters the socket from the reactor it was on and closes the original fd.
        drop(io);
        let socket = std::net::TcpStream::from(copy);
        let socket = tokio::net::TcpStream::from_std(socket).ok()?;
        Some((ViewerIo::Moved(socket), read_ahead))
    }
}

/// The byte stream under a viewer's WebSocket.
pub enum ViewerIo {
    /// The connection's own socket, on the reactor of the runtime that serves the viewer.
    Moved(tokio::net::TcpStream),
    /// hyper's upgraded connection, on the main runtime's reactor.
    Kept(TokioIo<hyper::upgrade::Upgraded>),
}

impl AsyncRead for ViewerIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ViewerIo::Moved(s) => Pin::new(s).poll_read(cx, buf),
            ViewerIo::Kept(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ViewerIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ViewerIo::Moved(s) => Pin::new(s).poll_write(cx, buf),
            ViewerIo::Kept(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ViewerIo::Moved(s) => Pin::new(s).poll_flush(cx),
            ViewerIo::Kept(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ViewerIo::Moved(s) => Pin::new(s).poll_shutdown(cx),
            ViewerIo::Kept(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
