//! Restarts, shutdowns and crashes of the real binary: SIGTERM stops every session's process
//! group and records it `interrupted`; after `kill -9` the server binds the same port again at
//! once, every acknowledged write is there, the database is intact, the old executions are
//! `interrupted` and no process of the old run is left.

mod common;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ServerProcess, WAIT};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// A child that ignores SIGHUP, so stopping it has to escalate.
const STUBBORN: &str = "trap '' HUP; while :; do sleep 1; done";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

async fn post(http: &reqwest::Client, p: &ServerProcess, path: &str, body: Value) -> (u16, Value) {
    let r = http
        .post(format!("{}{path}", p.base))
        .bearer_auth(&p.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Three terminals, one ignoring SIGHUP: (execution id, process group) each.
async fn three_terminals(http: &reqwest::Client, p: &ServerProcess) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    for cmd in [
        json!(["sleep", "600"]),
        json!(["sh", "-c", STUBBORN]),
        json!(["sh", "-c", "while :; do echo busy; sleep 0.2; done"]),
    ] {
        let (status, t) = post(http, p, "/api/terminals", json!({ "command": cmd })).await;
        assert_eq!(status, 201, "{t}");
        // Each session leads its own group (setsid): pgid = pid.
        out.push((
            t["execution_id"].as_i64().unwrap(),
            t["pid"].as_i64().unwrap() as i32,
        ));
    }
    out
}

/// An agent session and a headless run of the fake agent that is still running (slow mode):
/// (execution id, process group) each.
async fn agent_session_and_running_run(
    http: &reqwest::Client,
    p: &ServerProcess,
) -> Vec<(i64, i32)> {
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
    let (status, agent) = post(
        http,
        p,
        "/api/agents",
        json!({"name": "slowpoke", "command": [fake],
               "env": {"FAKE_CLAUDE_MODE": "slow", "FAKE_CLAUDE_DELAY_SECS": "600"}}),
    )
    .await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_i64().unwrap();
    let (status, session) = post(
        http,
        p,
        &format!("/api/agents/{agent_id}/session"),
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let run_id = queue_run(http, p, agent_id, "long run").await;
    // Wait (bounded) until the run's process is recorded: it is running, not queued.
    let deadline = tokio::time::Instant::now() + WAIT;
    let run_pgid = loop {
        let r = http
            .get(format!("{}/api/executions/{run_id}", p.base))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap();
        let e: Value = r.json().await.unwrap();
        if e["status"] == "running" && e["pgid"].is_i64() {
            break e["pgid"].as_i64().unwrap() as i32;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run never started: {e}"
        );
        tokio::task::yield_now().await;
    };
    vec![
        (
            session["execution_id"].as_i64().unwrap(),
            session["pid"].as_i64().unwrap() as i32,
        ),
        (run_id, run_pgid),
    ]
}

/// Every session's execution is `interrupted`, none of its processes is left, the DB is sound.
async fn all_interrupted_and_gone(dir: &Path, sessions: &[(i64, i32)]) {
    let groups: Vec<i32> = sessions.iter().map(|(_, g)| *g).collect();
    groups_gone(&groups).await;
    for (exec, _) in sessions {
        assert_eq!(status_of(dir, *exec), "interrupted", "execution {exec}");
    }
    integrity_ok(dir);
}

/// Waits (bounded) until a terminal has written at least 5 bytes ("ready").
async fn wait_for_output(http: &reqwest::Client, p: &ServerProcess, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = http
            .get(format!("{}/api/terminals/{id}", p.base))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        if v["bytes_out"].as_i64().unwrap_or(0) >= 5 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "no output: {v}");
        tokio::task::yield_now().await;
    }
}

/// Live (non-zombie) processes in process group `pgid`. A zombie reparented to an init that
/// does not reap counts as dead: it holds no resources but its pid.
fn live_in_group(pgid: i32) -> Vec<i32> {
    let mut live = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        // After comm: state (0), ppid (1), pgrp (2).
        if f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && f.first() != Some(&"Z") {
            live.push(pid);
        }
    }
    live
}

/// Waits (bounded) until no process of any of `groups` is alive.
async fn groups_gone(groups: &[i32]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left: Vec<(i32, Vec<i32>)> = groups
            .iter()
            .map(|g| (*g, live_in_group(*g)))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "processes of the old run still alive: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("claude-manager.db")).unwrap()
}

