//! Hostile HTTP: what hyper refuses on its own gets the JSON error shape, `HEAD` is `GET`
//! without a body, slow and idle connections are cut off, and floods meet the connection caps
//! while health and normal clients keep being served.

mod common;
use common::{ServerProcess, TestServer, WAIT};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Sends `request` as is and reads until the server closes or `WAIT` passes.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    read_all(&mut tcp).await
}

async fn read_all(tcp: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status and JSON error body of a raw response.
fn status_and_error(resp: &str) -> (u16, Value) {
    let status = resp
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {resp:?}"));
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, v["error"].clone())
}

fn assert_json_error(resp: &str, status: u16, code: &str) {
    let (got, err) = status_and_error(resp);
    assert_eq!(got, status, "{resp}");
    assert_eq!(err["code"], code, "{resp}");
    assert!(
        err["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{resp}"
    );
}

#[tokio::test]
async fn what_the_http_parser_refuses_still_gets_the_json_error_shape() {
    let s = TestServer::start().await;
    let long_path = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    assert_json_error(
        &exchange(s.addr, long_path.as_bytes()).await,
        414,
        "uri_too_long",
    );

    let long_query = format!(
        "GET /api/health?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(1_000_000)
    );
    assert_json_error(
        &exchange(s.addr, long_query.as_bytes()).await,
        431,
        "headers_too_large",
    );

    let mut many = String::from("GET /api/health HTTP/1.1\r\nHost: x\r\n");
    for i in 0..1000 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_json_error(
        &exchange(s.addr, many.as_bytes()).await,
        431,
        "headers_too_large",
    );

    let negative = b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n";
    assert_json_error(&exchange(s.addr, negative).await, 400, "bad_request");

    let connect = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    assert_json_error(&exchange(s.addr, connect).await, 405, "method_not_allowed");
    let unknown = format!(
        "BREW /api/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\n\r\n",
        s.token.as_deref().unwrap()
    );
    assert_json_error(
        &exchange(s.addr, unknown.as_bytes()).await,
        405,
        "method_not_allowed",
    );
    // The server is unharmed.
    assert_eq!(s.get("/api/health").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn head_is_answered_wherever_get_is_with_the_same_status_and_headers() {
    let s = TestServer::start().await;
    for path in [
        "/api/health",
        "/api/tasks",
        "/api/tasks/999999",
        "/",
        "/api/nope",
    ] {
        let get = s.get(path).await;
        let head = s.send(s.req(reqwest::Method::HEAD, path)).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} has a body");
        for name in ["content-type", "content-length"] {
            assert_eq!(
                head.headers.get(name),
                get.headers.get(name),
                "{name} of {path}"
            );
        }
    }
    // Without credentials HEAD is refused as GET is.
    let anonymous = reqwest::Client::new()
        .head(s.url("/api/tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn slow_bodies_get_408_and_silent_or_idle_connections_are_closed() {
    let s = TestServer::start_with(|c| {
        c.header_read_timeout = std::time::Duration::from_secs(1);
        c.body_read_timeout = std::time::Duration::from_secs(1);
        c.keep_alive_timeout = std::time::Duration::from_secs(4);
    })
    .await;
    let token = s.token.clone().unwrap();
    let short_body = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":\"x\""
    );
    let resp = exchange(s.addr, short_body.as_bytes()).await;
    assert_json_error(&resp, 408, "request_timeout");

    // Nothing sent, half a header, and an idle keep-alive: each is closed by the server
    // (read_to_end returns) well within WAIT.
    for request in [
        &b""[..],
        b"GET /api/health HTTP/1.1\r\nHost:",
        b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let started = std::time::Instant::now();
        let resp = exchange(s.addr, request).await;
        assert!(started.elapsed() < WAIT, "held open: {request:?}");
        if request.ends_with(b"\r\n\r\n") {
            assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        }
    }

    // Between requests the keep-alive limit (4 s) applies, not the header one (1 s): an idle
    // keep-alive connection is still open 2 s after its response.
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.ends_with(b"}") {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the response ended");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let early = tokio::time::timeout(std::time::Duration::from_secs(2), tcp.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "closed before the keep-alive timeout: {early:?}"
    );
    assert_eq!(
        read_all(&mut tcp).await,
        "",
        "closed after it, with nothing sent"
    );
    s.stop().await;
}

/// A connection from `source` (any 127.0.0.0/8 address works on Linux).
async fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::from(source), 0).into())?;
    socket.connect(addr).await
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let s = TestServer::start_with(|c| c.max_connections_per_client = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect_from([127, 0, 0, 2], s.addr).await.unwrap();
        tcp.write_all(b"GET /api/health HTTP/1.1\r\n")
            .await
            .unwrap();
        held.push(tcp);
    }
    let mut fourth = connect_from([127, 0, 0, 2], s.addr).await.unwrap();
    assert_json_error(&read_all(&mut fourth).await, 503, "too_many_connections");
    // Another address is served meanwhile.
    assert_eq!(s.get("/api/health").await.status, 200);
    drop(held);
    s.stop().await;
}

#[tokio::test]
async fn under_a_low_fd_limit_a_flood_of_half_open_connections_leaves_health_and_tasks_working() {
    let dir = tempfile::tempdir().unwrap();
    let p = ServerProcess::start_limited(
        dir.path(),
        "127.0.0.1:0",
        &["--header-read-timeout-secs", "120"],
        &[],
        Some(256),
    )
    .await;
    // 300 half-sent requests from ten addresses (30 each: under the per-address cap, over the
    // total cap, which is half the fd limit).
    let mut attackers = Vec::new();
    for i in 0..300u32 {
        let source = [127, 0, 1, 2 + (i % 10) as u8];
        if let Ok(mut tcp) = connect_from(source, p.addr).await {
            let _ = tcp
                .write_all(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\n")
                .await;
            attackers.push(tcp);
        }
    }
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let health = http
        .get(format!("{}/api/health", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let created = http
        .post(format!("{}/api/tasks", p.base))
        .bearer_auth(&p.token)
        .json(&json!({"title": "made during a flood"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    drop(attackers);
    let after = http
        .get(format!("{}/api/health", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200);
}
