//! The rest of the security contract: no file is served from a path built from a URL, security
//! headers on every response, no secret in the logs, auth can be off only on loopback.

mod common;
use common::{binary, TestServer, WAIT};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `raw_target` byte for byte (no client-side normalisation); returns the response text.
async fn raw_get(s: &TestServer, raw_target: &[u8]) -> String {
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(raw_target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn traversal_attempts_are_json_404s() {
    let s = TestServer::start().await;
    for path in [
        "//etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e%2f%2e%2e%2fetc%2fhostname",
        "/..%5c..%5cetc%5cpasswd",
        "/etc/passwd%00",
        "/%00",
        "/index.html%00.js",
        "/static/../../etc/passwd",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.code(), "not_found", "{path}: {}", r.text);
        assert!(!r.text.contains("root:"), "{path} leaked a file");
    }
    for raw in [
        &b"/../../etc/passwd"[..],
        b"/..\\..\\etc\\passwd",
        b"//etc//hostname",
        b"/%5c..%5c..%5cetc/passwd",
    ] {
        let resp = raw_get(&s, raw).await;
        let head = resp.lines().next().unwrap_or("").to_string();
        assert!(
            head.contains(" 404 "),
            "{}: {head}",
            String::from_utf8_lossy(raw)
        );
        assert!(resp.contains("\"not_found\""), "{resp}");
        assert!(
            !resp.contains("root:"),
            "{} leaked a file",
            String::from_utf8_lossy(raw)
        );
    }
    // Not a path at all: hyper refuses it before any route sees it.
    let resp = raw_get(&s, b"\\etc\\passwd").await;
    assert!(resp.starts_with("HTTP/1.1 400 "), "{resp}");
    s.stop().await;
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let s = TestServer::start().await;
    let mut anon = TestServer::start().await;
    anon.token = None;
    let replies = [
        s.get("/api/health").await,
        s.get("/api/tasks").await,
        s.get("/nope").await,
        anon.get("/api/tasks").await,
        anon.post("/api/auth/login", json!({"token": "x"})).await,
    ];
    for r in replies {
        let h = &r.headers;
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe-inline'")
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(h.contains_key("x-request-id"));
    }
    s.stop().await;
    anon.stop().await;
}

/// Every log file's text once the access line of the request tagged `marker` is on disk (the
/// writer is asynchronous: this waits, bounded, for that line).
async fn logs_up_to(s: &TestServer, marker: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    let logs = loop {
        let mut all = String::new();
        for e in std::fs::read_dir(s.log_dir()).unwrap() {
            all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
        }
        if all.contains(marker) || tokio::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(logs.contains(marker), "access log not written");
    logs
}

#[tokio::test]
async fn what_is_typed_into_a_terminal_and_session_env_never_reach_the_logs() {
    use common::term::{attach, create, read_until_output, send_input, Seen};
    let s = TestServer::start().await;
    let typed = format!("cmt_{}", "7e57ab1e".repeat(8));
    let env_secret = "sk-live-4b1d9e0c7f3a2d6e";
    let t = create(
        &s,
        json!({"command": ["cat"], "env": {"API_TOKEN": env_secret, "HARMLESS": "visible-ok"}}),
    )
    .await;
    let body = t.to_string();
    assert!(
        !body.contains(env_secret),
        "env secret echoed in the create reply: {body}"
    );
    let id = t["id"].as_str().unwrap();
    let (mut ws, _) = attach(&s, id, "").await;
    send_input(&mut ws, format!("password {typed}\n").as_bytes()).await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, &typed).await; // it went through the server
    let listed = s.get("/api/terminals").await.text;
    assert!(!listed.contains(env_secret));
    let _ = s
        .send(
            s.req(reqwest::Method::GET, "/api/health")
                .header("x-request-id", "log-marker-2"),
        )
        .await;
    let logs = logs_up_to(&s, "log-marker-2").await;
    assert!(!logs.contains(&typed), "terminal input reached the logs");
    assert!(
        !logs.contains(env_secret),
        "a session env value reached the logs"
    );
    s.delete(&format!("/api/terminals/{id}")).await;
    s.stop().await;
}

#[tokio::test]
async fn secrets_never_reach_the_log_files() {
    let s = TestServer::start().await;
    let admin = s.token.clone().unwrap();
    let fake = format!("cmt_{}", "5eC7e7".repeat(10) + "abcd");
    let anon = s.http.clone();
    // Bearer (valid and token-looking), login bodies (wrong and right), the session cookie.
    let _ = s.get("/api/tasks").await;
    let _ = s
        .send(anon.get(s.url("/api/tasks")).bearer_auth(&fake))
        .await;
    let _ = s
        .send(
            anon.post(s.url("/api/auth/login"))
                .json(&json!({"token": fake})),
        )
        .await;
    let r = s
        .send(
            anon.post(s.url("/api/auth/login"))
                .json(&json!({"token": admin})),
        )
        .await;
    let cookie = r.headers["set-cookie"].to_str().unwrap().to_string();
    let session = cookie.split(';').next().unwrap().to_string();
    let secret_value = session.trim_start_matches("cm_session=").to_string();
    let _ = s
        .send(anon.get(s.url("/api/auth/me")).header("cookie", &session))
        .await;
    let marker = s
        .send(
            anon.get(s.url("/api/tasks?token=cmt_query"))
                .header("x-request-id", "log-marker-1"),
        )
        .await;
    assert_eq!(marker.status, 401);
    let logs = logs_up_to(&s, "log-marker-1").await;
    for secret in [&admin, &fake, &secret_value, &"cmt_query".to_string()] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the log: {secret}"
        );
    }
    assert!(
        !logs.to_ascii_lowercase().contains("bearer "),
        "an Authorization header was logged"
    );
    s.stop().await;
}

