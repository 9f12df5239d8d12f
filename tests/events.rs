//! WS /api/events: state changes arrive live; a subscriber that does not read falls behind
//! alone and is told how much it missed.

mod common;
use common::{ws_json_of_type, ws_send_json, TestServer, WAIT};
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn task_changes_are_published() {
    let s = TestServer::start().await;
    let mut ws = s.ws("/api/events").await;
    ws_send_json(&mut ws, json!({"type": "ping"})).await;
    ws_json_of_type(&mut ws, "pong").await; // subscribed before the changes below

    let t = s.post("/api/tasks", json!({"title": "watched"})).await.body;
    let id = t["id"].clone();
    let e = ws_json_of_type(&mut ws, "task.created").await;
    assert_eq!(e["data"]["id"], id);
    assert_eq!(e["data"]["title"], "watched");

    s.patch(&format!("/api/tasks/{id}"), json!({"priority": 9}))
        .await;
    let e = ws_json_of_type(&mut ws, "task.updated").await;
    assert_eq!(e["data"]["priority"], 9);

    s.delete(&format!("/api/tasks/{id}")).await;
    let e = ws_json_of_type(&mut ws, "task.deleted").await;
    assert_eq!(e["data"]["id"], id);
    s.stop().await;
}

#[tokio::test]
async fn a_lagging_subscriber_does_not_block_a_fast_one() {
    const TASKS: usize = 600;
    let s = TestServer::start_with(|c| c.events_queue_len = 64).await;
    let mut slow = s.ws("/api/events").await; // never read until the end
    let mut fast = s.ws("/api/events").await;
    ws_send_json(&mut slow, json!({"type": "ping"})).await;
    ws_send_json(&mut fast, json!({"type": "ping"})).await;
    ws_json_of_type(&mut fast, "pong").await;

    // Each event is ~20 KB, so the slow socket's kernel buffers fill long before the end.
    let reader = tokio::spawn(async move {
        let mut created = 0;
        while created < TASKS {
            let msg = tokio::time::timeout(WAIT, fast.next())
                .await
                .expect("fast subscriber starved")
                .unwrap()
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
            assert_ne!(v["type"], "lagged", "the fast subscriber must not lag");
            if v["type"] == "task.created" {
                created += 1;
            }
        }
        created
    });
    let description = "x".repeat(20_000);
    for i in 0..TASKS {
        let r = s
            .post(
                "/api/tasks",
                json!({"title": format!("t{i}"), "description": description}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    assert_eq!(reader.await.unwrap(), TASKS);

    // Now the slow one reads: somewhere in its stream it was told it missed events.
    let mut seen_lagged = false;
    let mut created = 0;
    while !seen_lagged {
        let msg = tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("slow subscriber still served")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "lagged" {
                assert!(v["missed"].as_u64().unwrap() > 0);
                seen_lagged = true;
            } else if v["type"] == "task.created" {
                created += 1;
            }
        }
    }
    assert!(created < TASKS, "the slow subscriber missed some");
    s.stop().await;
}

#[tokio::test]
async fn subscribers_are_counted_in_health() {
    let s = TestServer::start().await;
    let mut ws = s.ws("/api/events").await;
    ws_send_json(&mut ws, json!({"type": "ping"})).await;
    ws_json_of_type(&mut ws, "pong").await;
    let h = s.get("/api/system/health/detailed").await;
    assert_eq!(h.body["websockets"]["events"], 1);
    s.stop().await;
}
