//! `/metrics` parses as Prometheus text (with the reference parser, Python's prometheus_client)
//! and its counters move with requests.

mod common;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{eventually, TestServer};
use serde_json::{json, Value};

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

#[tokio::test]
async fn run_queue_gauges_show_the_oldest_wait_and_failures_in_a_row() {
    use common::runs::{agent, run, task};
    use common::term::{events, wait_event};
    let s = TestServer::start_with(|c| c.max_concurrent_runs = 1).await;
    let mut ev = events(&s).await;
    let failing = agent(&s, "failing", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    for i in 0..2 {
        let id = run(&s, task(&s, &format!("fails {i}"), Some(failing), 5).await).await;
        let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
        assert_eq!(done["status"], "failed", "{done}");
    }
    let m = scrape(&s).await;
    assert_eq!(value(&m, "runs_failed_in_a_row", &[]), 2.0);
    assert_eq!(value(&m, "runs_queued_oldest_age_seconds", &[]), 0.0);

    // A slow run holds the only slot, so the next one waits in the queue and ages there.
    let slow = agent(&s, "slow", json!({"FAKE_CLAUDE_MODE": "slow"})).await;
    let holder = run(&s, task(&s, "holds the slot", Some(slow), 5).await).await;
    let fine = agent(&s, "fine", json!({})).await;
    let waiting = run(&s, task(&s, "waits", Some(fine), 5).await).await;
    let s_ref = &s;
    eventually("the queued run's age shows", || async move {
        let m = scrape(s_ref).await;
        (value(&m, "runs_queued", &[]) == 1.0
            && value(&m, "runs_queued_oldest_age_seconds", &[]) >= 0.2)
            .then_some(())
    })
    .await;
    let r = s
        .post(&format!("/api/executions/{holder}/cancel"), json!({}))
        .await;
    assert!(r.status < 300, "{}", r.text);
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == waiting).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    let m = scrape(&s).await;
    assert_eq!(
        value(&m, "runs_failed_in_a_row", &[]),
        0.0,
        "a success ends the streak; the cancelled run counts neither way"
    );
    assert_eq!(value(&m, "runs_queued", &[]), 0.0);
    assert_eq!(value(&m, "runs_queued_oldest_age_seconds", &[]), 0.0);
    s.stop().await;
}

#[tokio::test]
async fn websocket_opens_and_viewer_closes_are_counted_by_kind_and_code() {
    use common::term::close_code;
    let s = TestServer::start().await;
    let before = scrape(&s).await;
    for code in ["1000", "1001", "4008", "4404", "4429"] {
        assert!(
            before
                .iter()
                .any(|(n, l, _)| n == "websocket_viewer_closes_total"
                    && l.get("code").and_then(Value::as_str) == Some(code)),
            "close code {code} is exported before it happens"
        );
    }
    let mut ws = s.ws("/api/terminals/nosuchsession/ws").await;
    assert_eq!(close_code(&mut ws).await, 4404);
    let s_ref = &s;
    let after = eventually("the close is counted", || async move {
        let m = scrape(s_ref).await;
        (value(&m, "websocket_viewer_closes_total", &[("code", "4404")]) == 1.0).then_some(m)
    })
    .await;
    let opened = |m: &[(String, serde_json::Map<String, Value>, f64)], kind| {
        value(m, "websocket_connections_opened_total", &[("kind", kind)])
    };
    assert_eq!(
        opened(&after, "terminal") - opened(&before, "terminal"),
        1.0
    );
    assert_eq!(opened(&after, "agent"), 0.0);
    assert_eq!(
        value(&after, "websocket_viewer_closes_total", &[("code", "4008")]),
        0.0
    );
    s.stop().await;
}

#[tokio::test]
async fn capacity_disk_space_and_start_time_are_exported() {
    let s = TestServer::start_with(|c| c.max_sessions = 7).await;
    let m = scrape(&s).await;
    assert_eq!(value(&m, "sessions_max", &[]), 7.0);
    assert_eq!(value(&m, "health_ok", &[]), 1.0);
    for dir in ["data", "logs"] {
        let avail = value(&m, "filesystem_avail_bytes", &[("dir", dir)]);
        let size = value(&m, "filesystem_size_bytes", &[("dir", dir)]);
        assert!(avail > 0.0 && size >= avail, "{dir}: {avail} of {size}");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = value(&m, "process_start_time_seconds", &[]);
    assert!(
        started <= now + 1.0 && now - started < 600.0,
        "{started} vs {now}"
    );
    s.stop().await;
}

#[tokio::test]
async fn metrics_still_answer_with_health_ok_0_when_the_database_does_not() {
    use std::time::Duration;
    // Token checks read the database too; without auth the scrape itself is what meets the
    // exhausted pool.
    let s = TestServer::start_with(|c| {
        c.insecure_no_auth = true;
        c.db_pool_size = 1;
        c.db_checkout_timeout = Duration::from_millis(300);
    })
    .await;
    let hold = common::DbHold::take(&s).await;
    let m = scrape(&s).await;
    assert_eq!(value(&m, "health_ok", &[]), 0.0);
    assert!(value(&m, "db_checkout_timeouts_total", &[]) >= 1.0);
    assert_eq!(
        value(&m, "db_pool_connections", &[("state", "in_use")]),
        1.0
    );
    assert!(value(&m, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(
        !m.iter().any(|(n, _, _)| n == "runs_queued"),
        "no stale database figures while it does not answer"
    );
    hold.release().await;
    let m = scrape(&s).await;
    assert_eq!(value(&m, "health_ok", &[]), 1.0);
    assert!(m.iter().any(|(n, _, _)| n == "runs_queued"));
    s.stop().await;
}