#[tokio::test]
async fn binding_a_public_address_without_auth_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(binary())
        .args([
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--insecure-no-auth",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
    assert!(err.contains("Remove --insecure-no-auth to enable"), "{err}");
}

/// `serve` with `var` set to each of `bad` exits 2, naming the setting and its range.
fn assert_thread_count_refused(var: &str, bad: &[&str], name: &str, range: &str) {
    for bad in bad {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(binary())
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env(var, bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={bad:?}: {err}");
        assert!(
            err.contains(&format!("{name} ({var})")) && err.contains(range),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_worker_thread_count_out_of_range_is_refused_by_name() {
    assert_thread_count_refused(
        "CM_WORKER_THREADS",
        &["0", "257", "two", ""],
        "worker_threads",
        "1 to 256",
    );
}

#[tokio::test]
async fn a_session_thread_count_out_of_range_is_refused_by_name() {
    assert_thread_count_refused(
        "CM_SESSION_THREADS",
        &["65", "-1", "two", ""],
        "session_threads",
        "0 to 64",
    );
}

#[tokio::test]
async fn insecure_no_auth_on_loopback_serves_without_tokens_but_keeps_origin_checks() {
    let mut s = TestServer::start_with(|c| c.insecure_no_auth = true).await;
    assert!(s.token.is_none(), "no token is created when auth is off");
    s.token = None;
    assert_eq!(s.get("/api/tasks").await.status, 200);
    let r = s
        .send(
            s.http
                .post(s.url("/api/tasks"))
                .header("origin", "https://evil.example")
                .json(&json!({"title": "x"})),
        )
        .await;
    assert_eq!(r.status, 403, "cross-site changes stay refused: {}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn several_authorization_headers_are_refused() {
    let s = TestServer::start().await;
    let monitor = s.create_token("monitor").await;
    let r = s
        .send(
            s.req(reqwest::Method::GET, "/api/system/health/detailed")
                .header("authorization", format!("Bearer {monitor}")),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    s.stop().await;
}
