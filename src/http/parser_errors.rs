//! The JSON error shape for the answers hyper writes itself.
//!
//! A request that cannot be parsed (a 100 KB path: 414; too many or too large headers: 431;
//! bad framing such as `Content-Length: -1`: 400) never reaches our service: hyper writes a bare
//! status line with `content-length: 0` and closes. [`JsonParserErrors`] sits between hyper and
//! the socket and rewrites exactly those heads — recognised by the `x-request-id` header that
//! every response of ours carries and theirs lacks — into the documented JSON error with a new
//! request id, and writes one access-log line for them.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use slog::{info, Logger};
use warp::http::StatusCode;

use crate::error::ApiError;

/// hyper's bare refusal heads are a status line and two or three headers; anything longer is
/// one of our responses or WebSocket traffic.
const HYPER_HEAD_MAX_BYTES: usize = 512;

/// The statuses hyper produces on its own for a request it could not read.
fn parser_error(status: StatusCode) -> Option<ApiError> {
    let err = match status.as_u16() {
        400 => ApiError::new(
            status,
            "bad_request",
            "malformed HTTP request (request line, headers or framing)",
        ),
        413 => ApiError::new(
            status,
            "payload_too_large",
            "request is larger than the server accepts",
        ),
        414 => ApiError::new(
            status,
            "uri_too_long",
            "request target is too long (at most 64 KiB)",
        ),
        431 => ApiError::new(
            status,
            "headers_too_large",
            "request headers are too large or too many (at most 100 headers, 400 KiB in all)",
        ),
        501 => ApiError::new(
            status,
            "not_implemented",
            "request uses an HTTP feature the server does not implement",
        ),
        505 => ApiError::new(
            status,
            "http_version_not_supported",
            "only HTTP/1.0 and HTTP/1.1 are served",
        ),
        _ => return None,
    };
    Some(err)
}

/// The JSON replacement for `head` if it is one of hyper's own bodiless error responses.
fn rewrite(head: &[u8], peer: SocketAddr, log: &Logger) -> Option<Vec<u8>> {
    // Every write passes here, terminal output included: decide on the first bytes and the
    // length before looking at the text. hyper's own refusals are a short head.
    if head.len() > HYPER_HEAD_MAX_BYTES || !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    if !text.ends_with("\r\n\r\n") {
        return None;
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("\r\nx-request-id:") || !lower.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status_line = text.split("\r\n").next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let err = parser_error(StatusCode::from_u16(status).ok()?)?;
    let request_id = super::server::new_request_id();
    let body = err.body(&request_id);
    info!(log, "request";
        "request_id" => &request_id,
        "method" => "-",
        "route" => "-",
        "status" => status,
        "duration_ms" => 0.0,
        "bytes" => body.len(),
        "peer" => %peer.ip(),
        "rejected_by" => "http_parser",
    );
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: {request_id}\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

/// An IO that passes everything through except hyper's bare error heads (see the module doc).
pub struct JsonParserErrors<T> {
    inner: T,
    peer: SocketAddr,
    log: Logger,
    /// A rewritten head still being written, with how much of it is out, and the length of the
    /// caller's buffer it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonParserErrors<T> {
    pub fn new(inner: T, peer: SocketAddr, log: Logger) -> Self {
        JsonParserErrors {
            inner,
            peer,
            log,
            pending: None,
        }
    }
}

impl<T: Read + Unpin> Read for JsonParserErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for JsonParserErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            match rewrite(buf, this.peer, &this.log) {
                Some(out) => this.pending = Some((out, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        while let Some((out, written, stands_for)) = &mut this.pending {
            if *written == out.len() {
                let n = *stands_for;
                this.pending = None;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut this.inner).poll_write(cx, &out[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    // Forwarded, so that hyper keeps writing head and body as separate slices instead of
    // copying every body into its head buffer. hyper's bodiless refusals are one slice, which
    // goes through `poll_write` and its rewrite.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        let first = non_empty.next();
        if this.pending.is_some() || non_empty.next().is_none() {
            let one = first.map_or(&[][..], |b| &b[..]);
            return Pin::new(this).poll_write(cx, one);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    #[test]
    fn hypers_bare_431_becomes_the_json_error() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 12:32:24 GMT\r\n\r\n";
        let out = rewrite(bare, "127.0.0.1:1".parse().unwrap(), &log()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("\"code\":\"headers_too_large\""), "{out}");
        assert!(out.contains("\"request_id\":\""), "{out}");
    }

    #[test]
    fn our_own_responses_pass_untouched() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: abc\r\n\r\n";
        assert!(rewrite(ours, "127.0.0.1:1".parse().unwrap(), &log()).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite(ok, "127.0.0.1:1".parse().unwrap(), &log()).is_none());
    }
}
