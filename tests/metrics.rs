//! `/metrics` parses as Prometheus text (with the reference parser, Python's prometheus_client)
//! and its counters move with requests.

mod common;
use std::io::Write;
use std::process::{Command, Stdio};

use common::TestServer;
use serde_json::Value;

/// Parses exposition text with prometheus_client; returns `[[name, {labels}, value], ...]`.
fn parse(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    const SCRIPT: &str = "import sys, json\n\
from prometheus_client.parser import text_string_to_metric_families\n\
out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
print(json.dumps(out))";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the text (scripts/test installs it into target/test-tools/venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, serde_json::Map<String, Value>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    v
}

async fn scrape(s: &TestServer) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let r = s.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    parse(&r.text)
}

fn value(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test]
async fn counters_move_with_requests_and_routes_are_templates() {
    let s = TestServer::start().await;
    let before = scrape(&s).await;
    for i in 0..3 {
        s.get(&format!("/api/tasks/{}", 900 + i)).await; // 404s on a templated route
    }
    s.post("/api/tasks", serde_json::json!({"title": "m"}))
        .await;
    let after = scrape(&s).await;

    let key = [
        ("route", "/api/tasks/{id}"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(
        value(&after, "http_requests_total", &key) - value(&before, "http_requests_total", &key),
        3.0
    );
    let key = [
        ("route", "/api/tasks"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(value(&after, "http_requests_total", &key), 1.0);
    assert!(
        !after.iter().any(|(_, l, _)| l
            .get("route")
            .and_then(Value::as_str)
            .is_some_and(|r| r.contains("900"))),
        "no raw paths in labels"
    );
    assert!(
        value(
            &after,
            "http_request_duration_seconds_count",
            &[("route", "/api/tasks/{id}")]
        ) >= 3.0
    );
    for name in [
        "websocket_connections",
        "sessions_live",
        "runs_queued",
        "pty_output_bytes_total",
        "db_pool_connections",
        "db_checkout_timeouts_total",
        "reaper_runs_total",
        "log_records_dropped_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(after.iter().any(|(n, _, _)| n == name), "{name} missing");
    }
    assert!(value(&after, "process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(value(&after, "process_open_fds", &[]) > 3.0);
    s.stop().await;
}

#[tokio::test]
async fn session_gauges_and_pty_bytes_move_with_terminals() {
    use common::term::{create, events, sh, wait_exited};
    let s = TestServer::start().await;
    let before = scrape(&s).await;
    let mut ev = events(&s).await;
    let t = create(&s, sh("printf 0123456789")).await;
    wait_exited(&mut ev, t["id"].as_str().unwrap()).await;
    let live = create(&s, sh("exec cat")).await;
    let after = scrape(&s).await;
    let bytes = value(&after, "pty_output_bytes_total", &[])
        - value(&before, "pty_output_bytes_total", &[]);
    assert!(bytes >= 10.0, "pty bytes counted: {bytes}");
    assert_eq!(value(&after, "sessions_live", &[("kind", "terminal")]), 1.0);
    assert!(
        value(
            &after,
            "executions_total",
            &[("type", "terminal"), ("status", "succeeded")]
        ) >= 1.0
    );
    s.delete(&format!("/api/terminals/{}", live["id"].as_str().unwrap()))
        .await;
    s.stop().await;
}
