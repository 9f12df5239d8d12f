//! `GET /metrics`: Prometheus text format (monitor or admin credential).
//!
//! Request counters come from the registry the envelope feeds; everything that describes the
//! present (sockets, sessions, pool, executions by status, process) is read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use prometheus::Encoder;
use slog::warn;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::db::execution_stats;
use crate::metrics::{filesystem_space, process_stats, ProcessStats};
use crate::state::AppState;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let state = state.clone();
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().map(move || state.clone()))
        .and_then(scrape)
        .boxed()
}

/// What the scrape reads off the runtime: `/proc/self`, and the space left where the server writes.
#[derive(Default)]
struct HostStats {
    process: ProcessStats,
    data_dir: Option<(u64, u64)>,
    log_dir: Option<(u64, u64)>,
}

/// A scrape answers even when the database does not (pool exhausted, disk gone): `health_ok`
/// turns 0 and the database-derived series are left out, while the pool, socket and process
/// series an operator needs at that moment are still there.
async fn scrape(state: AppState) -> Result<Response, Rejection> {
    let stats = state.db.read(|c| execution_stats::read(c)).await;
    if let Err(e) = &stats {
        warn!(state.log, "metrics: the database did not answer"; "error" => %e);
    }
    let (data_dir, log_dir) = (state.config.data_dir.clone(), state.config.log_dir.clone());
    let host = tokio::task::spawn_blocking(move || HostStats {
        process: process_stats(),
        data_dir: filesystem_space(&data_dir),
        log_dir: filesystem_space(&log_dir),
    })
    .await
    .unwrap_or_default();
    let process = host.process;

    let mut out = Vec::with_capacity(16 * 1024);
    let _ = prometheus::TextEncoder::new().encode(&state.http_metrics.registry.gather(), &mut out);
    let mut text = String::from_utf8(out).unwrap_or_default();
    let m = &state.metrics;
    let pool = state.db.stats();
    let mut gauge = |name: &str, help: &str, kind: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(text, "{name}{labels} {v}");
        }
    };
    gauge(
        "websocket_connections",
        "Open WebSocket connections by kind.",
        "gauge",
        &[
            ("{kind=\"events\"}", m.ws_events.load(Relaxed) as f64),
            ("{kind=\"terminal\"}", m.ws_terminals.load(Relaxed) as f64),
            ("{kind=\"agent\"}", m.ws_agents.load(Relaxed) as f64),
            (
                "{kind=\"run_events\"}",
                m.ws_run_events.load(Relaxed) as f64,
            ),
        ],
    );
    gauge(
        "sessions_live",
        "Live sessions by kind.",
        "gauge",
        &[
            (
                "{kind=\"terminal\"}",
                m.sessions_terminals.load(Relaxed) as f64,
            ),
            ("{kind=\"agent\"}", m.sessions_agents.load(Relaxed) as f64),
        ],
    );
    gauge(
        "health_ok",
        "1 when the database answers (detailed health is ok), 0 when it does not.",
        "gauge",
        &[("", if stats.is_ok() { 1.0 } else { 0.0 })],
    );
    gauge(
        "sessions_max",
        "The configured max_sessions: terminal and agent sessions together.",
        "gauge",
        &[("", state.config.max_sessions as f64)],
    );
    if let Ok(stats) = &stats {
        let exec: Vec<(String, f64)> = stats
            .by_type_status
            .iter()
            .map(|(t, s, n)| (format!("{{type=\"{t}\",status=\"{s}\"}}"), *n as f64))
            .collect();
        let exec_refs: Vec<(&str, f64)> = exec.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        gauge(
            "executions_total",
            "Executions recorded, by type and status.",
            "gauge",
            &exec_refs,
        );
        gauge(
            "runs_queued",
            "Agent runs waiting for a slot.",
            "gauge",
            &[("", stats.queued as f64)],
        );
        gauge(
            "runs_queued_oldest_age_seconds",
            "How long the oldest queued agent run has waited (0 when none waits).",
            "gauge",
            &[("", stats.oldest_queued_age_s)],
        );
        gauge(
            "runs_failed_in_a_row",
            "Agent runs that failed since the last one that succeeded (at most 100).",
            "gauge",
            &[("", stats.failed_in_a_row as f64)],
        );
    }
    let space = |pick: fn((u64, u64)) -> u64| -> Vec<(&'static str, f64)> {
        [
            ("{dir=\"data\"}", host.data_dir),
            ("{dir=\"logs\"}", host.log_dir),
        ]
        .into_iter()
        .filter_map(|(label, v)| v.map(|v| (label, pick(v) as f64)))
        .collect()
    };
    gauge(
        "filesystem_avail_bytes",
        "Bytes the server can still write on the filesystem of its data or log directory.",
        "gauge",
        &space(|(avail, _)| avail),
    );
    gauge(
        "filesystem_size_bytes",
        "Size of the filesystem holding the data or log directory.",
        "gauge",
        &space(|(_, size)| size),
    );
    gauge(
        "pty_output_bytes_total",
        "Bytes read from session PTYs.",
        "counter",
        &[("", m.pty_output_bytes.load(Relaxed) as f64)],
    );
    gauge(
        "db_pool_connections",
        "SQLite pool connections by state.",
        "gauge",
        &[
            ("{state=\"idle\"}", pool.idle as f64),
            ("{state=\"in_use\"}", pool.in_use as f64),
            ("{state=\"max\"}", pool.size as f64),
        ],
    );
    gauge(
        "db_checkout_timeouts_total",
        "Requests that got no DB connection within the checkout timeout (503 db_busy).",
        "counter",
        &[("", pool.checkout_timeouts_total as f64)],
    );
    gauge(
        "reaper_runs_total",
        "Reaper passes.",
        "counter",
        &[("", state.reaper.runs.load(Relaxed) as f64)],
    );
    gauge(
        "reaped_sessions_total",
        "Sessions the reaper stopped (idle) or dropped from memory (exited), by reason.",
        "counter",
        &[
            (
                "{reason=\"idle\"}",
                state.reaper.reaped_idle.load(Relaxed) as f64,
            ),
            (
                "{reason=\"exited\"}",
                state.reaper.reaped_exited.load(Relaxed) as f64,
            ),
        ],
    );
    gauge(
        "reaper_last_duration_seconds",
        "How long the last reaper pass took.",
        "gauge",
        &[("", state.reaper.last_duration_us.load(Relaxed) as f64 / 1e6)],
    );
    gauge(
        "log_records_dropped_total",
        "Log records dropped because the writer could not keep up.",
        "counter",
        &[("", m.log_records_dropped.load(Relaxed) as f64)],
    );
    gauge(
        "process_resident_memory_bytes",
        "Resident memory.",
        "gauge",
        &[("", process.resident_bytes as f64)],
    );
    gauge(
        "process_open_fds",
        "Open file descriptors.",
        "gauge",
        &[("", process.open_fds as f64)],
    );
    gauge(
        "process_start_time_seconds",
        "When the server started, in seconds since the Unix epoch.",
        "gauge",
        &[("", process.start_time_s)],
    );
    let reload = crate::handover::report();
    gauge(
        "reload_generation",
        "Reloads (exec-in-place) since the server first started.",
        "gauge",
        &[("", reload.generation as f64)],
    );
    gauge(
        "reload_adopted_sessions",
        "Sessions this image took over from the one before the last reload, or after a crash from systemd's fd store.",
        "gauge",
        &[("", reload.adopted_sessions as f64)],
    );
    gauge(
        "fd_store_fds",
        "File descriptors held in systemd's fd store (PTY masters and rings: sessions that survive a crash).",
        "gauge",
        &[("", reload.fd_store_fds as f64)],
    );
    gauge(
        "reload_last_success",
        "1 if the last reload succeeded, 0 if it failed (absent before any reload).",
        "gauge",
        &match reload.last_reload_outcome.as_deref() {
            Some(o) => vec![("", f64::from(u8::from(o == "ok")))],
            None => vec![],
        },
    );
    gauge(
        "process_cpu_seconds_total",
        "User and system CPU time.",
        "counter",
        &[("", process.cpu_seconds)],
    );

    let mut resp = Response::new(text.into());
    resp.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
