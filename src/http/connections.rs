//! What a connection may cost before it has proved anything: how many may be open, how many
//! from one address, how long each may sit idle, and what the accept loop does when the process
//! runs out of file descriptors. Every guard is named after the attack it stops (docs/security.md
//! "Hostile connections"):
//!
//! - [`ConnectionGate`] — a flood from one address ([`ConnectionLimits::per_client`]) or many
//!   ([`ConnectionLimits::total`]) gets a JSON 503 and a close instead of an fd each. Trusted
//!   proxies are exempt from the per-address cap (they carry many clients); a small reserve above
//!   the total is kept for the local machine (`127.0.0.1`, `::1`), so a health probe on the
//!   host still gets through while strangers hold the cap.
//! - [`ConnectionClock`] — slowloris: a connection with no request in flight is closed after the
//!   header timeout (before its first request) or the keep-alive timeout (between requests).
//! - [`BusyBody`] — a response body still being written keeps its connection busy (its
//!   [`InFlight`] goes with the body), so a slow reader is never cut off as idle.
//! - [`DeadlineBody`] — a slow or short body: reading it fails after the body timeout and the
//!   server envelope answers 408.
//! - [`AcceptBackoff`] — `EMFILE`: accepting pauses (10 ms doubling to 1 s) instead of spinning,
//!   with one log line a minute, while connections already accepted keep being served.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use slog::{warn, Logger};

/// Connections kept for the local machine above the total cap, so that a health probe on the
/// host is answered while the cap is full.
const LOCAL_RESERVED_CONNECTIONS: usize = 16;
/// First pause after an accept failure for lack of resources; doubled up to the maximum.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one "accept failed" log line per this interval; the others are counted in it.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The caps, resolved from the configuration at start.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_client: usize,
    /// Addresses exempt from `per_client` (the trusted proxies).
    pub exempt: Vec<IpAddr>,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
}

