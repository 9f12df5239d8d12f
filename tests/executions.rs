//! Executions: listed with filters and paging (never with output), read whole, output tail.

mod common;
use claude_manager::db::executions::{self, ExecutionStatus, ExecutionType, Finish, NewExecution};
use common::TestServer;
use serde_json::json;

async fn insert(
    s: &TestServer,
    kind: ExecutionType,
    status: ExecutionStatus,
    task_id: Option<i64>,
) -> i64 {
    insert_with(s, kind, status, task_id, None, &["sh", "-c", "true"]).await
}

async fn insert_with(
    s: &TestServer,
    kind: ExecutionType,
    status: ExecutionStatus,
    task_id: Option<i64>,
    agent_id: Option<i64>,
    command: &[&str],
) -> i64 {
    let command: Vec<String> = command.iter().map(|a| a.to_string()).collect();
    let boot = s.state().boot_id.to_string();
    s.state()
        .db
        .write(move |c| {
            executions::insert(
                c,
                &NewExecution {
                    kind,
                    status,
                    task_id,
                    agent_id,
                    boot_id: boot,
                    session_id: None,
                    cwd: Some("/tmp".into()),
                    command,
                    meta: json!({}),
                },
            )
        })
        .await
        .unwrap()
        .id
}

/// The ids `/api/executions?{q}` lists, in order.
async fn ids(s: &TestServer, q: &str) -> Vec<i64> {
    let r = s.get(&format!("/api/executions?{q}")).await;
    assert_eq!(r.status, 200, "{q}: {}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn list_filters_by_task_type_status_and_since() {
    let s = TestServer::start().await;
    let task = s.post("/api/tasks", json!({"title": "t"})).await.body["id"]
        .as_i64()
        .unwrap();
    let a = insert(&s, ExecutionType::Terminal, ExecutionStatus::Running, None).await;
    let b = insert(
        &s,
        ExecutionType::AgentRun,
        ExecutionStatus::Pending,
        Some(task),
    )
    .await;
    let c = insert(
        &s,
        ExecutionType::AgentRun,
        ExecutionStatus::Running,
        Some(task),
    )
    .await;
    let d = insert(
        &s,
        ExecutionType::AgentSession,
        ExecutionStatus::Running,
        None,
    )
    .await;

    assert_eq!(ids(&s, "").await, vec![d, c, b, a], "newest first");
    assert_eq!(ids(&s, "type=agent_run").await, vec![c, b]);
    assert_eq!(ids(&s, "status=running").await, vec![d, c, a]);
    assert_eq!(ids(&s, "type=agent_run&status=pending").await, vec![b]);
    let q = format!("task_id={task}");
    let r = s.get(&format!("/api/executions?{q}")).await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(ids(&s, "since=2000-01-01T00:00:00Z").await.len(), 4);
    assert_eq!(ids(&s, "since=2999-01-01T00:00:00%2B02:00").await.len(), 0);
    assert_eq!(ids(&s, "limit=2&offset=1").await, vec![c, b]);
    let r = s.get("/api/executions?limit=1").await;
    assert_eq!(r.body["total"], 4);
    assert_eq!(r.body["limit"], 1);
    s.stop().await;
}

#[tokio::test]
async fn list_filters_by_agent_text_and_until_and_names_the_task() {
    let s = TestServer::start().await;
    let task = s
        .post(
            "/api/tasks",
            json!({"title": "Refactor the parser", "description": "split lexer_100% out"}),
        )
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let run = insert_with(
        &s,
        ExecutionType::AgentRun,
        ExecutionStatus::Running,
        Some(task),
        Some(7),
        &["claude", "-p"],
    )
    .await;
    let shell = insert_with(
        &s,
        ExecutionType::Terminal,
        ExecutionStatus::Running,
        None,
        None,
        &["htop"],
    )
    .await;
    assert_eq!(ids(&s, "agent_id=7").await, vec![run]);
    assert_eq!(ids(&s, "agent_id=8").await, Vec::<i64>::new());
    // Text is found in the task's title and description (the run's prompt) and in the command,
    // case-insensitively; LIKE's wildcards are plain characters.
    assert_eq!(ids(&s, "q=PARSER").await, vec![run]);
    assert_eq!(ids(&s, "q=lexer_100%25").await, vec![run]);
    assert_eq!(ids(&s, "q=lexer_1000").await, Vec::<i64>::new());
    assert_eq!(ids(&s, "q=htop").await, vec![shell]);
    assert_eq!(
        ids(&s, "q=%20%20").await,
        vec![shell, run],
        "blank: no filter"
    );
    assert_eq!(ids(&s, "until=2000-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(ids(&s, "until=2999-01-01T00:00:00Z").await.len(), 2);
    let r = s.get("/api/executions").await;
    assert_eq!(r.body["items"][1]["task_title"], "Refactor the parser");
    assert_eq!(r.body["items"][0]["task_title"], serde_json::Value::Null);
    let r = s.get(&format!("/api/executions/{run}")).await;
    assert_eq!(r.body["task_title"], "Refactor the parser");

    let r = s.get("/api/executions?until=yesterday").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "until");
    let r = s
        .get(&format!("/api/executions?q={}", "x".repeat(201)))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["field"], "q");
    let r = s.get("/api/executions?agent_id=0").await;
    assert_eq!(r.status, 400);
    s.stop().await;
}

#[tokio::test]
async fn rows_in_lists_never_carry_output_but_the_detail_does() {
    let s = TestServer::start().await;
    let id = insert(&s, ExecutionType::Terminal, ExecutionStatus::Running, None).await;
    let mut tail = b"line one\n".to_vec();
    tail.extend_from_slice("ünïcode ✓\n".as_bytes());
    tail.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let stored = tail.clone();
    s.state()
        .db
        .write(move |c| {
            executions::finish(
                c,
                id,
                &Finish {
                    status: ExecutionStatus::Failed,
                    reason: Some("exit 3".into()),
                    exit_code: Some(3),
                    exit_signal: None,
                    bytes_out: 100_000,
                    output_tail: Some(stored),
                    output_truncated: true,
                },
            )
        })
        .await
        .unwrap();

    let list = s.get("/api/executions").await;
    let row = &list.body["items"][0];
    assert_eq!(row["id"], id);
    assert!(
        row.get("output_tail").is_none(),
        "list rows carry no output: {row}"
    );
    assert_eq!(row["status"], "failed");
    assert_eq!(row["exit_code"], 3);
    assert_eq!(row["type"], "terminal");

    let full = s.get(&format!("/api/executions/{id}")).await;
    assert_eq!(full.status, 200);
    assert!(full.body["output_tail"]
        .as_str()
        .unwrap()
        .contains("ünïcode ✓"));
    assert_eq!(full.body["output_truncated"], true);
    assert!(full.body["finished_at"].is_string());
    assert_eq!(full.body["command"], json!(["sh", "-c", "true"]));

    let out = s.get(&format!("/api/executions/{id}/output")).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.body["bytes"], tail.len());
    assert_eq!(out.body["bytes_out"], 100_000);
    assert_eq!(out.body["truncated"], true);
    assert!(out.body["output"]
        .as_str()
        .unwrap()
        .starts_with("line one\n"));

    assert_eq!(s.get("/api/executions/424242").await.status, 404);
    assert_eq!(s.get("/api/executions/424242/output").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn a_finished_execution_keeps_its_first_outcome() {
    let s = TestServer::start().await;
    let id = insert(&s, ExecutionType::Terminal, ExecutionStatus::Running, None).await;
    let finish = |status| Finish {
        status,
        reason: None,
        exit_code: None,
        exit_signal: None,
        bytes_out: 0,
        output_tail: None,
        output_truncated: false,
    };
    let first = finish(ExecutionStatus::Cancelled);
    let second = finish(ExecutionStatus::Failed);
    let db = &s.state().db;
    assert!(db
        .write(move |c| executions::finish(c, id, &first))
        .await
        .unwrap());
    assert!(!db
        .write(move |c| executions::finish(c, id, &second))
        .await
        .unwrap());
    assert_eq!(
        s.get(&format!("/api/executions/{id}")).await.body["status"],
        "cancelled"
    );
    s.stop().await;
}
