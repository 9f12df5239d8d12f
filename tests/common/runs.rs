//! Headless agent runs with the fake Claude Code (tests/fixtures/fake-claude): an agent, a task,
//! a run — each asserting the server accepted it.

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::TestServer;

pub fn fake_claude() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude").to_string()
}

pub async fn agent(s: &TestServer, name: &str, env: Value) -> i64 {
    let r = s
        .post(
            "/api/agents",
            json!({"name": name, "command": [fake_claude()], "env": env}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// An agent running the fake Claude Code, `extra` merged into its definition.
pub async fn fake_agent(s: &TestServer, name: &str, extra: Value) -> i64 {
    let mut body = json!({"name": name, "command": [fake_claude()]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post("/api/agents", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

pub async fn task(s: &TestServer, title: &str, agent: Option<i64>, priority: i64) -> i64 {
    let r = s
        .post(
            "/api/tasks",
            json!({"title": title, "description": "", "agent_id": agent, "priority": priority}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

pub async fn run(s: &TestServer, task: i64) -> i64 {
    let r = s.post(&format!("/api/tasks/{task}/run"), json!({})).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["type"], "agent_run");
    r.body["id"].as_i64().unwrap()
}

/// Every message of the run's event socket until it closes.
pub async fn event_stream(s: &TestServer, id: i64, since: i64) -> Vec<Value> {
    let mut ws = s
        .ws(&format!("/api/executions/{id}/events?since={since}"))
        .await;
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(super::WAIT, ws.next())
            .await
            .expect("in time");
        match msg {
            Some(Ok(m)) if m.is_text() => {
                out.push(serde_json::from_str(m.to_text().unwrap()).unwrap())
            }
            Some(Ok(m)) if m.is_close() => return out,
            Some(Ok(_)) => {}
            _ => return out,
        }
    }
}
