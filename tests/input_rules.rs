//! Rules on what clients send: malformed ids are 404 on every method, references must exist,
//! a single-valued query parameter comes once, text carries no NUL or bidirectional overrides,
//! and a default working directory respects the allowed roots.

mod common;
use common::TestServer;

use serde_json::json;

#[tokio::test]
async fn a_malformed_id_is_404_on_every_method() {
    let s = TestServer::start().await;
    for path in [
        "/api/tasks/abc",
        "/api/agents/abc",
        "/api/executions/abc",
        "/api/tasks/1x",
    ] {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PATCH,
            reqwest::Method::DELETE,
            reqwest::Method::PUT,
        ] {
            let r = s
                .send(s.req(method.clone(), path).json(&json!({"title": "x"})))
                .await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
            assert_eq!(r.code(), "not_found", "{method} {path}");
        }
    }
    // A well-formed path with a method it does not take is still 405.
    let r = s.send(s.req(reqwest::Method::PUT, "/api/tasks/1")).await;
    assert_eq!(r.status, 405, "{}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn a_task_naming_an_unknown_agent_is_422_naming_agent_id() {
    let s = TestServer::start().await;
    let r = s
        .post("/api/tasks", json!({"title": "x", "agent_id": 424242}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "agent_id");
    let task = s.post("/api/tasks", json!({"title": "x"})).await;
    assert_eq!(task.status, 201);
    let r = s
        .patch(
            &format!("/api/tasks/{}", task.body["id"]),
            json!({"agent_id": 424242}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "agent_id");
    s.stop().await;
}

#[tokio::test]
async fn a_repeated_query_parameter_is_400_naming_it_in_either_order() {
    let s = TestServer::start().await;
    for query in ["status=bogus&status=pending", "status=pending&status=bogus"] {
        let r = s.get(&format!("/api/tasks?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.body["error"]["field"], "status", "{query}");
    }
    s.stop().await;
}

#[tokio::test]
async fn nul_and_bidirectional_overrides_in_text_are_422_naming_the_field() {
    let s = TestServer::start().await;
    for (body, field) in [
        (json!({"title": "a\u{0}b"}), "title"),
        (json!({"title": "invoice\u{202E}fdp.exe"}), "title"),
        (
            json!({"title": "x", "description": "\u{2066}hidden\u{2069}"}),
            "description",
        ),
        (
            json!({"title": "x", "tags": ["ok", "b\u{202D}ad"]}),
            "tags[1]",
        ),
    ] {
        let r = s.post("/api/tasks", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}");
    }
    // Ordinary right-to-left text is fine.
    let r = s.post("/api/tasks", json!({"title": "שלום"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn a_terminal_without_cwd_starts_in_the_first_allowed_root() {
    let root = tempfile::tempdir().unwrap();
    let canonical = std::fs::canonicalize(root.path()).unwrap();
    let roots = vec![canonical.clone()];
    let s = TestServer::start_with(move |c| c.allowed_roots = roots).await;
    let r = s.post("/api/terminals", json!({"command": ["true"]})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["cwd"], canonical.display().to_string(), "{}", r.text);
    s.stop().await;
}
