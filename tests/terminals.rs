//! `/api/terminals` against a real server: lifecycle, execution records, stopping, limits,
//! validation, fd hygiene, and restart safety with the real binary.

mod common;
use common::term::*;
use common::{ServerProcess, TestServer, WAIT};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

#[tokio::test]
async fn create_defaults_list_get_and_counters() {
    let s = TestServer::start().await;
    let t = create(&s, json!({})).await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(t["status"], "running");
    assert_eq!(t["argv"][0], claude_manager::pty::login_shell());
    let home = std::fs::canonicalize(claude_manager::pty::home_dir()).unwrap();
    assert_eq!(t["cwd"], home.display().to_string());
    assert_eq!(
        (t["cols"].as_u64(), t["rows"].as_u64()),
        (Some(80), Some(24))
    );
    assert!(t["pid"].as_i64().unwrap() > 1);
    assert!(t["execution_id"].as_i64().unwrap() > 0);
    assert!(t["created_at"].is_string());

    let (_ws, _) = attach(&s, id, "").await;
    let health = s.get("/api/system/health/detailed").await;
    assert_eq!(health.body["sessions"]["terminals"], 1);
    assert_eq!(health.body["websockets"]["terminals"], 1);

    let list = s.get("/api/terminals").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 1);
    let row = &list.body["items"][0];
    assert_eq!(row["id"], id);
    assert_eq!(row["viewers"], 1);
    assert!(row["bytes_out"].is_u64() && row["last_activity_at"].is_string());
    let one = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["id"], id);

    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    assert_eq!(exec.body["type"], "terminal");
    assert_eq!(exec.body["status"], "running");
    assert_eq!(exec.body["pid"], t["pid"]);
    assert_eq!(exec.body["pgid"], t["pid"]);
    assert!(exec.body["pid_start_time"].is_i64());
    s.stop().await;
}

async fn run_to_exit(s: &TestServer, body: Value) -> (Value, Value) {
    let mut ev = events(s).await;
    let t = create(s, body).await;
    let exited = wait_exited(&mut ev, t["id"].as_str().unwrap()).await;
    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    (exited, exec.body)
}

#[tokio::test]
async fn exit_code_and_signal_are_recorded() {
    let s = TestServer::start().await;
    let (exited, exec) = run_to_exit(&s, sh("echo done")).await;
    assert_eq!(exited["status"], "succeeded");
    assert_eq!(
        (exec["status"].as_str(), exec["exit_code"].as_i64()),
        (Some("succeeded"), Some(0))
    );
    assert!(exec["finished_at"].is_string());
    assert!(exec["output_tail"].as_str().unwrap().contains("done"));

    let (exited, exec) = run_to_exit(&s, sh("exit 3")).await;
    assert_eq!(
        (exited["status"].as_str(), exited["code"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(exec["exit_code"], 3);
    assert!(exec["exit_signal"].is_null());

    let (exited, exec) = run_to_exit(&s, sh("kill -TERM $$")).await;
    assert_eq!(exited["signal"], 15);
    assert_eq!(
        (exec["status"].as_str(), exec["exit_signal"].as_i64()),
        (Some("failed"), Some(15))
    );
    assert!(exec["exit_code"].is_null());

    // Exited sessions stay listed; DELETE forgets them.
    let list = s.get("/api/terminals").await;
    assert_eq!(list.body["total"], 3);
    let id = list.body["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(list.body["items"][0]["status"], "succeeded");
    assert_eq!(s.delete(&format!("/api/terminals/{id}")).await.status, 200);
    assert_eq!(s.get(&format!("/api/terminals/{id}")).await.status, 404);
    let health = s.get("/api/system/health/detailed").await;
    assert_eq!(health.body["sessions"]["terminals"], 0);
    s.stop().await;
}

#[tokio::test]
async fn delete_kills_a_child_that_ignores_hup_and_term() {
    let s = TestServer::start().await;
    let mut ev = events(&s).await;
    let t = create(&s, sh("trap '' HUP TERM; printf READY; exec sleep 600")).await;
    let id = t["id"].as_str().unwrap();
    let (mut ws, _) = attach(&s, id, "").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "READY").await;
    let r = s.delete(&format!("/api/terminals/{id}")).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["status"], "stopping");
    let exited = wait_exited(&mut ev, id).await;
    assert_eq!(
        (exited["status"].as_str(), exited["signal"].as_i64()),
        (Some("cancelled"), Some(9))
    );
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    let pid = t["pid"].as_i64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "child not reaped"
    );
    s.stop().await;
}

#[tokio::test]
async fn children_hold_only_stdin_stdout_stderr() {
    let s = TestServer::start().await;
    let creates = (0..5).map(|_| s.post("/api/terminals", json!({"command": ["sleep", "600"]})));
    let replies = futures_util::future::join_all(creates).await;
    for r in &replies {
        assert_eq!(r.status, 201, "{}", r.text);
        let pid = r.body["pid"].as_i64().unwrap();
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        fds.sort();
        assert_eq!(fds, ["0", "1", "2"], "pid {pid}");
    }
    s.stop().await;
    for r in &replies {
        let pid = r.body["pid"].as_i64().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} survived shutdown"
        );
    }
}

