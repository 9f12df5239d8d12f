//! Prometheus metrics: what `/metrics` exposes and how request routes become labels.
//!
//! Counters that the hot paths bump are plain atomics or prometheus vectors owned here; gauges
//! that describe current state (pool, sockets, sessions, process) are read at scrape time.
//! Route labels are templates (`/api/tasks/{id}`), never raw paths, so a scan of random URLs
//! cannot blow up the number of series.

use crate::protocol::{
    CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_TOO_MANY_VIEWERS, CLOSE_TOO_SLOW,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Every route the server has, as label templates. A path that matches none is `other`
/// (under /api) or `static` (the UI's assets).
pub const ROUTE_TEMPLATES: &[&str] = &[
    "/api/health",
    "/api/system/health",
    "/api/system/health/detailed",
    "/api/auth/login",
    "/api/auth/logout",
    "/api/auth/me",
    "/api/auth/session",
    "/api/tasks",
    "/api/tasks/{id}",
    "/api/tasks/{id}/run",
    "/api/executions",
    "/api/executions/{id}",
    "/api/executions/{id}/output",
    "/api/executions/{id}/cancel",
    "/api/executions/{id}/events",
    "/api/events",
    "/api/terminals",
    "/api/terminals/{id}",
    "/api/terminals/{id}/ws",
    "/api/agents",
    "/api/agents/{id}",
    "/api/agents/{id}/session",
    "/api/agent-sessions",
    "/api/agent-sessions/{id}",
    "/api/agent-sessions/{id}/ws",
    "/metrics",
];

/// The label for a request path.
pub fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    for template in ROUTE_TEMPLATES {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(t, s)| *t == "{id}" && !s.is_empty() || t == s)
        {
            return template;
        }
    }
    if path.starts_with("/api/") || path == "/api" {
        "other"
    } else {
        "static"
    }
}

/// Request latency buckets, in seconds: sub-millisecond API calls up to slow 10 s outliers.
const LATENCY_BUCKETS_S: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// WebSocket kinds, as the `kind` label of `websocket_connections*` (the same as the gauges').
pub const WEBSOCKET_KINDS: &[&str] = &["events", "terminal", "agent", "run_events"];

/// Close codes the server sends a terminal or agent viewer (DESIGN "Terminal WebSocket
/// protocol"); each starts at 0 so `rate()` and alerts see the series before the first close.
pub const VIEWER_CLOSE_CODES: &[u16] = &[
    CLOSE_NORMAL,
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY_VIEWERS,
];

/// Counters bumped while serving; the rest of `/metrics` is read at scrape time.
pub struct HttpMetrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    /// WebSockets accepted, by kind: with the gauge, shows churn (clients reconnecting).
    pub websockets_opened: IntCounterVec,
    /// Closes the server sent a session viewer, by code (4008: the viewer stopped reading).
    pub viewer_closes: IntCounterVec,
}

