//! Headless agent runs against a real server with the fake Claude Code: events parsed in order
//! and replayed, result/cost/usage stored, garbage tolerated, the prompt kept out of argv,
//! cancel and timeout killing the group, and the queue's limit and priority.

mod common;
use common::runs::{agent, event_stream, run, task};
use common::term::{events, wait_event};
use common::{TestServer, Ws};
use futures_util::StreamExt;
use serde_json::{json, Value};

async fn finished(ev: &mut Ws, id: i64) -> Value {
    wait_event(ev, "execution.finished", |d| d["id"] == id).await
}

/// Waits (bounded) until task `t` has `status`: the task moves just after its run is recorded
/// (and `execution.finished` is sent), so reading it at once could see the old status.
async fn task_reaches(s: &TestServer, t: i64, status: &str) -> Value {
    common::eventually(&format!("task {t} {status}"), || async {
        let task = s.get(&format!("/api/tasks/{t}")).await.body;
        (task["status"] == status).then_some(task)
    })
    .await
}

fn gone(pid: i64) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err()
}

#[tokio::test]
async fn a_run_streams_its_events_in_order_and_stores_result_cost_and_usage() {
    let s = TestServer::start().await;
    let a = agent(&s, "runner", json!({})).await;
    let t = task(&s, "fix the bug", Some(a), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    let first = wait_event(&mut ev, "execution.event", |d| d["execution_id"] == id).await;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["kind"], "system");
    let done = finished(&mut ev, id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["result"], "Done: fix the bug");
    assert_eq!(exec["cost_usd"], 0.0123);
    assert_eq!(exec["usage"]["output_tokens"], 20);
    assert_eq!(exec["exit_code"], 0);
    assert!(exec["command"]
        .as_array()
        .unwrap()
        .contains(&json!("stream-json")));
    assert!(gone(exec["pid"].as_i64().unwrap()), "the child was reaped");
    let task = task_reaches(&s, t, "succeeded").await;
    assert_eq!(task["executions_active"], 0);

    let all = event_stream(&s, id, 0).await;
    let kinds: Vec<&str> = all
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["data"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["system", "assistant", "assistant", "user", "result"]
    );
    let seqs: Vec<i64> = all
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["data"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(all.last().unwrap()["type"], "end");
    let later = event_stream(&s, id, 3).await;
    assert_eq!(later.len(), 3, "events 4, 5 and the end: {later:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_prompt_starting_with_dashes_is_text_on_stdin_not_a_flag() {
    let s = TestServer::start().await;
    let a = agent(&s, "dashes", json!({})).await;
    let t = task(&s, "--version --help", Some(a), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    assert_eq!(finished(&mut ev, id).await["status"], "succeeded");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["result"], "Done: --version --help");
    assert!(!exec["command"].to_string().contains("--version"));
    s.stop().await;
}

#[tokio::test]
async fn garbage_lines_become_raw_events_and_errors_fail_with_stderr() {
    let s = TestServer::start().await;
    let g = agent(&s, "garbage", json!({"FAKE_CLAUDE_MODE": "garbage"})).await;
    let e = agent(&s, "error", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    let mut ev = events(&s).await;
    let id = run(&s, task(&s, "g", Some(g), 5).await).await;
    assert_eq!(finished(&mut ev, id).await["status"], "succeeded");
    let all = event_stream(&s, id, 0).await;
    let raw = all.iter().filter(|m| m["data"]["kind"] == "raw").count();
    assert_eq!(raw, 3, "{all:?}");

    let t = task(&s, "e", Some(e), 5).await;
    let id = run(&s, t).await;
    let done = finished(&mut ev, id).await;
    assert_eq!(done["status"], "failed");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["exit_code"], 1);
    assert_eq!(exec["result"], "failed as asked");
    assert!(exec["output_tail"]
        .as_str()
        .unwrap()
        .contains("error as asked"));
    task_reaches(&s, t, "failed").await;
    s.stop().await;
}

#[tokio::test]
async fn a_task_shows_its_latest_run_and_a_failure_says_why_in_words() {
    let s = TestServer::start().await;
    let ok = agent(&s, "ok", json!({})).await;
    let bad = agent(&s, "bad", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    let mut ev = events(&s).await;
    let t = task(&s, "twice", Some(ok), 5).await;
    let first = run(&s, t).await;
    assert_eq!(finished(&mut ev, first).await["status"], "succeeded");
    task_reaches(&s, t, "succeeded").await;

    // A later run that fails: the task follows it rather than keep its first success.
    let r = s
        .post(&format!("/api/tasks/{t}/run"), json!({"agent_id": bad}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let second = r.body["id"].as_i64().unwrap();
    let done = finished(&mut ev, second).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["reason"], "the agent reported an error: failed as asked",
        "the agent's own words, no Rust debug syntax"
    );
    let task = task_reaches(&s, t, "failed").await;
    assert!(task["completed_at"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn cancel_kills_the_group_even_when_it_ignores_sigterm() {
    let s = TestServer::start().await;
    let a = agent(
        &s,
        "stubborn",
        json!({"FAKE_CLAUDE_MODE": "slow", "FAKE_CLAUDE_IGNORE_TERM": "1"}),
    )
    .await;
    let t = task(&s, "never ends", Some(a), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    wait_event(&mut ev, "execution.event", |d| {
        d["execution_id"] == id && d["seq"] == 4
    })
    .await;
    let r = s
        .post(&format!("/api/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let done = finished(&mut ev, id).await;
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["exit_signal"], 9, "only SIGKILL ended it: {done}");
    assert!(gone(done["pid"].as_i64().unwrap()));
    task_reaches(&s, t, "cancelled").await;
    let again = s
        .post(&format!("/api/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(again.status, 409);
    s.stop().await;
}

#[tokio::test]
async fn a_run_over_its_timeout_is_killed_and_failed() {
    let s = TestServer::start_with(|c| c.run_timeout = std::time::Duration::from_secs(1)).await;
    let a = agent(&s, "slow", json!({"FAKE_CLAUDE_MODE": "slow"})).await;
    let mut ev = events(&s).await;
    let id = run(&s, task(&s, "t", Some(a), 5).await).await;
    let done = finished(&mut ev, id).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["reason"].as_str().unwrap().contains("timed out"),
        "{done}"
    );
    assert!(gone(done["pid"].as_i64().unwrap()));
    s.stop().await;
}

#[tokio::test]
async fn the_queue_runs_at_most_the_limit_highest_priority_first() {
    let s = TestServer::start_with(|c| c.max_concurrent_runs = 1).await;
    let a = agent(
        &s,
        "queued",
        json!({"FAKE_CLAUDE_MODE": "slow", "FAKE_CLAUDE_DELAY_SECS": "0.3"}),
    )
    .await;
    let mut ev = events(&s).await;
    let first = run(&s, task(&s, "first", Some(a), 5).await).await;
    let low = run(&s, task(&s, "low", Some(a), 1).await).await;
    let dropped = run(&s, task(&s, "dropped", Some(a), 10).await).await;
    let high = run(&s, task(&s, "high", Some(a), 9).await).await;
    let pending = s.get(&format!("/api/executions/{low}")).await.body;
    assert_eq!(pending["status"], "pending");
    let busy = s.delete(&format!("/api/agents/{a}")).await;
    assert_eq!(busy.status, 409, "an agent with queued runs is busy");
    let c = s
        .post(&format!("/api/executions/{dropped}/cancel"), json!({}))
        .await;
    assert_eq!(c.status, 202);
    let cancelled = s.get(&format!("/api/executions/{dropped}")).await.body;
    assert_eq!(
        cancelled["status"], "cancelled",
        "a pending run leaves the queue at once"
    );

    let (mut order, mut running, mut ended) = (Vec::new(), 0, 0);
    while ended < 3 {
        let msg = tokio::time::timeout(common::WAIT, ev.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        let id = v["data"]["id"].as_i64().unwrap_or(0);
        if id == dropped {
            continue;
        }
        match v["type"].as_str() {
            Some("execution.started") => {
                running += 1;
                assert!(running <= 1, "a run started while another ran");
                order.push(id);
            }
            Some("execution.finished") => {
                assert_eq!(v["data"]["status"], "succeeded");
                running -= 1;
                ended += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        order,
        [first, high, low],
        "highest priority first, then oldest"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_run_needs_an_agent() {
    let s = TestServer::start().await;
    let t = task(&s, "no agent", None, 5).await;
    let r = s.post(&format!("/api/tasks/{t}/run"), json!({})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "agent_id");
    let r = s
        .post(&format!("/api/tasks/{t}/run"), json!({"agent_id": 77}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(s.post("/api/tasks/999/run", json!({})).await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_kills_a_running_run_and_records_it_interrupted() {
    let s = TestServer::start().await;
    let a = agent(&s, "long", json!({"FAKE_CLAUDE_MODE": "slow"})).await;
    let mut ev = events(&s).await;
    let id = run(&s, task(&s, "long one", Some(a), 5).await).await;
    let started = wait_event(&mut ev, "execution.started", |d| d["id"] == id).await;
    let pid = started["pid"].as_i64().unwrap();
    let dir = s.stop_keep_dir().await;
    let conn = rusqlite::Connection::open(dir.path().join("claude-manager.db")).unwrap();
    let status: String = conn
        .query_row("SELECT status FROM executions WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(status, "interrupted");
    // SIGKILLed at shutdown; reaped by its waiter right after.
    let deadline = std::time::Instant::now() + common::WAIT;
    while !gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "run child {pid} survived shutdown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // polling a condition, bounded
    }
}

#[tokio::test]
async fn a_run_can_resume_a_conversation() {
    let s = TestServer::start().await;
    let a = agent(&s, "resume", json!({})).await;
    let t = task(&s, "continue", Some(a), 5).await;
    let mut ev = events(&s).await;
    let r = s
        .post(
            &format!("/api/tasks/{t}/run"),
            json!({"resume": "conv-123"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let init = wait_event(&mut ev, "execution.event", |d| d["execution_id"] == id).await;
    assert_eq!(init["data"]["session_id"], "conv-123");
    finished(&mut ev, id).await;
    let bad = s
        .post(&format!("/api/tasks/{t}/run"), json!({"resume": "--evil"}))
        .await;
    assert_eq!(bad.status, 422);
    s.stop().await;
}

#[tokio::test]
async fn a_run_events_socket_is_counted_while_open() {
    let s = TestServer::start().await;
    let a = agent(&s, "counted", json!({"FAKE_CLAUDE_MODE": "slow"})).await;
    let t = task(&s, "take your time", Some(a), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    wait_event(&mut ev, "execution.started", |d| d["id"] == id).await;
    let ws = s.ws(&format!("/api/executions/{id}/events?since=0")).await;
    let count = || async {
        let h = s.get("/api/system/health/detailed").await;
        h.body["websockets"]["run_events"].as_u64()
    };
    common::eventually("the socket is counted", || async {
        (count().await == Some(1)).then_some(())
    })
    .await;
    drop(ws);
    common::eventually("the closed socket is uncounted", || async {
        (count().await == Some(0)).then_some(())
    })
    .await;
    let r = s
        .post(&format!("/api/executions/{id}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    finished(&mut ev, id).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_runs_of_one_idle_task_exactly_one_is_accepted() {
    let s = TestServer::start().await;
    let a = agent(
        &s,
        "slow",
        json!({"FAKE_CLAUDE_MODE": "slow", "FAKE_CLAUDE_DELAY_SECS": "600"}),
    )
    .await;
    let t = task(&s, "once", Some(a), 5).await;
    let path = format!("/api/tasks/{t}/run");
    let replies = futures_util::future::join_all((0..20).map(|_| s.post(&path, json!({})))).await;
    let accepted = replies.iter().filter(|r| r.status == 202).count();
    let busy = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "task_busy")
        .count();
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!((accepted, busy), (1, 19), "statuses: {statuses:?}");
    let list = s
        .get(&format!("/api/executions?task_id={t}&type=agent_run"))
        .await;
    assert_eq!(
        list.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.text
    );
    s.stop().await;
}