#[tokio::test]
async fn limits_on_sessions_and_viewers() {
    let s = TestServer::start_with(|c| {
        c.max_sessions = 1;
        c.max_viewers = 1;
    })
    .await;
    let t = create(&s, json!({"command": ["sleep", "600"]})).await;
    let r = s
        .post("/api/terminals", json!({"command": ["sleep", "600"]}))
        .await;
    assert_eq!((r.status, r.code()), (429, "too_many_sessions"));
    let id = t["id"].as_str().unwrap();
    let (_first, _) = attach(&s, id, "").await;
    let mut second = s.ws(&format!("/api/terminals/{id}/ws")).await;
    assert_eq!(close_code(&mut second).await, 4429);
    s.stop().await;
}

#[tokio::test]
async fn unknown_sessions_are_404_and_4404() {
    let s = TestServer::start().await;
    let unknown = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/api/terminals/{unknown}"),
        "/api/terminals/not-an-id".to_string(),
    ] {
        let r = s.get(&path).await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
        assert_eq!(s.delete(&path).await.status, 404);
    }
    for id in [unknown, "nope"] {
        let mut ws = s.ws(&format!("/api/terminals/{id}/ws")).await;
        assert_eq!(close_code(&mut ws).await, 4404);
    }
    let r = s.get(&format!("/api/terminals/{unknown}/ws?mode=rx")).await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test]
async fn every_validation_error_names_its_field() {
    let root = tempfile::tempdir().unwrap();
    let root_path = std::fs::canonicalize(root.path()).unwrap();
    let file = root_path.join("file");
    std::fs::write(&file, b"x").unwrap();
    let roots = vec![root_path.clone()];
    let s = TestServer::start_with(move |c| c.allowed_roots = roots).await;
    let inside = root_path.display().to_string();
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"cwd": "/definitely/not/here"}),
            422,
            "validation_failed",
            "cwd",
        ),
        (
            json!({"cwd": file.display().to_string()}),
            422,
            "validation_failed",
            "cwd",
        ),
        (json!({"cwd": "/"}), 422, "validation_failed", "cwd"),
        (
            json!({"cwd": format!("{inside}/../..")}),
            422,
            "validation_failed",
            "cwd",
        ),
        (
            json!({"cwd": inside, "command": ["no-such-command-xyz"]}),
            400,
            "command_not_found",
            "command",
        ),
        (
            json!({"cwd": inside, "command": []}),
            422,
            "validation_failed",
            "command",
        ),
        (
            json!({"cwd": inside, "command": [""]}),
            422,
            "validation_failed",
            "command",
        ),
        (
            json!({"cwd": inside, "command": ["sh", "a\u{0}b"]}),
            422,
            "validation_failed",
            "command[1]",
        ),
        (
            json!({"cwd": inside, "cols": 0}),
            422,
            "validation_failed",
            "cols",
        ),
        (
            json!({"cwd": inside, "rows": 1001}),
            422,
            "validation_failed",
            "rows",
        ),
        (
            json!({"cwd": inside, "env": {"1BAD": "x"}}),
            422,
            "validation_failed",
            "env",
        ),
        (
            json!({"cwd": inside, "env": {"A-B": "x"}}),
            422,
            "validation_failed",
            "env",
        ),
        (
            json!({"cwd": inside, "env": {"OK": "a\u{0}b"}}),
            422,
            "validation_failed",
            "env.OK",
        ),
        (
            json!({"cwd": inside, "task_id": 999}),
            422,
            "validation_failed",
            "task_id",
        ),
        (
            json!({"cwd": inside, "cols": "wide"}),
            400,
            "bad_request",
            "cols",
        ),
        (json!({"cwd": inside, "colour": 1}), 400, "bad_request", ""),
    ];
    for (body, status, code, field) in cases {
        let r = s.post("/api/terminals", body.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.text);
        if !field.is_empty() {
            assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
        }
    }
    // The same request, valid, inside the root, with env reaching the child.
    let mut ev = events(&s).await;
    let t = create(
        &s,
        json!({"cwd": inside, "command": ["sh", "-c", "printf \"$GREETING:\"; pwd"],
               "env": {"GREETING": "hi"}, "name": "probe"}),
    )
    .await;
    assert_eq!(t["name"], "probe");
    wait_exited(&mut ev, t["id"].as_str().unwrap()).await;
    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    assert!(exec.body["output_tail"]
        .as_str()
        .unwrap()
        .contains(&format!("hi:{inside}")));
    s.stop().await;
}