impl HttpMetrics {
    pub fn new() -> HttpMetrics {
        let registry = Registry::new();
        let requests = counter_vec(
            "http_requests_total",
            "HTTP requests by route template, method and status.",
            &["route", "method", "status"],
        );
        // Registering a fixed, well-formed descriptor cannot fail; if a future edit makes it
        // fail, metrics are missing rather than the server down.
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from request to response head, by route template.",
            )
            .buckets(LATENCY_BUCKETS_S.to_vec()),
            &["route"],
        )
        .unwrap_or_else(|_| unreachable_histogram());
        let websockets_opened = counter_vec(
            "websocket_connections_opened_total",
            "WebSocket connections accepted, by kind.",
            &["kind"],
        );
        let viewer_closes = counter_vec(
            "websocket_viewer_closes_total",
            "Close frames the server sent terminal and agent viewers, by close code.",
            &["code"],
        );
        for kind in WEBSOCKET_KINDS {
            websockets_opened.with_label_values(&[*kind]);
        }
        for code in VIEWER_CLOSE_CODES {
            viewer_closes.with_label_values(&[code.to_string().as_str()]);
        }
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(duration.clone()));
        let _ = registry.register(Box::new(websockets_opened.clone()));
        let _ = registry.register(Box::new(viewer_closes.clone()));
        HttpMetrics {
            registry,
            requests,
            duration,
            websockets_opened,
            viewer_closes,
        }
    }

    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.duration.with_label_values(&[route]).observe(seconds);
    }

    /// A WebSocket of `kind` (one of [`WEBSOCKET_KINDS`]) was accepted.
    pub fn websocket_opened(&self, kind: &str) {
        self.websockets_opened.with_label_values(&[kind]).inc();
    }

    /// The server closed a session viewer with `code`.
    pub fn viewer_closed(&self, code: u16) {
        self.viewer_closes
            .with_label_values(&[code.to_string().as_str()])
            .inc();
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| {
        IntCounterVec::new(Opts::new("unused_metric", "unused"), &["x"])
            .unwrap_or_else(|_| std::process::abort())
    })
}

fn unreachable_histogram() -> HistogramVec {
    HistogramVec::new(HistogramOpts::new("unused_histogram", "unused"), &["x"])
        .unwrap_or_else(|_| std::process::abort())
}

/// Free and total bytes of the filesystem holding `dir` (for unprivileged users: `f_bavail`,
/// what a write by the server can still use). `None` if the directory cannot be examined.
/// Blocking: call from a blocking thread.
pub fn filesystem_space(dir: &std::path::Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let fragment = st.fragment_size() as u64;
    Some((
        st.blocks_available() as u64 * fragment,
        st.blocks() as u64 * fragment,
    ))
}

/// Process figures from /proc/self, as the standard `process_*` series.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub cpu_seconds: f64,
    /// Seconds since the Unix epoch; the kernel's record, so it is the same at every scrape
    /// (alerts count its changes as restarts).
    pub start_time_s: f64,
}

/// Reads [`ProcessStats`]; a figure that cannot be read is 0. Blocking (procfs reads): call
/// from a blocking thread.
pub fn process_stats() -> ProcessStats {
    let page = 4096u64;
    let resident_bytes = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * page)
        .unwrap_or(0);
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the comm field: state is index 0, utime 11, stime 12.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, after)| after.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    let cpu_seconds = match (field(11), field(12)) {
        (Some(utime), Some(stime)) => (utime + stime) / ticks,
        _ => 0.0,
    };
    ProcessStats {
        resident_bytes,
        open_fds,
        cpu_seconds,
        start_time_s: start_time_s(ticks),
    }
}

/// When this process started, in seconds since the Unix epoch: it never changes, so it is read
/// from /proc once (the boot time plus the process's `starttime`, through the one parser of
/// `/proc/<pid>/stat` in `pty`), not at every scrape. 0 when it cannot be read.
fn start_time_s(ticks: f64) -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let boot_time_s = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        let start = crate::pty::process_start_time(std::process::id() as i32);
        match (boot_time_s, start) {
            (Some(boot), Some(start)) => boot + start as f64 / ticks,
            _ => 0.0,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_templates() {
        assert_eq!(route_template("/api/tasks/42"), "/api/tasks/{id}");
        assert_eq!(route_template("/api/tasks/42/"), "/api/tasks/{id}");
        assert_eq!(route_template("/api/tasks"), "/api/tasks");
        assert_eq!(
            route_template("/api/terminals/ab12/ws"),
            "/api/terminals/{id}/ws"
        );
        assert_eq!(
            route_template("/api/system/health/detailed"),
            "/api/system/health/detailed"
        );
        assert_eq!(route_template("/api/nope/1/2/3"), "other");
        assert_eq!(route_template("/assets/app.js"), "static");
        assert_eq!(route_template("/metrics"), "/metrics");
    }
}
