//! `GET /metrics`: Prometheus text format (monitor or admin credential).
//!
//! Request counters come from the registry the envelope feeds; everything that describes the
//! present (sockets, sessions, pool, executions by status, process) is read at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use prometheus::Encoder;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::reject;
use crate::db::DbError;
use crate::error::ApiError;
use crate::metrics::process_stats;
use crate::state::AppState;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let state = state.clone();
    warp::path!("metrics")
        .and(warp::get())
        .and(warp::any().map(move || state.clone()))
        .and_then(scrape)
        .boxed()
}

/// `executions_total{type,status}` and the queued-run count, from the database.
type ExecutionCounts = (Vec<(String, String, i64)>, i64);

async fn scrape(state: AppState) -> Result<Response, Rejection> {
    let counts: ExecutionCounts = state
        .db
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT type, status, count(*) FROM executions GROUP BY type, status",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            let queued: i64 = c.query_row(
                "SELECT count(*) FROM executions WHERE type = 'agent_run' AND status = 'pending'",
                [],
                |r| r.get(0),
            )?;
            Ok::<_, DbError>((rows, queued))
        })
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    let (rss, fds, cpu) = tokio::task::spawn_blocking(process_stats)
        .await
        .unwrap_or((0, 0, 0.0));

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
    let exec: Vec<(String, f64)> = counts
        .0
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
        &[("", counts.1 as f64)],
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
        &[("", rss as f64)],
    );
    gauge(
        "process_open_fds",
        "Open file descriptors.",
        "gauge",
        &[("", fds as f64)],
    );
    gauge(
        "process_cpu_seconds_total",
        "User and system CPU time.",
        "counter",
        &[("", cpu)],
    );

    let mut resp = Response::new(text.into());
    resp.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
