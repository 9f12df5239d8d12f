//! Startup reconciliation: executions left running by an earlier boot become `interrupted`;
//! their surviving process groups are stopped, but a recorded pid that now names another
//! process (different start time) is never signalled.

mod common;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use claude_manager::config::Config;
use claude_manager::db::executions::{self, ExecutionStatus, ExecutionType, NewExecution};
use common::{TestServer, WAIT};
use serde_json::json;

/// A process group of its own that ignores SIGHUP (like a shell with `trap '' HUP`), so the stop
/// has to escalate.
fn stubborn_group() -> Child {
    Command::new("sh")
        .args(["-c", "trap '' HUP; while :; do sleep 1; done"])
        .process_group(0)
        .spawn()
        .unwrap()
}

fn record(
    conn: &rusqlite::Connection,
    status: ExecutionStatus,
    boot: &str,
    proc_: Option<(i64, i64)>,
) -> i64 {
    let e = executions::insert(
        conn,
        &NewExecution {
            kind: ExecutionType::Terminal,
            status,
            task_id: None,
            agent_id: None,
            boot_id: boot.into(),
            session_id: None,
            cwd: None,
            command: vec!["sh".into()],
            meta: json!({}),
        },
    )
    .unwrap();
    if let Some((pid, start)) = proc_ {
        executions::mark_running(conn, e.id, pid, Some(start), pid).unwrap();
    }
    e.id
}

fn wait_exit(child: &mut Child) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_rows_are_interrupted_and_only_the_right_groups_are_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_data_dir(dir.path());
    let mut survivor = stubborn_group();
    let mut innocent = stubborn_group();
    let survivor_pid = survivor.id() as i64;
    let innocent_pid = innocent.id() as i64;
    let start = |pid: i64| claude_manager::pty::process_start_time(pid as i32).unwrap() as i64;
    let (ids, done_id) = {
        let pool = claude_manager::app::open_database(&config).unwrap();
        let conn = pool.get().unwrap();
        let a = record(
            &conn,
            ExecutionStatus::Running,
            "old-boot",
            Some((survivor_pid, start(survivor_pid))),
        );
        // The same pid number recorded with another start time: a reused pid.
        let b = record(
            &conn,
            ExecutionStatus::Running,
            "old-boot",
            Some((innocent_pid, start(innocent_pid) + 1)),
        );
        let c = record(&conn, ExecutionStatus::Pending, "old-boot", None);
        let d = record(&conn, ExecutionStatus::Running, "old-boot", None);
        let done = record(&conn, ExecutionStatus::Running, "old-boot", None);
        executions::finish(
            &conn,
            done,
            &executions::Finish {
                status: ExecutionStatus::Succeeded,
                reason: None,
                exit_code: Some(0),
                exit_signal: None,
                bytes_out: 0,
                output_tail: None,
                output_truncated: false,
            },
        )
        .unwrap();
        ((a, b, c, d), done)
    };

    // A task left running by a run of the old boot.
    let task_id = {
        let pool = claude_manager::app::open_database(&Config::for_data_dir(dir.path())).unwrap();
        let conn = pool.get().unwrap();
        conn.execute(
            "INSERT INTO tasks (title, status, created_at, updated_at) VALUES ('t', 'running', 'x', 'x')",
            [],
        )
        .unwrap();
        let task_id = conn.last_insert_rowid();
        let e = executions::insert(
            &conn,
            &NewExecution {
                kind: ExecutionType::AgentRun,
                status: ExecutionStatus::Running,
                task_id: Some(task_id),
                agent_id: None,
                boot_id: "old-boot".into(),
                session_id: None,
                cwd: None,
                command: vec!["claude".into()],
                meta: json!({}),
            },
        )
        .unwrap();
        assert!(e.id > 0);
        task_id
    };
    let s = TestServer::start_config(config, tempfile::tempdir().unwrap()).await;
    let task = s.get(&format!("/api/tasks/{task_id}")).await.body;
    assert_eq!(
        task["status"], "failed",
        "a task whose run was interrupted is not left running: {task}"
    );
    assert_eq!(task["executions_active"], 0);
    let (a, b, c, d) = ids;
    for id in [a, b, c, d] {
        let e = s.get(&format!("/api/executions/{id}")).await.body;
        assert_eq!(e["status"], "interrupted", "execution {id}: {e}");
        assert!(e["reason"].as_str().unwrap().contains("server restarted"));
        assert!(e["finished_at"].is_string());
    }
    assert_eq!(
        s.get(&format!("/api/executions/{done_id}")).await.body["status"],
        "succeeded"
    );

    // The surviving group of the old boot is stopped (it ignores SIGHUP: TERM follows).
    assert!(
        tokio::task::spawn_blocking(move || wait_exit(&mut survivor))
            .await
            .unwrap(),
        "old group still alive"
    );
    // The process behind the reused pid is untouched.
    assert!(
        innocent.try_wait().unwrap().is_none(),
        "an innocent process was signalled"
    );

    let h = s.get("/api/system/health/detailed").await.body;
    assert_eq!(h["reconciliation"]["interrupted"], 5, "{h}");
    assert_eq!(h["reconciliation"]["groups_stopped"], 1);
    assert_eq!(h["reconciliation"]["pid_reused"], 1);
    s.stop().await;
    innocent.kill().unwrap();
    innocent.wait().unwrap();
}

#[tokio::test]
async fn rows_of_the_current_boot_are_left_alone() {
    let s = TestServer::start().await;
    let boot = s.state().boot_id.to_string();
    let id = s
        .state()
        .db
        .write(move |c| {
            Ok::<_, claude_manager::db::DbError>(record(c, ExecutionStatus::Running, &boot, None))
        })
        .await
        .unwrap();
    assert_eq!(
        s.get(&format!("/api/executions/{id}")).await.body["status"],
        "running"
    );
    s.stop().await;
}
