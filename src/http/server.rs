//! The accept loop and the per-request envelope around warp's routes.
//!
//! We serve warp's filter through hyper-util ourselves (warp's own `serve` has no hook before
//! routing) so that every request, whatever route or rejection it meets, passes through one
//! envelope ([`envelope`]) that:
//! - assigns the request id (the caller's `X-Request-ID` if it is 1–64 chars of `[A-Za-z0-9._-]`,
//!   else a new one) and rewrites the header so routes read a trusted value;
//! - records the peer address for the routes ([`PeerAddr`]);
//! - renders every [`ApiError`] (handlers' errors and warp rejections alike) as the JSON error
//!   shape with that request id — warp's default text bodies never reach a client;
//! - echoes `X-Request-ID`, adds the security headers, and writes one access-log line.
//!
//! Shutdown: the listener is dropped (new connections are refused), in-flight requests finish
//! within the grace period, then open keep-alive connections are closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use slog::{info, warn, Logger};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_service::Service;
use warp::reply::Response;
use warp::Filter;

use crate::error::ApiError;
use crate::metrics::{route_template, HttpMetrics};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const REQUEST_ID_MAX_LEN: usize = 64;

/// The peer's socket address, put in the request extensions for routes (`warp::ext::get`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Whether `s` is an acceptable caller-supplied request id.
pub fn is_sane_request_id(s: &str) -> bool {
    (1..=REQUEST_ID_MAX_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A short unique id: the process's boot prefix would add nothing, a counter would collide
/// across restarts, so 16 random bytes in hex (uuid v4 without dashes).
fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Runs the accept loop until `shutdown` turns true, then drains within `grace`.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    log: Logger,
    metrics: Arc<HttpMetrics>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    let service = warp::service(routes);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning on the error.
                    warn!(log, "accept failed"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::state::shutting_down(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true); // terminal keystrokes: no Nagle delay
        let service = service.clone();
        let log = log.clone();
        let metrics = metrics.clone();
        let conn_service = hyper::service::service_fn(move |req| {
            envelope(service.clone(), req, peer, log.clone(), metrics.clone())
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), conn_service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Client resets and half-closed sockets end up here; nothing to act on.
            let _ = conn.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            log,
            "in-flight requests did not finish within the shutdown grace"
        );
    }
}

/// Counts response bytes for the access log and metrics.
pub static RESPONSE_BYTES_TOTAL: AtomicU64 = AtomicU64::new(0);

async fn envelope<S>(
    mut service: S,
    mut req: http::Request<Incoming>,
    peer: SocketAddr,
    log: Logger,
    metrics: Arc<HttpMetrics>,
) -> Result<Response, Infallible>
where
    S: Service<http::Request<Incoming>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let request_id = match req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(id) if is_sane_request_id(id) => id.to_string(),
        _ => new_request_id(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    req.extensions_mut().insert(PeerAddr(peer));
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    let mut resp = match service.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    if let Some(err) = resp.extensions_mut().remove::<ApiError>() {
        let status = err.status;
        if let Some(cause) = &err.internal {
            slog::error!(log, "request failed"; "request_id" => &request_id, "code" => err.code, "cause" => cause);
        }
        let body = err.body(&request_id);
        let headers = std::mem::take(resp.headers_mut());
        resp = Response::new(body.into());
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = err.retry_after_secs {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(*name)
            .or_insert(HeaderValue::from_static(value));
    }
    let bytes = http_body::Body::size_hint(resp.body()).exact().unwrap_or(0);
    RESPONSE_BYTES_TOTAL.fetch_add(bytes, Ordering::Relaxed);
    let status = resp.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    metrics.observe(route_template(&path), method.as_str(), status, elapsed);
    let duration_ms = elapsed * 1000.0;
    info!(log, "request";
        "request_id" => &request_id,
        "method" => method.as_str(),
        "route" => &path,
        "status" => status,
        "duration_ms" => (duration_ms * 1000.0).round() / 1000.0,
        "bytes" => bytes,
        "peer" => %peer.ip(),
    );
    Ok(resp)
}

/// Sent on every response (DESIGN "Security"): no framing, no sniffing, no referrer, and a CSP
/// that allows only our own scripts, styles and WebSocket.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
];
