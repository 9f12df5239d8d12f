//! Every route and WebSocket of the router needs the right credential.
//!
//! [`ROUTES`] is the one table of the router's routes. A test reads the `path!(…)` patterns in
//! `src/http/*.rs` and fails when one is missing here, so a new route cannot slip in untested;
//! another fails when a row names a route the router does not have. The OpenAPI document served
//! at `/api/openapi.json` must describe exactly these routes, with the same public ones.

mod common;
use common::TestServer;

use reqwest::Method;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// No credential needed.
    Public,
    /// Any valid credential.
    AnyScope,
    /// `monitor` or `admin`.
    Monitor,
    /// `admin` only.
    Admin,
}
use Need::*;

/// (method or "WS", concrete path, what it needs). Ids are `1`: a route answering "no task with
/// id 1" (404) still proves it exists and was reached past the guard. Routes must be declared
/// with `warp::path!(…)` for the source scan below to see them.
const ROUTES: &[(&str, &str, Need)] = &[
    ("GET", "/api/health", Public),
    ("GET", "/api/system/health", Public),
    ("GET", "/api/openapi.json", Public),
    ("POST", "/api/auth/login", Public),
    ("GET", "/api/auth/session", Public),
    ("GET", "/api/auth/me", AnyScope),
    ("POST", "/api/auth/logout", AnyScope),
    ("GET", "/api/system/health/detailed", Monitor),
    ("GET", "/api/tasks", Admin),
    ("POST", "/api/tasks", Admin),
    ("GET", "/api/tasks/1", Admin),
    ("PATCH", "/api/tasks/1", Admin),
    ("DELETE", "/api/tasks/1", Admin),
    ("GET", "/api/executions", Admin),
    ("GET", "/api/executions/1", Admin),
    ("GET", "/api/executions/1/output", Admin),
    ("GET", "/api/executions/1/diff", Admin),
    ("POST", "/api/executions/1/merge", Admin),
    ("POST", "/api/executions/1/discard", Admin),
    ("GET", "/api/files", Admin),
    ("GET", "/api/approvals", Admin),
    ("GET", "/api/approvals/1", Admin),
    ("POST", "/api/approvals/1", Admin),
    ("WS", "/api/events", Admin),
    ("GET", "/metrics", Monitor),
    ("GET", "/api/terminals", Admin),
    ("POST", "/api/terminals", Admin),
    ("GET", "/api/terminals/1", Admin),
    ("DELETE", "/api/terminals/1", Admin),
    ("WS", "/api/terminals/1/ws", Admin),
    ("GET", "/api/agent-kinds", Admin),
    ("GET", "/api/terminals/1/recording.cast", Admin),
    ("GET", "/api/agents", Admin),
    ("POST", "/api/agents", Admin),
    ("GET", "/api/agents/1", Admin),
    ("PATCH", "/api/agents/1", Admin),
    ("DELETE", "/api/agents/1", Admin),
    ("POST", "/api/agents/1/session", Admin),
    ("GET", "/api/agent-sessions", Admin),
    ("GET", "/api/agent-sessions/1", Admin),
    ("DELETE", "/api/agent-sessions/1", Admin),
    ("WS", "/api/agent-sessions/1/ws", Admin),
    ("GET", "/api/agent-sessions/1/diff", Admin),
    ("POST", "/api/agent-sessions/1/merge", Admin),
    ("POST", "/api/agent-sessions/1/discard", Admin),
    ("GET", "/api/agent-sessions/1/recording.cast", Admin),
    ("POST", "/api/tasks/1/run", Admin),
    ("POST", "/api/executions/1/cancel", Admin),
    ("WS", "/api/executions/1/events", Admin),
    ("GET", "/api/push/key", Admin),
    ("GET", "/api/push/subscriptions", Admin),
    ("POST", "/api/push/subscriptions", Admin),
    ("DELETE", "/api/push/subscriptions", Admin),
    ("POST", "/api/push/test", Admin),
];

/// `/api/tasks/1` → `/api/tasks/{}`: the shape a `path!` pattern has.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The `path!("a" / "b" / i64)` patterns of one source file, as `/a/b/{}`.
fn path_patterns(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find("path!(") {
        rest = &rest[i + "path!(".len()..];
        let Some(end) = rest.find(')') else { break };
        let inner = &rest[..end];
        let segs: Vec<String> = inner
            .split('/')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "..")
            .map(|s| {
                if s.starts_with('"') {
                    s.trim_matches('"').to_string()
                } else {
                    "{}".to_string()
                }
            })
            .collect();
        out.push(format!("/{}", segs.join("/")));
    }
    out
}

#[test]
fn every_path_in_the_router_source_is_in_the_table() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let known: Vec<String> = ROUTES.iter().map(|(_, p, _)| shape(p)).collect();
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for pattern in path_patterns(&src) {
            seen += 1;
            assert!(
                known.contains(&pattern),
                "route {pattern} (in {}) is not in tests/auth_routes.rs ROUTES: add a row for each \
                 of its methods with the credential it needs",
                path.display()
            );
        }
    }
    assert!(seen >= 10, "the path! scan found only {seen} routes");
}

