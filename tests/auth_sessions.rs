//! Browser sessions and the rules around them: login cookie, Origin checks on WebSockets and
//! changes, logout and revocation taking effect at once, the login rate limit and which client
//! address it counts.

mod common;
use common::{run_cli, TestServer};

use reqwest::header::HeaderMap;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Logs in with `token`; returns the reply and the `cm_session=…` pair from Set-Cookie.
async fn login(s: &TestServer, token: &str) -> (common::Reply, Option<String>) {
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/login"))
                .json(&json!({ "token": token })),
        )
        .await;
    let cookie = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cm_session=cms_"))
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (r, cookie)
}

/// The upgrade's HTTP status for `/api/events` with these headers (101 = opened).
async fn ws_status(s: &TestServer, headers: &[(&'static str, String)]) -> u16 {
    let mut req = s.ws_url("/api/events").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_ws, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("ws: {e}"),
    }
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_me_shows_the_scope() {
    let s = TestServer::start().await;
    let (r, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["scope"], "admin");
    let set = r.headers["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http on loopback: no Secure ({set})"
    );
    let cookie = cookie.expect("session cookie");
    let me = s
        .send(s.http.get(s.url("/api/auth/me")).header("cookie", &cookie))
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["scope"], "admin");
    assert_eq!(me.body["via"], "cookie");
    let monitor = s.create_token("monitor").await;
    let (r, _) = login(&s, &monitor).await;
    assert_eq!(r.body["scope"], "monitor");
    s.stop().await;
}

#[tokio::test]
async fn cookie_is_secure_when_public_url_is_https() {
    let s = TestServer::start_with(|c| c.public_url = Some("https://cm.example.com".into())).await;
    let (r, _) = login(&s, s.token.as_deref().unwrap()).await;
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    s.stop().await;
}

#[tokio::test]
async fn websocket_with_cookie_needs_our_own_origin() {
    let s = TestServer::start().await;
    let (_, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    let cookie = cookie.unwrap();
    let own = format!("http://{}", s.addr);
    let c = || ("cookie", cookie.clone());
    assert_eq!(
        ws_status(&s, &[c(), ("origin", "https://evil.example".into())]).await,
        403
    );
    assert_eq!(ws_status(&s, &[c()]).await, 403, "no Origin + cookie");
    assert_eq!(ws_status(&s, &[c(), ("origin", own.clone())]).await, 101);
    let bearer = (
        "authorization",
        format!("Bearer {}", s.token.clone().unwrap()),
    );
    assert_eq!(
        ws_status(&s, std::slice::from_ref(&bearer)).await,
        101,
        "no Origin + Bearer"
    );
    assert_eq!(ws_status(&s, &[]).await, 401);
    s.stop().await;
}

#[tokio::test]
async fn allowed_origins_and_public_url_are_accepted() {
    let s = TestServer::start_with(|c| {
        c.public_url = Some("https://cm.example.com".into());
        c.allowed_origins = vec!["http://localhost:3000".into()];
    })
    .await;
    let (_, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    let cookie = ("cookie", cookie.unwrap());
    for origin in ["https://cm.example.com", "http://localhost:3000"] {
        assert_eq!(
            ws_status(&s, &[cookie.clone(), ("origin", origin.into())]).await,
            101
        );
    }
    assert_eq!(
        ws_status(&s, &[cookie, ("origin", "http://localhost:3001".into())]).await,
        403
    );
    s.stop().await;
}

#[tokio::test]
async fn cookie_changes_need_origin_but_reads_do_not() {
    let s = TestServer::start().await;
    let (_, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    let cookie = cookie.unwrap();
    let own = format!("http://{}", s.addr);
    let post = |origin: Option<&str>| {
        let mut rb = s
            .http
            .post(s.url("/api/tasks"))
            .header("cookie", &cookie)
            .json(&json!({"title": "t"}));
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        rb
    };
    assert_eq!(s.send(post(None)).await.status, 403);
    assert_eq!(s.send(post(Some("https://evil.example"))).await.status, 403);
    assert_eq!(s.send(post(Some(&own))).await.status, 201);
    let get = s.http.get(s.url("/api/tasks")).header("cookie", &cookie);
    assert_eq!(s.send(get).await.status, 200);
    // A foreign Origin is refused even with a Bearer token and on login.
    let r = s
        .send(
            s.req(reqwest::Method::POST, "/api/tasks")
                .header("origin", "https://evil.example")
                .json(&json!({"title": "t"})),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = s
        .send(
            s.http
                .post(s.url("/api/auth/login"))
                .header("origin", "https://evil.example")
                .json(&json!({"token": s.token.clone().unwrap()})),
        )
        .await;
    assert_eq!(r.status, 403);
    s.stop().await;
}

#[tokio::test]
async fn logged_out_cookie_stops_working_at_once() {
    let s = TestServer::start().await;
    let (_, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    let cookie = cookie.unwrap();
    let own = format!("http://{}", s.addr);
    let me = || s.http.get(s.url("/api/auth/me")).header("cookie", &cookie);
    assert_eq!(s.send(me()).await.status, 200);
    let out = s
        .send(
            s.http
                .post(s.url("/api/auth/logout"))
                .header("cookie", &cookie)
                .header("origin", &own),
        )
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    assert!(out.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(s.send(me()).await.status, 401);
    let ws = ws_status(&s, &[("cookie", cookie.clone()), ("origin", own)]).await;
    assert_eq!(ws, 401);
    s.stop().await;
}

#[tokio::test]
async fn revoked_token_and_its_sessions_stop_working_at_once() {
    let s = TestServer::start().await;
    let t = s.create_token("admin").await;
    let (_, cookie) = login(&s, &t).await;
    let cookie = cookie.unwrap();
    let bearer = || s.http.get(s.url("/api/tasks")).bearer_auth(&t);
    let by_cookie = || s.http.get(s.url("/api/tasks")).header("cookie", &cookie);
    assert_eq!(s.send(bearer()).await.status, 200);
    assert_eq!(s.send(by_cookie()).await.status, 200);
    // Revoked with the CLI while the server runs, as an operator would.
    let id = s
        .send(s.http.get(s.url("/api/auth/me")).bearer_auth(&t))
        .await
        .body["token_id"]
        .as_i64()
        .unwrap();
    let dir = s.dir.path().to_str().unwrap().to_string();
    let (code, _, err) = run_cli(&["token", "revoke", &id.to_string(), "--data-dir", &dir]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.send(bearer()).await.status, 401);
    assert_eq!(s.send(by_cookie()).await.status, 401);
    // The harness's own token is untouched.
    assert_eq!(s.get("/api/tasks").await.status, 200);
    s.stop().await;
}

async fn failed_login(s: &TestServer, headers: HeaderMap) -> common::Reply {
    s.send(
        s.http
            .post(s.url("/api/auth/login"))
            .headers(headers)
            .json(&json!({"token": format!("cmt_{}", "0".repeat(64))})),
    )
    .await
}

fn xff(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", v.parse().unwrap());
    h
}

#[tokio::test]
async fn login_is_rate_limited_and_spoofed_forwarded_for_is_ignored() {
    let s = TestServer::start().await;
    for i in 0..5 {
        // A different spoofed client each time: from an untrusted peer it changes nothing.
        let r = failed_login(&s, xff(&format!("10.0.0.{i}"))).await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = failed_login(&s, xff("10.0.0.99")).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // While limited even the right token is refused: guessing cannot go on.
    let (r, _) = login(&s, s.token.as_deref().unwrap()).await;
    assert_eq!(r.status, 429);
    // Other routes are not affected.
    assert_eq!(s.get("/api/tasks").await.status, 200);
    s.stop().await;
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_names_the_client() {
    let s =
        TestServer::start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    for _ in 0..5 {
        assert_eq!(failed_login(&s, xff("198.51.100.1")).await.status, 401);
    }
    assert_eq!(failed_login(&s, xff("198.51.100.1")).await.status, 429);
    // Another client behind the same proxy is still free.
    assert_eq!(failed_login(&s, xff("198.51.100.2")).await.status, 401);
    let mut fwd = HeaderMap::new();
    fwd.insert("forwarded", "for=198.51.100.1".parse().unwrap());
    assert_eq!(failed_login(&s, fwd).await.status, 429);
    s.stop().await;
}

#[tokio::test]
async fn session_says_whether_logged_in_without_a_failed_request() {
    let s = TestServer::start().await;
    let anon = s.send(s.http.get(s.url("/api/auth/session"))).await;
    assert_eq!(anon.status, 200, "{}", anon.text);
    assert_eq!(anon.body["authenticated"], false);
    let stale = s
        .send(
            s.http
                .get(s.url("/api/auth/session"))
                .header("cookie", "cm_session=cms_not-a-real-session"),
        )
        .await;
    assert_eq!(stale.status, 200, "{}", stale.text);
    assert_eq!(stale.body["authenticated"], false);
    let (_, cookie) = login(&s, s.token.as_deref().unwrap()).await;
    let cookie = cookie.expect("session cookie");
    let me = s
        .send(
            s.http
                .get(s.url("/api/auth/session"))
                .header("cookie", &cookie),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["authenticated"], true);
    assert_eq!(me.body["scope"], "admin");
    assert_eq!(me.body["via"], "cookie");
    let logout = s
        .send(
            s.http
                .post(s.url("/api/auth/logout"))
                .header("cookie", &cookie)
                .header("origin", &s.base),
        )
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    let after = s
        .send(
            s.http
                .get(s.url("/api/auth/session"))
                .header("cookie", &cookie),
        )
        .await;
    assert_eq!(after.body["authenticated"], false, "{}", after.text);
    s.stop().await;
}
