//! `/api/agents` against a real server: definitions, their defaults and validation, secret env
//! values never shown, unique names, and deleting a busy agent refused.

mod common;
use common::runs::fake_claude;
use common::TestServer;
use serde_json::{json, Value};

/// Creates an agent; one that names no command runs the fake Claude Code (the real `claude`
/// is not on the tests' PATH, and a command is checked when it is saved).
async fn create_agent(s: &TestServer, mut body: Value) -> Value {
    if body.get("command").is_none() {
        body["command"] = json!([fake_claude()]);
    }
    let r = s.post("/api/agents", body).await;
    assert_eq!(r.status, 201, "create agent: {}", r.text);
    r.body
}

#[tokio::test]
async fn defaults_are_claude_code_with_resumable_session_args() {
    let s = TestServer::start().await;
    // `claude` found on the agent's own PATH: a directory holding it (the fake).
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fake_claude(), bin.path().join("claude")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let r = s
        .post(
            "/api/agents",
            json!({"name": "coder", "env": {"PATH": path}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.body;
    assert_eq!(a["command"], json!(["claude"]));
    assert_eq!(a["kind"], "claude");
    assert_eq!(a["idle_timeout_secs"], 1800);
    assert_eq!(a["restart"]["policy"], "never");
    assert_eq!(a["restart"]["backoff_initial_ms"], 1000);
    assert_eq!(a["restart"]["backoff_max_ms"], 60000);
    assert_eq!(a["restart"]["max_restarts"], 5);
    assert_eq!(a["restart"]["window_secs"], 600);
    assert_eq!(
        a["session_args"],
        json!({"first": ["--session-id", "{session_id}"], "resume": ["--resume", "{session_id}"]})
    );
    let id = a["id"].as_i64().unwrap();
    let got = s.get(&format!("/api/agents/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["name"], "coder");
    let list = s.get("/api/agents").await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], id);
    s.stop().await;
}

#[tokio::test]
async fn secret_env_values_are_redacted_and_survive_a_patch_round_trip() {
    let s = TestServer::start().await;
    let a = create_agent(
        &s,
        json!({"name": "x", "env": {"ANTHROPIC_API_KEY": "sk-secret", "MODE": "fast"}}),
    )
    .await;
    assert_eq!(a["env"]["ANTHROPIC_API_KEY"], "[redacted]");
    assert_eq!(a["env"]["MODE"], "fast");
    assert!(!a.to_string().contains("sk-secret"));
    let id = a["id"].as_i64().unwrap();
    // Sending the GET's env back unchanged keeps the stored secret.
    let p = s
        .patch(
            &format!("/api/agents/{id}"),
            json!({"env": a["env"], "model": "opus"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["model"], "opus");
    let def: String = {
        let db = s.state().db.clone();
        db.read(move |c| {
            c.query_row("SELECT definition FROM agents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .map_err(claude_manager::db::DbError::from)
        })
        .await
        .unwrap()
    };
    assert!(def.contains("sk-secret"), "stored value kept");
    s.stop().await;
}

#[tokio::test]
async fn validation_names_the_field() {
    let s = TestServer::start().await;
    let long = "n".repeat(65);
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": long}), "name"),
        (json!({"name": "a", "command": []}), "command"),
        (json!({"name": "a", "command": [""]}), "command"),
        (json!({"name": "a", "env": {"1BAD": "x"}}), "env"),
        (
            json!({"name": "a", "permission_mode": "yolo"}),
            "permission_mode",
        ),
        (
            json!({"name": "a", "project_dir": "/definitely/not/here"}),
            "project_dir",
        ),
        (json!({"name": "a", "project_dir": "/"}), "project_dir"),
        (
            json!({"name": "a", "allowed_tools": ["a,b"]}),
            "allowed_tools",
        ),
        (json!({"name": "a", "model": "--evil"}), "model"),
        (
            json!({"name": "a", "idle_timeout_secs": 99999999}),
            "idle_timeout_secs",
        ),
        (
            json!({"name": "a", "restart": {"backoff_initial_ms": 0}}),
            "restart.backoff_initial_ms",
        ),
    ];
    for (mut body, field) in cases {
        if body.get("command").is_none() {
            body["command"] = json!([fake_claude()]);
        }
        let r = s.post("/api/agents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
    }
    let r = s
        .post("/api/agents", json!({"name": "a", "bogus": 1}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s
        .post(
            "/api/agents",
            json!({"name": "a", "restart": {"policy": "always"}}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.get("/api/agents/999").await.status, 404);
    assert_eq!(s.patch("/api/agents/999", json!({})).await.status, 404);
    assert_eq!(s.delete("/api/agents/999").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn names_are_unique_on_create_and_patch() {
    let s = TestServer::start().await;
    create_agent(&s, json!({"name": "one"})).await;
    let two = create_agent(&s, json!({"name": "two"})).await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "one", "command": [fake_claude()]}),
        )
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "name_taken");
    let r = s
        .patch(
            &format!("/api/agents/{}", two["id"]),
            json!({"name": "one"}),
        )
        .await;
    assert_eq!(r.status, 409);
    s.stop().await;
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_null_clears() {
    let s = TestServer::start().await;
    let a = create_agent(
        &s,
        json!({"name": "p", "model": "sonnet", "restart": {"policy": "on-failure"}}),
    )
    .await;
    let path = format!("/api/agents/{}", a["id"]);
    let r = s
        .patch(
            &path,
            json!({"model": null, "restart": {"max_restarts": 2}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["model"], Value::Null);
    assert_eq!(r.body["restart"]["policy"], "on-failure");
    assert_eq!(r.body["restart"]["max_restarts"], 2);
    assert_eq!(r.body["name"], "p");
    let r = s.delete(&path).await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get(&path).await.status, 404);
    s.stop().await;
}