/// The operations of the served OpenAPI document: (method or "WS", path shape, public?).
fn documented_operations(doc: &serde_json::Value) -> Vec<(String, String, bool)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let shape = path
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().expect("path item") {
            if method == "parameters" {
                continue;
            }
            let method = if op["x-websocket"] == true {
                "WS".to_string()
            } else {
                method.to_ascii_uppercase()
            };
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            ops.push((method, shape.clone(), public));
        }
    }
    ops.sort();
    ops
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_of_the_router() {
    let s = TestServer::start().await;
    let r = s.send(s.http.get(s.url("/api/openapi.json"))).await;
    assert_eq!(r.status, 200, "served without a credential: {}", r.text);
    assert_eq!(r.body["openapi"], "3.1.0");
    assert_eq!(r.body["info"]["version"], env!("CARGO_PKG_VERSION"));
    let documented = documented_operations(&r.body);
    let mut routed: Vec<(String, String, bool)> = ROUTES
        .iter()
        .map(|&(m, p, need)| (m.to_string(), shape(p), need == Public))
        .collect();
    routed.sort();
    for op in &routed {
        assert!(
            documented.contains(op),
            "{op:?} is a route but docs/openapi.json does not describe it (or disagrees on \
             whether it is public): add it"
        );
    }
    for op in &documented {
        assert!(
            routed.contains(op),
            "docs/openapi.json describes {op:?}, which is not a route in ROUTES: remove it or \
             fix its method/security"
        );
    }
    s.stop().await;
}

/// Structural validity by the reference validator (PyPI `openapi-spec-validator`), which
/// `scripts/test` installs into its venv and puts on PATH.
#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    let doc = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    let validator =
        std::env::var("CM_OPENAPI_VALIDATOR").unwrap_or_else(|_| "openapi-spec-validator".into());
    let out = std::process::Command::new(&validator)
        .arg(doc)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {validator} ({e}): run the tests with scripts/test, which installs it, \
                 or `pip install openapi-spec-validator` into a venv on PATH (or set \
                 CM_OPENAPI_VALIDATOR to its path)"
            )
        });
    assert!(
        out.status.success(),
        "docs/openapi.json is not valid OpenAPI 3.1:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `method path` with `bearer`; WebSockets report the upgrade's HTTP status (101 = open).
async fn status(s: &TestServer, method: &str, path: &str, bearer: Option<&str>) -> (u16, String) {
    if method == "WS" {
        let mut req = s.ws_url(path).into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        return match tokio_tungstenite::connect_async(req).await {
            Ok((_ws, resp)) => (resp.status().as_u16(), String::new()),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                (resp.status().as_u16(), body)
            }
            Err(e) => panic!("ws {path}: {e}"),
        };
    }
    let mut rb = s
        .http
        .request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(path));
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    if matches!(method, "POST" | "PATCH") {
        rb = rb.json(&serde_json::json!({}));
    }
    let r = s.send(rb).await;
    (r.status, r.text)
}

#[tokio::test]
async fn every_route_refuses_a_missing_credential_and_a_too_small_scope() {
    let s = TestServer::start().await;
    let admin = s.token.clone().expect("harness admin token");
    let monitor = s.create_token("monitor").await;
    for &(method, path, need) in ROUTES {
        let (anon, body) = status(&s, method, path, None).await;
        if need == Public {
            assert!(
                anon != 401 && anon != 403,
                "{method} {path} is public, got {anon}"
            );
        } else {
            assert_eq!(anon, 401, "{method} {path} without credential: {body}");
            assert!(body.contains("\"unauthorized\""), "{method} {path}: {body}");
        }
        let (mon, body) = status(&s, method, path, Some(&monitor)).await;
        if need == Admin {
            assert_eq!(mon, 403, "{method} {path} with a monitor token: {body}");
            assert!(body.contains("\"forbidden\""), "{method} {path}: {body}");
        } else {
            assert!(
                mon != 401 && mon != 403,
                "{method} {path} monitor: {mon} {body}"
            );
        }
        let (adm, body) = status(&s, method, path, Some(&admin)).await;
        assert!(
            adm != 401 && adm != 403,
            "{method} {path} admin: {adm} {body}"
        );
        // The row names a real route: the router answers something other than "no route".
        assert!(
            !body.contains("no route for") && adm != 405,
            "{method} {path} is not a route of the router ({adm} {body}): fix ROUTES"
        );
        if path == "/api/events" {
            assert_eq!(adm, 101, "{path}: admin opens the WebSocket");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn unknown_api_paths_and_metrics_need_a_credential_first() {
    let s = TestServer::start().await;
    for path in [
        "/api/nope",
        "/api",
        "/metrics",
        "//api//tasks",
        "/%61pi/tasks",
    ] {
        let (code, body) = status(&s, "GET", path, None).await;
        assert_eq!(code, 401, "{path}: {body}");
    }
    let (code, body) = status(&s, "GET", "/api/nope", s.token.as_deref()).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("\"not_found\""));
    s.stop().await;
}

#[tokio::test]
async fn a_token_in_the_query_string_is_ignored() {
    let s = TestServer::start().await;
    let t = s.token.clone().unwrap();
    for q in [
        "token",
        "access_token",
        "auth",
        "bearer",
        "session",
        "cm_session",
    ] {
        let (code, _) = status(&s, "GET", &format!("/api/tasks?{q}={t}"), None).await;
        assert_eq!(code, 401, "?{q}= must not authenticate");
        let (code, _) = status(&s, "WS", &format!("/api/events?{q}={t}"), None).await;
        assert_eq!(code, 401, "WS ?{q}= must not authenticate");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_malformed_or_unknown_bearer_is_401_without_echoing_it() {
    let s = TestServer::start().await;
    let fake = format!("cmt_{}", "ab".repeat(32));
    for cred in [fake.as_str(), "not-a-token", ""] {
        let (code, body) = status(&s, "GET", "/api/tasks", Some(cred)).await;
        assert_eq!(code, 401, "{cred:?}: {body}");
        if !cred.is_empty() {
            assert!(!body.contains(cred), "error echoes the credential: {body}");
        }
    }
    s.stop().await;
}