impl ConnectionLimits {
    /// The configured limits, with the total capped at half the open-file limit: the other
    /// half is for terminals, the database and logs, so a flood of connections meets our cap
    /// before the kernel's.
    pub fn from_config(config: &crate::config::Config, log: &Logger) -> ConnectionLimits {
        let fd_limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(u64::MAX);
        let fd_share = usize::try_from(fd_limit / 2).unwrap_or(usize::MAX).max(1);
        let total = config.max_connections.min(fd_share);
        if total < config.max_connections {
            warn!(log, "max_connections lowered to half the open-file limit";
                  "configured" => config.max_connections, "in_force" => total,
                  "open_file_limit" => fd_limit);
        }
        ConnectionLimits {
            total,
            per_client: config.max_connections_per_client,
            exempt: config.trusted_proxies.clone(),
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            keep_alive_timeout: config.keep_alive_timeout,
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ServerFull,
    ClientFull,
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
pub struct ConnectionGate {
    limits: ConnectionLimits,
    open: Mutex<OpenConnections>,
}

#[derive(Debug, Default)]
struct OpenConnections {
    total: usize,
    /// The most open at once since [`trim_memory_after_floods`] last looked.
    peak: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    gate: Arc<ConnectionGate>,
    ip: IpAddr,
}

impl ConnectionGate {
    pub fn new(limits: ConnectionLimits) -> Arc<ConnectionGate> {
        Arc::new(ConnectionGate {
            limits,
            open: Mutex::new(OpenConnections::default()),
        })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Admits a connection from `ip`, or says which cap it hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let reserve = if is_local_machine(ip) {
            LOCAL_RESERVED_CONNECTIONS
        } else {
            0
        };
        if open.total >= self.limits.total + reserve {
            return Err(Refusal::ServerFull);
        }
        let from_ip = open.per_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= self.limits.per_client && !self.limits.exempt.contains(&ip) && reserve == 0 {
            return Err(Refusal::ClientFull);
        }
        open.total += 1;
        open.peak = open.peak.max(open.total);
        *open.per_ip.entry(ip).or_insert(0) += 1;
        Ok(ConnectionPermit {
            gate: self.clone(),
            ip,
        })
    }

    /// Open connections now (for health and metrics).
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// (peak since the last call, open now); the peak restarts from now.
    fn take_peak(&self) -> (usize, usize) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let peak = open.peak;
        open.peak = open.total;
        (peak, open.total)
    }
}

/// How often [`trim_memory_after_floods`] looks, and how many connections must have gone
/// since the peak before it gives memory back.
const TRIM_CHECK_INTERVAL: Duration = Duration::from_secs(5);
const TRIM_AFTER_CONNECTIONS_GONE: usize = 256;

/// After a flood of connections leaves, glibc keeps their freed buffers in its arenas and the
/// server's RSS stays at the flood's level; this hands them back to the kernel (`malloc_trim`)
/// once a few hundred connections have gone. Runs until aborted.
pub async fn trim_memory_after_floods(gate: Arc<ConnectionGate>) {
    let mut tick = tokio::time::interval(TRIM_CHECK_INTERVAL);
    loop {
        tick.tick().await;
        let (peak, now) = gate.take_peak();
        if peak.saturating_sub(now) >= TRIM_AFTER_CONNECTIONS_GONE {
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases free memory of the allocator's own arenas.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The host itself: the only peers the reserve is for (a proxy on the host is one of them, so
/// behind a proxy its own connection limits are what keeps strangers out; see docs/security.md).
fn is_local_machine(ip: IpAddr) -> bool {
    ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
}

/// When a connection last became idle (no request in flight), to close it after the header or
/// keep-alive timeout. Shared by the connection's watchdog and its requests.
#[derive(Debug)]
pub struct ConnectionClock {
    epoch: Instant,
    idle_since_ms: AtomicU64,
    in_flight: AtomicUsize,
    served: AtomicBool,
}

/// Marks a request in flight on its connection until dropped.
pub struct InFlight(Arc<ConnectionClock>);

impl ConnectionClock {
    pub fn new() -> Arc<ConnectionClock> {
        Arc::new(ConnectionClock {
            epoch: Instant::now(),
            idle_since_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
        })
    }

    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Accepted, but no request has begun on it yet.
    pub fn awaiting_first_request(&self) -> bool {
        !self.served.load(Ordering::SeqCst) && self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// How long ago the connection was accepted.
    pub fn age(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Resolves when the connection has been idle for longer than it may be.
    pub async fn idle_expired(&self, header_timeout: Duration, keep_alive: Duration) {
        loop {
            let limit = if self.served.load(Ordering::SeqCst) {
                keep_alive
            } else {
                header_timeout
            };
            let wait = if self.in_flight.load(Ordering::SeqCst) > 0 {
                limit
            } else {
                let idle = Duration::from_millis(
                    self.now_ms()
                        .saturating_sub(self.idle_since_ms.load(Ordering::SeqCst)),
                );
                match limit.checked_sub(idle) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        clock.served.store(true, Ordering::SeqCst);
        clock.idle_since_ms.store(clock.now_ms(), Ordering::SeqCst);
        clock.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request body that fails once `deadline` passes while it is still being waited for, and
/// says so in `expired` (the envelope then answers 408 instead of the route's error).
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl DeadlineBody {
    pub fn new(inner: Incoming, within: Duration, expired: Arc<AtomicBool>) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
            expired,
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(Into::into))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err("request body not received in time".into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The accept loop's answer to a failed `accept`.
pub struct AcceptBackoff {
    delay: Duration,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Default for AcceptBackoff {
    fn default() -> AcceptBackoff {
        AcceptBackoff {
            delay: ACCEPT_BACKOFF_FIRST,
            last_log: None,
            suppressed: 0,
        }
    }
}

impl AcceptBackoff {
    /// An accept succeeded: the next failure starts from the shortest pause again.
    pub fn reset(&mut self) {
        self.delay = ACCEPT_BACKOFF_FIRST;
    }

    /// Pauses after a failure for lack of resources (logged at most once a minute); other
    /// failures (a client that reset before we accepted) are ignored.
    pub async fn after_error(&mut self, e: &io::Error, log: &Logger) {
        let out_of_resources = matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !out_of_resources {
            return;
        }
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= ACCEPT_LOG_INTERVAL)
        {
            warn!(log, "accept failed; pausing new connections while already accepted ones are served";
                  "error" => %e, "same_errors_since_last_line" => self.suppressed);
            self.last_log = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(ACCEPT_BACKOFF_MAX);
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has written it all (or
/// dropped it), so the idle clock does not run while a large body is still going out.
pub struct BusyBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> BusyBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> BusyBody<B> {
        BusyBody {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for BusyBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_client: usize) -> Arc<ConnectionGate> {
        ConnectionGate::new(ConnectionLimits {
            total,
            per_client,
            exempt: vec![IpAddr::from([10, 0, 0, 9])],
            header_read_timeout: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(1),
        })
    }

    #[test]
    fn one_address_cannot_take_more_than_its_share() {
        let g = gate(10, 2);
        let a = IpAddr::from([10, 0, 0, 1]);
        let _p1 = g.admit(a).unwrap();
        let p2 = g.admit(a).unwrap();
        assert_eq!(g.admit(a).unwrap_err(), Refusal::ClientFull);
        assert!(g.admit(IpAddr::from([10, 0, 0, 2])).is_ok());
        drop(p2);
        assert!(g.admit(a).is_ok(), "a freed place can be taken again");
    }

    #[test]
    fn a_trusted_proxy_is_not_capped_per_address_and_the_host_keeps_a_reserve() {
        let g = gate(3, 1);
        let proxy = IpAddr::from([10, 0, 0, 9]);
        let held: Vec<_> = (0..3).map(|_| g.admit(proxy).unwrap()).collect();
        assert_eq!(
            g.admit(IpAddr::from([10, 0, 0, 1])).unwrap_err(),
            Refusal::ServerFull
        );
        assert!(g.admit(IpAddr::from([127, 0, 0, 1])).is_ok());
        drop(held);
        assert_eq!(g.open(), 0);
    }
}
