//! Login failures per client address: at most [`LOGIN_FAILURES_PER_WINDOW`] a minute.
//!
//! A fixed window per address: the first failure opens a one-minute window; once it holds the
//! maximum, every login from that address (right or wrong) gets 429 with `Retry-After` until the
//! window ends, so guessing cannot continue by other means. IPv6 addresses count per /64, as one
//! host usually owns the whole prefix. The map is bounded ([`LIMITER_MAX_ADDRESSES`]): when it is
//! full, ended windows are dropped, and if none has ended the oldest window goes.
//! A std `Mutex` guards it: held for a few map operations, never across an `.await`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per address per window (the issue: 5 a minute).
pub const LOGIN_FAILURES_PER_WINDOW: u32 = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; ~50 bytes each, so well under 1 MB.
pub const LIMITER_MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

pub struct LoginLimiter {
    windows: Mutex<HashMap<IpAddr, Window>>,
    max_failures: u32,
    window: Duration,
    capacity: usize,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(
            LOGIN_FAILURES_PER_WINDOW,
            LOGIN_WINDOW,
            LIMITER_MAX_ADDRESSES,
        )
    }
}

/// The key an address is counted under.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window: Duration, capacity: usize) -> LoginLimiter {
        LoginLimiter {
            windows: Mutex::new(HashMap::new()),
            max_failures,
            window,
            capacity: capacity.max(1),
        }
    }

    /// `Err(retry_after)` while `ip` has used up its failures.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut map) = self.windows.lock() else {
            return Ok(()); // poisoned only by a panic elsewhere; fail open for one request
        };
        match map.get(&key(ip)).copied() {
            Some(w) if now.duration_since(w.started) >= self.window => {
                map.remove(&key(ip));
                Ok(())
            }
            Some(w) if w.failures >= self.max_failures => {
                Err(self.window.saturating_sub(now.duration_since(w.started)))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login from `ip`.
    pub fn fail(&self, ip: IpAddr) {
        let now = Instant::now();
        let Ok(mut map) = self.windows.lock() else {
            return;
        };
        let k = key(ip);
        if !map.contains_key(&k) && map.len() >= self.capacity {
            let window = self.window;
            map.retain(|_, w| now.duration_since(w.started) < window);
            if map.len() >= self.capacity {
                if let Some(oldest) = map.iter().min_by_key(|(_, w)| w.started).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        let w = map.entry(k).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now.duration_since(w.started) >= self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    /// A successful login clears the address's failures.
    pub fn succeed(&self, ip: IpAddr) {
        if let Ok(mut map) = self.windows.lock() {
            map.remove(&key(ip));
        }
    }

    pub fn tracked(&self) -> usize {
        self.windows.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let l = LoginLimiter::new(2, Duration::from_millis(200), 10);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.check(ip).is_ok());
        l.fail(ip);
        assert!(l.check(ip).is_ok());
        l.fail(ip);
        let wait = l.check(ip).unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(220));
        assert!(l.check(ip).is_ok());
    }

    #[test]
    fn map_stays_bounded() {
        let l = LoginLimiter::new(5, Duration::from_secs(60), 100);
        for i in 0..1000u32 {
            l.fail(IpAddr::V4(i.into()));
        }
        assert!(l.tracked() <= 100);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = LoginLimiter::new(1, Duration::from_secs(60), 10);
        l.fail("2001:db8::1".parse().unwrap());
        assert!(l.check("2001:db8::2".parse().unwrap()).is_err());
        assert!(l.check("2001:db9::1".parse().unwrap()).is_ok());
    }
}
