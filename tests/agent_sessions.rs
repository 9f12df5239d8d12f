//! Agent sessions against a real server with the fake Claude Code: one live session per agent
//! even under concurrent get-or-create, the terminal WebSocket protocol, resuming the same
//! conversation after a stop, and deleting a busy agent refused.

mod common;
use common::runs::fake_agent;
use common::term::{next, read_until, read_until_output, send_input, wait_exited, Seen};
use common::{TestServer, Ws};
use serde_json::{json, Value};

async fn attach(s: &TestServer, id: &str) -> Ws {
    let mut ws = s.ws(&format!("/api/agent-sessions/{id}/ws")).await;
    let v: Value = serde_json::from_str(next(&mut ws).await.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "attached", "{v}");
    ws
}

#[tokio::test]
async fn twenty_concurrent_get_or_create_calls_make_one_session() {
    let s = TestServer::start().await;
    let agent = fake_agent(&s, "busy", json!({})).await;
    let path = format!("/api/agents/{agent}/session");
    let calls = (0..20).map(|_| s.post(&path, json!({})));
    let replies = futures_util::future::join_all(calls).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "exactly one call starts the session");
    assert!(replies.iter().all(|r| r.status == 200 || r.status == 201));
    let ids: std::collections::HashSet<&str> = replies
        .iter()
        .map(|r| r.body["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let list = s.get("/api/agent-sessions").await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["agent_id"], agent);
    let health = s.get("/api/system/health/detailed").await;
    assert_eq!(health.body["sessions"]["agents"], 1, "{}", health.text);
    assert_eq!(health.body["sessions"]["terminals"], 0);
    let exec = s
        .get(&format!(
            "/api/executions/{}",
            replies[0].body["execution_id"]
        ))
        .await;
    assert_eq!(exec.body["type"], "agent_session");
    assert_eq!(exec.body["agent_id"], agent);
    assert_eq!(
        exec.body["meta"]["conversation_id"],
        replies[0].body["conversation_id"]
    );
    s.stop().await;
}

#[tokio::test]
async fn the_session_websocket_works_like_a_terminal() {
    let s = TestServer::start().await;
    let agent = fake_agent(&s, "echo", json!({})).await;
    let mut ev = common::term::events(&s).await;
    let r = s
        .post(&format!("/api/agents/{agent}/session"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["ws"], format!("/api/agent-sessions/{id}/ws"));
    let mut ws = attach(&s, &id).await;
    let health = s.get("/api/system/health/detailed").await;
    assert_eq!(health.body["websockets"]["agents"], 1, "{}", health.text);
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "> ").await;
    send_input(&mut ws, b"hello agent\r").await;
    read_until_output(&mut ws, &mut seen, "echo: hello agent").await;
    send_input(&mut ws, b"/exit\r").await;
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    let exit = seen.json.iter().find(|v| v["type"] == "exit").unwrap();
    assert_eq!(exit["code"], 0);
    let exited = wait_exited(&mut ev, &id).await;
    assert_eq!(exited["kind"], "agent_session");
    assert_eq!(exited["status"], "succeeded");
    s.stop().await;
}

#[tokio::test]
async fn a_new_session_after_a_stop_resumes_the_same_conversation() {
    let s = TestServer::start().await;
    let agent = fake_agent(&s, "resumer", json!({})).await;
    let path = format!("/api/agents/{agent}/session");
    let mut ev = common::term::events(&s).await;

    let first = s.post(&path, json!({})).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let conversation = first.body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(conversation.len(), 36, "a UUID: {conversation}");
    let argv: Vec<&str> = first.body["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        argv.windows(2)
            .any(|w| w == ["--session-id", &conversation]),
        "{argv:?}"
    );
    let id = first.body["id"].as_str().unwrap().to_string();
    let mut ws = attach(&s, &id).await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, &format!("session {conversation} new")).await;
    let stop = s.delete(&format!("/api/agent-sessions/{id}")).await;
    assert_eq!(stop.status, 202, "{}", stop.text);
    wait_exited(&mut ev, &id).await;

    let again = s.post(&path, json!({})).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_ne!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["conversation_id"], conversation.as_str());
    let argv = again.body["argv"].to_string();
    assert!(
        argv.contains(&format!("\"--resume\",\"{conversation}\"")),
        "{argv}"
    );
    let mut ws = attach(&s, again.body["id"].as_str().unwrap()).await;
    let mut seen = Seen::default();
    read_until_output(
        &mut ws,
        &mut seen,
        &format!("session {conversation} resumed"),
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn deleting_an_agent_with_a_live_session_is_409() {
    let s = TestServer::start().await;
    let agent = fake_agent(&s, "live", json!({})).await;
    let mut ev = common::term::events(&s).await;
    let r = s
        .post(&format!("/api/agents/{agent}/session"), json!({}))
        .await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let del = s.delete(&format!("/api/agents/{agent}")).await;
    assert_eq!(del.status, 409, "{}", del.text);
    assert_eq!(del.code(), "agent_busy");
    s.delete(&format!("/api/agent-sessions/{id}")).await;
    wait_exited(&mut ev, &id).await;
    assert_eq!(s.delete(&format!("/api/agents/{agent}")).await.status, 204);
    s.stop().await;
}

#[tokio::test]
async fn a_missing_agent_cli_is_refused_when_saved_and_unknown_agents_404() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "ghost", "command": ["no-such-agent-cli-xyz"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "command");
    assert_eq!(
        s.post("/api/agents/999/session", json!({})).await.status,
        404
    );
    assert_eq!(s.get("/api/agent-sessions/nope").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn on_failure_restarts_with_backoff_resuming_then_gives_up() {
    let s = TestServer::start().await;
    let agent = fake_agent(
        &s,
        "crasher",
        json!({"env": {"FAKE_CLAUDE_MODE": "crash", "FAKE_CLAUDE_EXIT_CODE": "7"},
               "restart": {"policy": "on-failure", "backoff_initial_ms": 50,
                           "backoff_max_ms": 120, "max_restarts": 3, "window_secs": 600}}),
    )
    .await;
    let mut ev = common::term::events(&s).await;
    let r = s
        .post(&format!("/api/agents/{agent}/session"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let conversation = r.body["conversation_id"].as_str().unwrap().to_string();
    let mut delays = Vec::new();
    let gave_up = loop {
        let msg = tokio::time::timeout(common::WAIT, futures_util::StreamExt::next(&mut ev))
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        match v["type"].as_str() {
            Some("agent_session.restarting") => {
                delays.push(v["data"]["delay_ms"].as_u64().unwrap())
            }
            Some("agent_session.failed") => break v["data"].clone(),
            _ => {}
        }
    };
    assert_eq!(delays, [50, 100, 120], "doubling, capped at backoff_max_ms");
    assert!(
        gave_up["reason"].as_str().unwrap().contains("max_restarts"),
        "{gave_up}"
    );
    let sessions = s.get("/api/agent-sessions").await.body;
    let items = sessions["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "the first start and three restarts");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["status"], "failed");
        assert_eq!(item["exit_code"], 7);
        assert_eq!(item["conversation_id"], conversation.as_str());
        let flag = if i == 0 { "--session-id" } else { "--resume" };
        assert!(item["argv"].to_string().contains(flag), "{item}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_session_stopped_by_its_user_is_not_restarted() {
    let s = TestServer::start().await;
    let agent = fake_agent(
        &s,
        "stopped",
        json!({"restart": {"policy": "on-failure", "backoff_initial_ms": 10}}),
    )
    .await;
    let mut ev = common::term::events(&s).await;
    let r = s
        .post(&format!("/api/agents/{agent}/session"), json!({}))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    s.delete(&format!("/api/agent-sessions/{id}")).await;
    assert_eq!(wait_exited(&mut ev, &id).await["status"], "cancelled");
    // The supervisor handles the exit before this request (the actor tells it before the
    // event goes out), so a restart decision would be announced before the new session starts.
    let again = s
        .post(&format!("/api/agents/{agent}/session"), json!({}))
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    let exec = again.body["execution_id"].clone();
    loop {
        let msg = tokio::time::timeout(common::WAIT, futures_util::StreamExt::next(&mut ev))
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert_ne!(v["type"], "agent_session.restarting", "{v}");
        if v["type"] == "execution.started" && v["data"]["id"] == exec {
            break;
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn after_a_server_restart_the_session_resumes_its_conversation() {
    let s = TestServer::start().await;
    let agent = fake_agent(&s, "durable", json!({})).await;
    let path = format!("/api/agents/{agent}/session");
    let first = s.post(&path, json!({})).await;
    assert_eq!(first.status, 201);
    let conversation = first.body["conversation_id"].clone();
    let dir = s.stop_keep_dir().await;
    let config = claude_manager::config::Config::for_data_dir(dir.path());
    let s = TestServer::start_config(config, dir).await;
    let again = s.post(&path, json!({})).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["conversation_id"], conversation);
    assert!(again.body["argv"].to_string().contains("--resume"));
    s.stop().await;
}
