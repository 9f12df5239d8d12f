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
//! Before a request exists, `connections.rs` decides whether a connection is admitted and how
//! long it may idle, and `parser_errors.rs` gives hyper's own refusals the JSON shape.
//!
//! Shutdown: the listener is dropped (new connections are refused), in-flight requests finish
//! within the grace period, then open keep-alive connections are closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use slog::{info, warn, Logger};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_service::Service;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::connections::{
    trim_memory_after_floods, AcceptBackoff, BusyBody, ConnectionClock, ConnectionGate,
    DeadlineBody, Refusal,
};
use super::errors;
use super::parser_errors::JsonParserErrors;

use crate::error::ApiError;
use crate::metrics::{route_template, HttpMetrics};

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const REQUEST_ID_MAX_LEN: usize = 64;

/// The peer's socket address, put in the request extensions for routes (`warp::ext::get`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The connection's socket, put in the request extensions: a WebSocket upgrade moves it to the
/// reactor of its session's lane (`ws_upgrade.rs`). Only a number: the connection owns the fd.
#[derive(Debug, Clone, Copy)]
pub struct ConnFd(pub std::os::fd::RawFd);

/// Whether `s` is an acceptable caller-supplied request id.
pub fn is_sane_request_id(s: &str) -> bool {
    (1..=REQUEST_ID_MAX_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A short unique id: the process's boot prefix would add nothing, a counter would collide
/// across restarts, so 16 random bytes in hex (uuid v4 without dashes).
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Runs the accept loop until `shutdown` turns true, then drains within `grace`.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    log: Logger,
    metrics: Arc<HttpMetrics>,
    gate: Arc<ConnectionGate>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) where
    F: Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    let service = warp::service(routes);
    let mut backoff = AcceptBackoff::default();
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let trimmer = tokio::spawn(trim_memory_after_floods(gate.clone()));
    // Connections accepted within the last RELOAD_SETTLE: what a reload waits for.
    let mut fresh: Vec<Weak<ConnectionClock>> = Vec::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    backoff.after_error(&e, &log).await;
                    continue;
                }
            },
            _ = crate::state::shutting_down(&mut shutdown) => break,
        };
        backoff.reset();
        let permit = match gate.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(refusal) => {
                refuse(stream, refusal, &refusals);
                continue;
            }
        };
        let _ = stream.set_nodelay(true); // terminal keystrokes: no Nagle delay
        let limits = gate.limits().clone();
        let clock = ConnectionClock::new();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        fresh.retain(|c| c.upgrade().is_some_and(|c| c.age() < RELOAD_SETTLE));
        fresh.push(Arc::downgrade(&clock));
        let service = service.clone();
        let parser_log = log.clone();
        let (log, metrics, conn_clock) = (log.clone(), metrics.clone(), clock.clone());
        let conn_service = hyper::service::service_fn(move |req| {
            // Busy until the response body is written, not only produced: a slow reader of a
            // large body is not "idle".
            let in_flight = conn_clock.request_started();
            let request = Request {
                peer,
                fd,
                log: log.clone(),
                metrics: metrics.clone(),
                body_timeout: limits.body_read_timeout,
            };
            let response = envelope(service.clone(), req, request);
            async move {
                let resp = response.await?;
                Ok::<_, Infallible>(resp.map(|body| BusyBody::new(body, in_flight)))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // hyper's own header timer re-arms between keep-alive requests, so it would close
            // every idle keep-alive connection after the header timeout instead of the
            // keep-alive one: the connection's clock (`idle_expired` below) owns both limits.
            .header_read_timeout(None);
        let io = JsonParserErrors::new(TokioIo::new(stream), peer, parser_log);
        let conn = builder
            .serve_connection_with_upgrades(io, conn_service)
            .into_owned();
        let conn = graceful.watch(conn);
        let (header_timeout, keep_alive) = (
            gate.limits().header_read_timeout,
            gate.limits().keep_alive_timeout,
        );
        tokio::spawn(async move {
            let _permit = permit;
            // Client resets and half-closed sockets end up here; nothing to act on. An idle
            // connection is dropped, which closes it.
            tokio::select! {
                _ = conn => {}
                _ = clock.idle_expired(header_timeout, keep_alive) => {}
            }
        });
    }
    drop(listener);
    trimmer.abort();
    if crate::handover::reloading() {
        // A connection accepted just now has not sent its request yet, and hyper's graceful
        // shutdown closes a connection with no request begun: let it arrive, so a reload
        // answers every connection it accepted (later ones wait in the backlog for the next
        // image, on the listening socket the reload hands over). Only as long as one of them
        // has not begun its request: a reload is a pause every viewer sees.
        let until = tokio::time::Instant::now() + RELOAD_SETTLE;
        let waiting = |fresh: &[Weak<ConnectionClock>]| {
            (fresh.iter()).any(|c| c.upgrade().is_some_and(|c| c.awaiting_first_request()))
        };
        while waiting(&fresh) && tokio::time::Instant::now() < until {
            tokio::time::sleep(RELOAD_SETTLE_POLL).await;
        }
    }
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

/// How long a reload keeps serving connections it accepted before the accept loop stopped.
const RELOAD_SETTLE: Duration = Duration::from_millis(100);
/// How often a reload looks whether those connections have begun their requests.
const RELOAD_SETTLE_POLL: Duration = Duration::from_millis(1);

/// Refused connections answered at once: each holds an fd until its 503 is written, so a flood
/// beyond this is simply closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// A refused client that does not read its 503 within this is cut off.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Answers a connection over a cap with the JSON 503 (`Retry-After: 1`) and closes it.
fn refuse(mut stream: tokio::net::TcpStream, refusal: Refusal, refusals: &Arc<Semaphore>) {
    let Ok(slot) = refusals.clone().try_acquire_owned() else {
        return; // dropping the stream closes it
    };
    let message = match refusal {
        Refusal::ServerFull => "the server has too many open connections (max_connections); retry shortly",
        Refusal::ClientFull => "too many open connections from your address (max_connections_per_client); close some and retry",
    };
    let mut err = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        message,
    );
    err.retry_after_secs = Some(1);
    let body = err.body(&new_request_id());
    let mut out = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _slot = slot;
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
            stream.write_all(&out).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// What the envelope needs to know about the request's connection.
struct Request {
    peer: SocketAddr,
    fd: std::os::fd::RawFd,
    log: Logger,
    metrics: Arc<HttpMetrics>,
    body_timeout: Duration,
}

/// Counts response bytes for the access log and metrics.
pub static RESPONSE_BYTES_TOTAL: AtomicU64 = AtomicU64::new(0);

async fn envelope<S>(
    mut service: S,
    req: http::Request<Incoming>,
    conn: Request,
) -> Result<Response, Infallible>
where
    S: Service<http::Request<DeadlineBody>, Response = Response, Error = Infallible>,
{
    let Request {
        peer,
        fd,
        log,
        metrics,
        body_timeout,
    } = conn;
    let started = Instant::now();
    let request_id = match req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(id) if is_sane_request_id(id) => id.to_string(),
        _ => new_request_id(),
    };
    let body_expired = Arc::new(AtomicBool::new(false));
    let mut req = req.map(|body| DeadlineBody::new(body, body_timeout, body_expired.clone()));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    req.extensions_mut().insert(PeerAddr(peer));
    req.extensions_mut().insert(ConnFd(fd));
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    // HEAD is GET without the body: routes answer the GET and hyper, which knows the request
    // was HEAD, sends the same status and headers and no body.
    if method == http::Method::HEAD {
        *req.method_mut() = http::Method::GET;
    }
    let mut resp = match refuse_before_routing(&method, &path) {
        Some(err) => errors::error_response(err),
        None => match service.call(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        },
    };
    if body_expired.load(Ordering::SeqCst) {
        resp = errors::error_response(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "request body not received within {} s (body_read_timeout_secs)",
                body_timeout.as_secs()
            ),
        ));
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
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

/// Requests the routes must never see: `CONNECT` (we are not a proxy) and targets that are not
/// a path (`*`, an authority) — warp assumes a path and would fail on them.
fn refuse_before_routing(method: &http::Method, path: &str) -> Option<ApiError> {
    if method == http::Method::CONNECT {
        return Some(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "CONNECT is not served: this is not a proxy",
        ));
    }
    if !path.starts_with('/') {
        return Some(ApiError::bad_request(
            "request target must be a path starting with /",
        ));
    }
    None
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