#[tokio::test]
async fn a_new_server_binds_the_port_while_an_old_child_lives() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let t: Value = http
        .post(format!("{}/api/terminals", old.base))
        .bearer_auth(&old.token)
        .json(&sh("trap '' HUP; exec sleep 600"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = t["pid"].as_i64().expect("pid") as i32;
    let port = old.addr.port();
    old.signal(Signal::SIGKILL);
    old.wait().await;
    let mut new = ServerProcess::start(dir.path(), &format!("127.0.0.1:{port}"), &[]).await;
    assert_eq!(new.addr.port(), port);
    // The orphan outlived the old server; the new one's startup reconciliation stops it
    // (it ignores SIGHUP, so SIGTERM follows 2 s later).
    let gone = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                // Reparented to an init that may not reap: a zombie is dead too.
                Ok(stat)
                    if stat
                        .rsplit_once(')')
                        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) =>
                {
                    return true
                }
                Ok(_) => std::thread::yield_now(),
            }
        }
        false
    })
    .await
    .unwrap();
    if !gone {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    assert!(
        gone,
        "the old boot's orphan was not stopped by reconciliation"
    );
    new.signal(Signal::SIGTERM);
    new.wait().await;
}

/// The process's state letter from /proc (None once it is gone).
fn proc_state(pid: i64) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim().chars().next()
}

#[tokio::test]
async fn a_dead_session_actor_is_recorded_failed_and_its_group_killed() {
    use claude_manager::actors::session_types::SessionKind;
    let s = TestServer::start().await;
    let mut ev = events(&s).await;
    let t = create(&s, json!({"command": ["sleep", "600"]})).await;
    let id = t["id"].as_str().unwrap();
    let pid = t["pid"].as_i64().unwrap();
    let actor = s
        .state()
        .sessions
        .lookup(SessionKind::Terminal, id)
        .await
        .unwrap();
    actor.kill();
    let exited = wait_exited(&mut ev, id).await;
    assert_eq!(exited["status"], "failed");
    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    assert_eq!(exec.body["status"], "failed");
    assert!(exec.body["reason"]
        .as_str()
        .unwrap()
        .contains("session actor"));
    // Killed (a zombie until tokio reaps it, or already gone), and forgotten by the registry.
    let deadline = tokio::time::Instant::now() + WAIT;
    while matches!(proc_state(pid), Some(c) if c != 'Z') {
        assert!(
            tokio::time::Instant::now() < deadline,
            "child {pid} still alive"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.get(&format!("/api/terminals/{id}")).await.status, 404);
    let health = s.get("/api/system/health/detailed").await;
    assert_eq!(health.body["sessions"]["terminals"], 0);
    // The server keeps serving sessions.
    create(&s, json!({"command": ["true"]})).await;
    s.stop().await;
}

/// Output that stops right after it starts still reaches the execution's record within the
/// 5-second interval: its `bytes_out` and `last_activity_at`, with the `execution.updated`
/// tick that brings other pages up to date. Before, it waited for output that never came.
#[tokio::test]
async fn activity_that_stops_is_recorded_within_the_interval() {
    let s = TestServer::start().await;
    let t = create(&s, sh("printf hello; exec sleep 60")).await;
    let exec = format!("/api/executions/{}", t["execution_id"]);
    let created = s.get(&exec).await.body["last_activity_at"].clone();
    common::eventually("the output's bytes in the execution's record", || async {
        let row = s.get(&exec).await.body;
        (row["bytes_out"] == 5).then_some(row)
    })
    .await;
    let row = s.get(&exec).await.body;
    assert_ne!(row["last_activity_at"], created, "{row}");
    s.stop().await;
}
