//! Health: liveness (no DB), public summary, and the detailed view monitoring scrapes.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{ok_json, reply_json};
use crate::actors::db::PoolStats;
use crate::db::DbError;
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let live = warp::path!("api" / "health")
        .and(warp::get())
        .map(|| ok_json(&serde_json::json!({ "status": "ok" })));
    let summary = warp::path!("api" / "system" / "health")
        .and(warp::get())
        .and(with_state.clone())
        .map(|state: AppState| {
            ok_json(&serde_json::json!({
                "status": "ok",
                "version": VERSION,
                "uptime_s": state.started_at.elapsed().as_secs(),
            }))
        });
    let detailed = warp::path!("api" / "system" / "health" / "detailed")
        .and(warp::get())
        .and(with_state)
        .and_then(detailed);
    live.or(summary).unify().or(detailed).unify().boxed()
}

#[derive(Serialize)]
struct DbHealth {
    ok: bool,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    pool: PoolStats,
}

#[derive(Serialize)]
struct ByKind {
    events: usize,
    terminals: usize,
    agents: usize,
    run_events: usize,
}

#[derive(Serialize)]
struct Sessions {
    terminals: usize,
    agents: usize,
}

#[derive(Serialize)]
struct Logs {
    dropped_total: u64,
}

#[derive(Serialize)]
struct Detailed<'a> {
    status: &'static str,
    /// The parts that are failing, by name (empty when healthy).
    failing: Vec<&'static str>,
    version: &'static str,
    uptime_s: u64,
    boot_id: String,
    db: DbHealth,
    websockets: ByKind,
    sessions: Sessions,
    logs: Logs,
    reconciliation: &'a crate::reconcile::Reconciliation,
    reaper: crate::actors::reaper::ReaperHealth,
    /// Isolated runs' git worktrees on disk (as of the reaper's last pass).
    worktrees: crate::actors::reaper::WorktreesHealth,
    /// Data paths that group or others can access (should be empty; docs/security.md).
    loose_permissions: Vec<crate::permissions::LoosePath>,
    /// Reloads (exec-in-place): generation, sessions adopted, the last reload's outcome.
    reload: crate::handover::ReloadReport,
}

async fn detailed(state: AppState) -> Result<Response, Rejection> {
    let started = Instant::now();
    let ping = state
        .db
        .read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(DbError::from)
        })
        .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let config = state.config.clone();
    let loose_permissions =
        tokio::task::spawn_blocking(move || crate::permissions::loose_paths(&config))
            .await
            .unwrap_or_default();
    let m = &state.metrics;
    let db_ok = ping.is_ok();
    let body = Detailed {
        status: if db_ok { "ok" } else { "unhealthy" },
        failing: if db_ok { vec![] } else { vec!["db"] },
        version: VERSION,
        uptime_s: state.started_at.elapsed().as_secs(),
        boot_id: state.boot_id.to_string(),
        db: DbHealth {
            ok: db_ok,
            latency_ms: (latency_ms * 1000.0).round() / 1000.0,
            error: ping.err().map(|e| e.to_string()),
            pool: state.db.stats(),
        },
        websockets: ByKind {
            events: m.ws_events.load(Ordering::Relaxed),
            terminals: m.ws_terminals.load(Ordering::Relaxed),
            agents: m.ws_agents.load(Ordering::Relaxed),
            run_events: m.ws_run_events.load(Ordering::Relaxed),
        },
        sessions: Sessions {
            terminals: m.sessions_terminals.load(Ordering::Relaxed),
            agents: m.sessions_agents.load(Ordering::Relaxed),
        },
        logs: Logs {
            dropped_total: m.log_records_dropped.load(Ordering::Relaxed),
        },
        reconciliation: &state.reconciliation,
        reaper: state.reaper.health(),
        worktrees: state.reaper.worktrees(),
        loose_permissions,
        reload: crate::handover::report(),
    };
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(reply_json(status, &body))
}
