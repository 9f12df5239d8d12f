//! Every failure is the JSON error shape with the right status and the request id; nothing
//! from outside can cause a 500, a panic or a warp text body.

mod common;
use common::TestServer;
use serde_json::json;

fn assert_error_shape(r: &common::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.code(), code, "{}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "not JSON: {:?}",
        r.headers
    );
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(!msg.is_empty());
    let rid = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        r.body["error"]["request_id"], rid,
        "body and header request ids differ"
    );
}

#[tokio::test]
async fn request_id_is_echoed_when_sane_and_generated_otherwise() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.req(reqwest::Method::GET, "/api/health")
                .header("x-request-id", "abc.DEF_123-x"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "abc.DEF_123-x");

    for bad in ["has space", "ünïcode", &"x".repeat(65), ""] {
        let r = s
            .send(
                s.req(reqwest::Method::GET, "/api/health")
                    .header("x-request-id", bad),
            )
            .await;
        let got = r.headers["x-request-id"].to_str().unwrap();
        assert_ne!(got, bad);
        assert!((1..=64).contains(&got.len()));
    }
    // Errors carry it too, in the header and the body.
    let r = s
        .send(
            s.req(reqwest::Method::GET, "/api/nope")
                .header("x-request-id", "trace-me"),
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "trace-me");
    assert_eq!(r.body["error"]["request_id"], "trace-me");
    s.stop().await;
}

#[tokio::test]
async fn unknown_api_path_is_a_json_404() {
    let s = TestServer::start().await;
    for path in [
        "/api/x",
        "/api/tasks/1/nope",
        "/api/tasks/abc",
        "/api/",
        "/api",
    ] {
        let r = s.get(path).await;
        assert_error_shape(&r, 404, "not_found");
    }
    let r = s.get("/api/tasks/999999").await;
    assert_error_shape(&r, 404, "not_found");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("999999"));
    s.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405() {
    let s = TestServer::start().await;
    let r = s.send(s.req(reqwest::Method::PUT, "/api/tasks")).await;
    assert_error_shape(&r, 405, "method_not_allowed");
    let r = s.send(s.req(reqwest::Method::DELETE, "/api/health")).await;
    assert_error_shape(&r, 405, "method_not_allowed");
    s.stop().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let s = TestServer::start().await;
    let big = vec![b'a'; 2 * 1024 * 1024];
    let r = s
        .send(
            s.req(reqwest::Method::POST, "/api/tasks")
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_error_shape(&r, 413, "payload_too_large");
    s.stop().await;
}

#[tokio::test]
async fn non_json_body_is_415() {
    let s = TestServer::start().await;
    let r = s
        .send(
            s.req(reqwest::Method::POST, "/api/tasks")
                .header("content-type", "text/plain")
                .body(r#"{"title":"x"}"#),
        )
        .await;
    assert_error_shape(&r, 415, "unsupported_media_type");
    let r = s
        .send(
            s.req(reqwest::Method::POST, "/api/tasks")
                .body(r#"{"title":"x"}"#),
        )
        .await;
    assert_error_shape(&r, 415, "unsupported_media_type");
    s.stop().await;
}

#[tokio::test]
async fn bad_json_is_400_naming_the_field() {
    let s = TestServer::start().await;
    let raw = |body: &'static [u8]| {
        s.req(reqwest::Method::POST, "/api/tasks")
            .header("content-type", "application/json")
            .body(body)
    };
    for body in [&b"{"[..], b"", b"[1,2]", b"\xff\xfe\x00binary", b"null"] {
        let r = s.send(raw(body)).await;
        assert_error_shape(&r, 400, "bad_request");
    }
    let r = s.post("/api/tasks", json!({"title": 5})).await;
    assert_error_shape(&r, 400, "bad_request");
    assert_eq!(r.body["error"]["field"], "title");
    let r = s
        .post("/api/tasks", json!({"title": "ok", "priority": "high"}))
        .await;
    assert_eq!(r.body["error"]["field"], "priority");
    let r = s
        .post("/api/tasks", json!({"title": "ok", "colour": "red"}))
        .await;
    assert_error_shape(&r, 400, "bad_request");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));
    let r = s.post("/api/tasks", json!({})).await;
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("title"));
    s.stop().await;
}

#[tokio::test]
async fn validation_failures_are_422_naming_field_and_rule() {
    let s = TestServer::start().await;
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (
            json!({"title": "ok", "description": "d".repeat(20_001)}),
            "description",
        ),
        (json!({"title": "ok", "priority": 0}), "priority"),
        (json!({"title": "ok", "priority": 11}), "priority"),
        (json!({"title": "ok", "tags": [""]}), "tags"),
        (json!({"title": "ok", "tags": ["t".repeat(65)]}), "tags"),
        (json!({"title": "ok", "meta": [1]}), "meta"),
        (
            json!({"title": "ok", "meta": {"k": "v".repeat(70_000)}}),
            "meta",
        ),
        (json!({"title": "ok", "status": "running"}), "status"),
        (
            json!({"title": "ok", "project_path": "relative/path"}),
            "project_path",
        ),
        (json!({"title": "ok", "agent_id": -1}), "agent_id"),
    ];
    for (body, field) in cases {
        let r = s.post("/api/tasks", body.clone()).await;
        assert_error_shape(&r, 422, "validation_failed");
        assert_eq!(r.body["error"]["field"], field, "for {body}");
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(field));
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let s = TestServer::start().await;
    for (q, field) in [
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("offset=-5", "offset"),
        ("status=flying", "status"),
        ("bogus=1", "bogus"),
    ] {
        let r = s.get(&format!("/api/tasks?{q}")).await;
        assert_error_shape(&r, 400, "bad_request");
        assert_eq!(r.body["error"]["field"], field, "for {q}");
    }
    let r = s.get("/api/executions?since=yesterday").await;
    assert_eq!(r.body["error"]["field"], "since");
    let r = s.get("/api/executions?type=robot").await;
    assert_eq!(r.body["error"]["field"], "type");
    s.stop().await;
}

#[tokio::test]
async fn websocket_route_without_upgrade_is_a_json_error() {
    let s = TestServer::start().await;
    let r = s.get("/api/events").await;
    assert!(
        r.status == 400 || r.status == 426,
        "{} {}",
        r.status,
        r.text
    );
    assert!(r.body["error"]["code"].is_string(), "{}", r.text);
    s.stop().await;
}
