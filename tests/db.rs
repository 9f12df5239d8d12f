//! The DB actor: pool exhaustion fails fast with 503 db_busy, and a dead DB actor is restarted
//! with requests in between getting 503, not a hang.

mod common;
use std::time::{Duration, Instant};

use common::{DbHold, TestServer, WAIT};
use serde_json::json;

#[tokio::test]
async fn exhausted_pool_gives_503_db_busy_within_the_checkout_timeout() {
    let s = TestServer::start_with(|c| {
        c.db_pool_size = 1;
        c.db_checkout_timeout = Duration::from_millis(300);
    })
    .await;
    // Hold the only connection in a long transaction until told to let go.
    let hold = DbHold::take(&s).await;

    let started = Instant::now();
    let r = s.get("/api/tasks").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.code(), "db_busy");
    assert!(started.elapsed() < WAIT, "failed fast, no hang");
    let r = s.post("/api/tasks", json!({"title": "queued write"})).await;
    assert_eq!(r.status, 503, "a write also fails fast: {}", r.text);

    let h = s.get("/api/system/health/detailed").await;
    assert_eq!(
        h.status, 503,
        "detailed health names the failing part: {}",
        h.text
    );
    // Either the handler reports the DB as the failing part, or the credential check (which
    // reads the DB too) already failed fast with db_busy: both name the DB.
    assert!(
        h.body["failing"] == json!(["db"]) || h.code() == "db_busy",
        "{}",
        h.text
    );
    hold.release().await;

    let h = s.get("/api/system/health/detailed").await;
    assert_eq!(h.status, 200);
    assert!(
        h.body["db"]["pool"]["checkout_timeouts_total"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(s.get("/api/tasks").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_dead_db_actor_is_restarted_and_requests_meanwhile_get_503() {
    let s = TestServer::start().await;
    assert_eq!(
        s.post("/api/tasks", json!({"title": "before"}))
            .await
            .status,
        201
    );
    let old = s.state().db.actor().unwrap();
    old.kill();

    let deadline = Instant::now() + WAIT;
    loop {
        let r = s.get("/api/tasks").await;
        match r.status {
            200 => break,
            503 => assert_eq!(r.code(), "db_unavailable", "{}", r.text),
            other => panic!("unexpected {other}: {}", r.text),
        }
        assert!(Instant::now() < deadline, "DB actor not restarted in time");
        tokio::task::yield_now().await;
    }
    let new = s.state().db.actor().unwrap();
    assert_ne!(old.get_id(), new.get_id(), "a new actor serves");
    assert_eq!(
        s.post("/api/tasks", json!({"title": "after"})).await.status,
        201
    );
    assert_eq!(s.get("/api/tasks").await.body["total"], 2, "nothing lost");
    s.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = claude_manager::config::Config::for_data_dir(dir.path());
    let s = TestServer::start_config(config.clone(), tempfile::tempdir().unwrap()).await;
    for i in 0..5 {
        s.post("/api/tasks", json!({"title": format!("keep {i}")}))
            .await;
    }
    s.stop().await;
    let s = TestServer::start_config(config, tempfile::tempdir().unwrap()).await;
    assert_eq!(s.get("/api/tasks").await.body["total"], 5);
    s.stop().await;
}