fn integrity_ok(dir: &Path) {
    let ok: String = db(dir)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

fn status_of(dir: &Path, execution: i64) -> String {
    db(dir)
        .query_row(
            "SELECT status FROM executions WHERE id = ?1",
            [execution],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn sigterm_with_terminals_an_agent_session_and_a_run_exits_0_and_leaves_no_child() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let http = client();
    let mut sessions = three_terminals(&http, &p).await;
    sessions.extend(agent_session_and_running_run(&http, &p).await);
    p.signal(Signal::SIGTERM);
    let status = p.wait().await;
    assert_eq!(status.code(), Some(0), "clean exit");
    all_interrupted_and_gone(dir.path(), &sessions).await;
}

#[tokio::test]
async fn kill_9_with_sessions_and_a_run_under_write_load_then_restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let addr = p.addr;
    let http = client();
    let mut sessions = three_terminals(&http, &p).await;
    sessions.extend(agent_session_and_running_run(&http, &p).await);

    // 8 clients create tasks as fast as they can; every 201 is remembered.
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let enough = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for c in 0..8 {
        let (acked, stop, enough) = (acked.clone(), stop.clone(), enough.clone());
        let (url, token) = (format!("{}/api/tasks", p.base), p.token.clone());
        let http = http.clone();
        clients.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sent = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"title": format!("client {c} task {n}")}))
                    .send()
                    .await;
                let Ok(r) = sent else { break };
                if r.status().as_u16() != 201 {
                    continue;
                }
                let Ok(body) = r.json::<Value>().await else {
                    break;
                };
                let total = {
                    let mut a = acked.lock().unwrap();
                    a.push(body["id"].as_i64().unwrap());
                    a.len()
                };
                if total == 300 {
                    enough.notify_one();
                }
            }
        }));
    }
    tokio::time::timeout(WAIT, enough.notified())
        .await
        .expect("300 tasks created in time");
    // Killed mid-load: requests are in flight.
    p.signal(Signal::SIGKILL);
    p.wait().await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    // Same port, at once.
    let mut p2 = ServerProcess::start(dir.path(), &addr.to_string(), &[]).await;
    assert_eq!(p2.addr, addr);
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    for id in &acked {
        let r = http
            .get(format!("{}/api/tasks/{id}", p2.base))
            .bearer_auth(&p2.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "acknowledged task {id} lost");
    }
    for (exec, _) in &sessions {
        assert_eq!(
            status_of(dir.path(), *exec),
            "interrupted",
            "execution {exec}"
        );
    }
    let groups: Vec<i32> = sessions.iter().map(|(_, g)| *g).collect();
    groups_gone(&groups).await;
    let health: Value = http
        .get(format!("{}/api/system/health/detailed", p2.base))
        .bearer_auth(&p2.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["reconciliation"]["interrupted"], 5, "{health}");
    integrity_ok(dir.path());
    p2.signal(Signal::SIGTERM);
    assert_eq!(p2.wait().await.code(), Some(0));
    integrity_ok(dir.path());
}

#[tokio::test]
async fn a_second_sigterm_during_shutdown_still_exits_0_with_nothing_left() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let http = client();
    let sessions = three_terminals(&http, &p).await;
    let mut req = format!("ws://{}/api/events", p.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", p.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    p.signal(Signal::SIGTERM);
    // The shutdown has begun once the events socket is closed (1001).
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await
    .expect("events socket closed in time");
    // The process may be gone already; a second signal to it is then simply not delivered.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid()), Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0), "clean exit");
    all_interrupted_and_gone(dir.path(), &sessions).await;
}

#[tokio::test]
async fn the_last_resort_kills_what_is_left_and_records_it_interrupted() {
    use claude_manager::db::executions::{self, ExecutionStatus, ExecutionType, NewExecution};
    use std::os::unix::process::CommandExt;
    let s = common::TestServer::start().await;
    // A group that ignores SIGHUP and SIGTERM: only SIGKILL ends it.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "trap '' HUP TERM; while :; do sleep 1; done"])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let start = claude_manager::pty::process_start_time(pid);
    let boot = s.state().boot_id.to_string();
    let exec = s
        .state()
        .db
        .write(move |c| {
            let e = executions::insert(
                c,
                &NewExecution {
                    kind: ExecutionType::Terminal,
                    status: ExecutionStatus::Pending,
                    task_id: None,
                    agent_id: None,
                    boot_id: boot,
                    session_id: None,
                    cwd: None,
                    command: vec!["sh".into()],
                    meta: json!({}),
                },
            )?;
            executions::mark_running(c, e.id, pid as i64, start.map(|t| t as i64), pid as i64)?;
            Ok::<_, claude_manager::db::DbError>(e.id)
        })
        .await
        .unwrap();
    let last = s.server.as_ref().unwrap().last_resort();
    last.trees.insert(
        exec,
        claude_manager::pty::ProcessTree {
            leader: pid,
            start_time: start,
            cgroup: None,
        },
    );
    last.run().await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
    let row = s.get(&format!("/api/executions/{exec}")).await;
    assert_eq!(row.body["status"], "interrupted");
    assert!(row.body["reason"].as_str().unwrap().contains("grace"));
    s.stop().await;
}

