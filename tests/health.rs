//! Health endpoints: liveness without the DB, the public summary, the detailed view.

mod common;
use common::TestServer;

#[tokio::test]
async fn liveness_is_ok_without_touching_the_db() {
    let s = TestServer::start().await;
    let r = s.get("/api/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::json!({"status": "ok"}));
    s.stop().await;
}

#[tokio::test]
async fn summary_shows_status_version_uptime() {
    let s = TestServer::start().await;
    let r = s.get("/api/system/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert!(r.body["uptime_s"].is_u64());
    s.stop().await;
}

#[tokio::test]
async fn detailed_reports_db_pool_sockets_sessions_logs() {
    let s = TestServer::start_with(|c| c.db_pool_size = 3).await;
    let r = s.get("/api/system/health/detailed").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["status"], "ok");
    assert_eq!(b["db"]["ok"], true);
    assert!(b["db"]["latency_ms"].is_number());
    assert_eq!(b["db"]["pool"]["size"], 3);
    for k in ["idle", "in_use", "checkout_timeouts_total"] {
        assert!(b["db"]["pool"][k].is_u64(), "pool.{k} missing: {b}");
    }
    for k in ["events", "terminals", "agents", "run_events"] {
        assert!(b["websockets"][k].is_u64(), "websockets.{k} missing: {b}");
    }
    assert_eq!(b["sessions"]["terminals"], 0);
    assert_eq!(b["sessions"]["agents"], 0);
    assert_eq!(b["logs"]["dropped_total"], 0);
    s.stop().await;
}
