//! The reaper: idle sessions are stopped and recorded `cancelled` with reason `idle`; exited
//! sessions leave memory but keep their execution row; parsed events are pruned to the cap; a
//! panicking session actor fails only its own execution.

mod common;
use std::time::Duration;

use common::term::{create, events, wait_exited};
use common::{eventually, TestServer};
use serde_json::{json, Value};

async fn health(s: &TestServer) -> Value {
    s.get("/api/system/health/detailed").await.body
}

#[tokio::test]
async fn idle_terminal_is_stopped_with_reason_idle_and_a_busy_one_is_left() {
    let s = TestServer::start_with(|c| {
        c.reap_interval = Duration::from_secs(1);
        c.terminal_idle_timeout = Some(Duration::from_secs(1));
    })
    .await;
    let mut ev = events(&s).await;
    let idle = create(&s, json!({"command": ["sleep", "600"]})).await;
    // Output every 100 ms keeps this one active.
    let busy = create(
        &s,
        json!({"command": ["sh", "-c", "while :; do echo tick; sleep 0.1; done"]}),
    )
    .await;
    let id = idle["id"].as_str().unwrap();
    let exited = wait_exited(&mut ev, id).await;
    assert_eq!(exited["status"], "cancelled", "{exited}");
    let exec = s
        .get(&format!("/api/executions/{}", idle["execution_id"]))
        .await;
    assert_eq!(exec.body["status"], "cancelled");
    assert_eq!(exec.body["reason"], "idle");
    let busy_now = s
        .get(&format!("/api/terminals/{}", busy["id"].as_str().unwrap()))
        .await;
    assert_eq!(busy_now.body["status"], "running", "{}", busy_now.text);
    let h = health(&s).await;
    assert!(h["reaper"]["reaped_total"].as_u64().unwrap() >= 1, "{h}");
    assert!(h["reaper"]["last_run_at"].is_string(), "{h}");
    assert!(h["reaper"]["last_duration_ms"].is_number(), "{h}");
    let metrics = s.get("/metrics").await.text;
    assert!(
        metrics.contains("reaped_sessions_total{reason=\"idle\"} 1"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn idle_agent_session_is_stopped_with_reason_idle_by_its_own_timeout() {
    let s = TestServer::start_with(|c| c.reap_interval = Duration::from_secs(1)).await;
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
    let agent = s
        .post(
            "/api/agents",
            json!({"name": "sleepy", "command": [fake], "idle_timeout_secs": 1}),
        )
        .await;
    assert_eq!(agent.status, 201, "{}", agent.text);
    let mut ev = events(&s).await;
    let session = s
        .post(
            &format!("/api/agents/{}/session", agent.body["id"]),
            json!({}),
        )
        .await;
    assert_eq!(session.status, 201, "{}", session.text);
    let exited = wait_exited(&mut ev, session.body["id"].as_str().unwrap()).await;
    assert_eq!(exited["status"], "cancelled", "{exited}");
    let exec = s
        .get(&format!("/api/executions/{}", session.body["execution_id"]))
        .await;
    assert_eq!(exec.body["type"], "agent_session");
    assert_eq!(exec.body["status"], "cancelled");
    assert_eq!(exec.body["reason"], "idle");
    s.stop().await;
}

#[tokio::test]
async fn exited_sessions_leave_memory_but_not_the_db() {
    let s = TestServer::start_with(|c| {
        c.reap_interval = Duration::from_secs(1);
        c.exited_retention = Duration::ZERO;
    })
    .await;
    let mut ev = events(&s).await;
    let t = create(&s, json!({"command": ["sh", "-c", "echo done"]})).await;
    let id = t["id"].as_str().unwrap().to_string();
    wait_exited(&mut ev, &id).await;
    eventually("exited session forgotten", || {
        let path = format!("/api/terminals/{id}");
        let s = &s;
        async move { (s.get(&path).await.status == 404).then_some(()) }
    })
    .await;
    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    assert_eq!(exec.status, 200);
    assert_eq!(exec.body["status"], "succeeded");
    let h = health(&s).await;
    assert!(
        h["reaper"]["reaped_exited_total"].as_u64().unwrap() >= 1,
        "{h}"
    );
    s.stop().await;
}

#[tokio::test]
async fn execution_events_are_pruned_to_the_cap_keeping_the_newest() {
    let s = TestServer::start_with(|c| {
        c.reap_interval = Duration::from_secs(1);
        c.execution_events_max = 5;
    })
    .await;
    let count = |exec: i64| {
        s.state().db.read(move |c| {
            c.query_row(
                "SELECT COUNT(*), MIN(seq) FROM execution_events WHERE execution_id = ?1",
                [exec],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
            )
            .map_err(claude_manager::db::DbError::from)
        })
    };
    let (big, small) = s
        .state()
        .db
        .write(|c| {
            let mut ids = Vec::new();
            for n in [20, 3] {
                c.execute(
                    "INSERT INTO executions (type, status, boot_id, command, created_at) \
                     VALUES ('agent_run', 'succeeded', 'old', '[]', '2026-01-01T00:00:00.000Z')",
                    [],
                )?;
                let id = c.last_insert_rowid();
                for seq in 1..=n {
                    c.execute(
                        "INSERT INTO execution_events VALUES (?1, ?2, 't', 'k', '{}')",
                        [id, seq],
                    )?;
                }
                ids.push(id);
            }
            Ok::<_, claude_manager::db::DbError>((ids[0], ids[1]))
        })
        .await
        .unwrap();
    eventually("events pruned", || async {
        (count(big).await.unwrap() == (5, Some(16))).then_some(())
    })
    .await;
    assert_eq!(count(small).await.unwrap(), (3, Some(1)));
    s.stop().await;
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_panicking_session_actor_fails_only_its_own_execution() {
    use claude_manager::actors::session_types::SessionKind;
    use claude_manager::actors::terminal::TerminalMsg;
    let s = TestServer::start().await;
    let mut ev = events(&s).await;
    let victim = create(&s, json!({"command": ["sleep", "600"]})).await;
    let other = create(&s, json!({"command": ["sleep", "600"]})).await;
    let id = victim["id"].as_str().unwrap();
    let pid = victim["pid"].as_i64().unwrap();
    let actor = s
        .state()
        .sessions
        .lookup(SessionKind::Terminal, id)
        .await
        .unwrap();
    actor.cast(TerminalMsg::Panic).unwrap();
    let exited = wait_exited(&mut ev, id).await;
    assert_eq!(exited["status"], "failed");
    let exec = s
        .get(&format!("/api/executions/{}", victim["execution_id"]))
        .await;
    assert_eq!(exec.body["status"], "failed");
    let reason = exec.body["reason"].as_str().unwrap();
    assert!(reason.contains("panicked"), "{reason}");
    // Its group is killed (a zombie until reaped counts as dead).
    eventually("victim's child killed", || async move {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let state = stat.and_then(|s| s.rsplit(')').next()?.trim().chars().next());
        matches!(state, None | Some('Z')).then_some(())
    })
    .await;
    // The other session is untouched.
    let other_now = s
        .get(&format!("/api/terminals/{}", other["id"].as_str().unwrap()))
        .await;
    assert_eq!(other_now.body["status"], "running");
    let other_exec = s
        .get(&format!("/api/executions/{}", other["execution_id"]))
        .await;
    assert_eq!(other_exec.body["status"], "running");
    s.stop().await;
}