#[tokio::test]
async fn shutdown_gives_children_the_staged_stop_sighup_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let http = client();
    // Notes each signal and leaves only on SIGTERM: an immediate SIGKILL would show neither.
    let script = "trap 'echo got-hup' HUP; trap 'echo got-term; exit 0' TERM; \
                  echo ready; while :; do sleep 0.1; done";
    let (status, t) = post(
        &http,
        &p,
        "/api/terminals",
        json!({"command": ["sh", "-c", script]}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let exec = t["execution_id"].as_i64().unwrap();
    // The traps are set once "ready" is out.
    wait_for_output(&http, &p, t["id"].as_str().unwrap()).await;
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
    assert_eq!(status_of(dir.path(), exec), "interrupted");
    let tail: Vec<u8> = db(dir.path())
        .query_row(
            "SELECT output_tail FROM executions WHERE id = ?1",
            [exec],
            |r| r.get(0),
        )
        .unwrap();
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.contains("got-hup") && tail.contains("got-term"),
        "staged stop not seen: {tail:?}"
    );
    groups_gone(&[t["pid"].as_i64().unwrap() as i32]).await;
}

#[tokio::test]
async fn when_the_grace_runs_out_the_rest_is_killed_recorded_and_the_exit_is_still_0() {
    let dir = tempfile::tempdir().unwrap();
    // A 1 s grace cannot fit the 4 s stop sequence of a child that ignores HUP and TERM.
    let mut p =
        ServerProcess::start(dir.path(), "127.0.0.1:0", &["--shutdown-grace-secs", "1"]).await;
    let http = client();
    let (status, t) = post(
        &http,
        &p,
        "/api/terminals",
        json!({"command": ["sh", "-c", "trap '' HUP TERM; echo ready; while :; do sleep 0.1; done"]}),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    wait_for_output(&http, &p, t["id"].as_str().unwrap()).await; // the traps are set
    let exec = t["execution_id"].as_i64().unwrap();
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0), "still a clean exit");
    assert_eq!(status_of(dir.path(), exec), "interrupted");
    groups_gone(&[t["pid"].as_i64().unwrap() as i32]).await;
    integrity_ok(dir.path());
}

/// Queues a run of a new task with `agent`; returns its execution id.
async fn queue_run(http: &reqwest::Client, p: &ServerProcess, agent: i64, title: &str) -> i64 {
    let (status, task) = post(
        http,
        p,
        "/api/tasks",
        json!({"title": title, "agent_id": agent}),
    )
    .await;
    assert_eq!(status, 201, "{task}");
    let (status, run) = post(
        http,
        p,
        &format!("/api/tasks/{}/run", task["id"]),
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{run}");
    run["id"].as_i64().unwrap()
}

/// Waits (bounded) until execution `id` has `status`, as the server reports it.
async fn wait_status(http: &reqwest::Client, p: &ServerProcess, id: i64, status: &str) -> Value {
    common::eventually(&format!("execution {id} {status}"), || async {
        let r = http
            .get(format!("{}/api/executions/{id}", p.base))
            .bearer_auth(&p.token)
            .send()
            .await
            .ok()?;
        let e: Value = r.json().await.ok()?;
        (e["status"] == status).then_some(e)
    })
    .await
}

#[tokio::test]
async fn a_queued_run_survives_a_restart_or_a_crash_and_runs_after_it() {
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
    let dir = tempfile::tempdir().unwrap();
    let one_at_a_time = ["--max-concurrent-runs", "1"];
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &one_at_a_time).await;
    let http = client();
    let (status, blocker) = post(
        &http,
        &p,
        "/api/agents",
        json!({"name": "blocker", "command": [fake],
               "env": {"FAKE_CLAUDE_MODE": "slow", "FAKE_CLAUDE_DELAY_SECS": "600"}}),
    )
    .await;
    assert_eq!(status, 201, "{blocker}");
    let (status, quick) = post(
        &http,
        &p,
        "/api/agents",
        json!({"name": "quick", "command": [fake]}),
    )
    .await;
    assert_eq!(status, 201, "{quick}");
    let (blocker, quick) = (
        blocker["id"].as_i64().unwrap(),
        quick["id"].as_i64().unwrap(),
    );

    // SIGTERM: the running run is interrupted, the queued one stays queued...
    let running = queue_run(&http, &p, blocker, "holds the only slot").await;
    wait_status(&http, &p, running, "running").await;
    let queued = queue_run(&http, &p, quick, "waits its turn").await;
    assert_eq!(status_of(dir.path(), queued), "pending");
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
    assert_eq!(status_of(dir.path(), running), "interrupted");
    assert_eq!(
        status_of(dir.path(), queued),
        "pending",
        "kept for the next start"
    );
    // ...and runs to the end after the restart.
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &one_at_a_time).await;
    let done = wait_status(&http, &p, queued, "succeeded").await;
    assert!(done["result"].is_string(), "{done}");

    // kill -9: the same, through startup reconciliation.
    let running = queue_run(&http, &p, blocker, "holds the slot again").await;
    wait_status(&http, &p, running, "running").await;
    let queued = queue_run(&http, &p, quick, "waits again").await;
    p.signal(Signal::SIGKILL);
    p.wait().await;
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &one_at_a_time).await;
    wait_status(&http, &p, queued, "succeeded").await;
    assert_eq!(status_of(dir.path(), running), "interrupted");
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
    integrity_ok(dir.path());
}
