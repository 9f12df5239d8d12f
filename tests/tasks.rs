//! Tasks: CRUD, the status state machine, filters, paging, and delete rules.

mod common;
use common::TestServer;
use serde_json::{json, Value};

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s.post("/api/tasks", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

#[tokio::test]
async fn create_read_update_delete() {
    let s = TestServer::start().await;
    let t = create(
        &s,
        json!({"title": "  Fix the build  ", "description": "ünïcode ✓ 日本", "priority": 8,
               "tags": ["ci", "ci", "rust"], "project_path": "/srv/app", "meta": {"k": [1, 2]}}),
    )
    .await;
    assert_eq!(t["title"], "Fix the build", "title is trimmed");
    assert_eq!(t["description"], "ünïcode ✓ 日本");
    assert_eq!(t["priority"], 8);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["tags"], json!(["ci", "rust"]), "duplicate tags folded");
    assert_eq!(t["meta"], json!({"k": [1, 2]}));
    assert_eq!(t["executions_total"], 0);
    let id = t["id"].as_i64().unwrap();

    let r = s.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, t);

    let r = s
        .patch(
            &format!("/api/tasks/{id}"),
            json!({"title": "Fixed", "project_path": null, "tags": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["title"], "Fixed");
    assert_eq!(r.body["project_path"], Value::Null);
    assert_eq!(
        r.body["description"], "ünïcode ✓ 日本",
        "untouched fields stay"
    );
    assert!(r.body["updated_at"].as_str() >= t["updated_at"].as_str());

    let r = s.delete(&format!("/api/tasks/{id}")).await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get(&format!("/api/tasks/{id}")).await.status, 404);
    assert_eq!(s.delete(&format!("/api/tasks/{id}")).await.status, 404);
    assert_eq!(
        s.patch(&format!("/api/tasks/{id}"), json!({"title": "x"}))
            .await
            .status,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn defaults_apply() {
    let s = TestServer::start().await;
    let t = create(&s, json!({"title": "t"})).await;
    assert_eq!(t["priority"], 5);
    assert_eq!(t["description"], "");
    assert_eq!(t["tags"], json!([]));
    assert_eq!(t["meta"], json!({}));
    assert_eq!(t["agent_id"], Value::Null);
    let d = create(&s, json!({"title": "t", "status": "draft"})).await;
    assert_eq!(d["status"], "draft");
    s.stop().await;
}

#[tokio::test]
async fn status_follows_the_state_machine() {
    let s = TestServer::start().await;
    let id = create(&s, json!({"title": "t", "status": "draft"})).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/tasks/{id}");
    let go = |to: &'static str| {
        let s = &s;
        let path = path.clone();
        async move { s.patch(&path, json!({"status": to})).await }
    };

    let r = go("running").await;
    assert_eq!(r.status, 409, "draft → running is illegal: {}", r.text);
    assert_eq!(r.code(), "illegal_transition");
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("pending") && msg.contains("cancelled"),
        "names the allowed: {msg}"
    );

    assert_eq!(go("pending").await.status, 200);
    let r = go("running").await;
    assert_eq!(r.status, 200);
    assert!(r.body["started_at"].is_string());
    assert_eq!(r.body["completed_at"], Value::Null);
    let r = go("failed").await;
    assert_eq!(r.status, 200);
    assert!(r.body["completed_at"].is_string());
    assert_eq!(
        go("succeeded").await.status,
        409,
        "failed only goes back to pending"
    );
    let r = go("pending").await;
    assert_eq!(r.status, 200, "retry");
    assert_eq!(r.body["completed_at"], Value::Null);
    assert_eq!(go("running").await.status, 200);
    assert_eq!(go("succeeded").await.status, 200);
    let r = go("pending").await;
    assert_eq!(r.status, 409, "succeeded is final");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("none"));
    // Same status again is not a transition.
    assert_eq!(go("succeeded").await.status, 200);
    s.stop().await;
}

/// `(total, items on this page)` of `GET /api/tasks?q`.
async fn count(s: &TestServer, q: &str) -> (i64, usize) {
    let r = s.get(&format!("/api/tasks?{q}")).await;
    assert_eq!(r.status, 200, "{q}: {}", r.text);
    (
        r.body["total"].as_i64().unwrap(),
        r.body["items"].as_array().unwrap().len(),
    )
}

#[tokio::test]
async fn list_filters_and_orders_newest_first() {
    let s = TestServer::start().await;
    // A task's agent must exist (422 otherwise): the filter test uses a real one.
    let agent = s
        .post(
            "/api/agents",
            json!({"name": "filter-agent", "command": [common::runs::fake_claude()]}),
        )
        .await;
    assert_eq!(agent.status, 201, "{}", agent.text);
    let agent_id = agent.body["id"].as_i64().unwrap();
    let mut ids = vec![];
    for i in 0..12 {
        let tags = if i % 3 == 0 {
            json!(["even3"])
        } else {
            json!(["other"])
        };
        let status = if i % 2 == 0 { "draft" } else { "pending" };
        let agent = if i < 4 { json!(agent_id) } else { Value::Null };
        let t = create(
            &s,
            json!({"title": format!("task {i} needle_{}", i % 4), "status": status, "tags": tags,
                   "agent_id": agent, "description": if i == 5 { "100% special_" } else { "" }}),
        )
        .await;
        ids.push(t["id"].as_i64().unwrap());
    }
    let r = s.get("/api/tasks").await;
    assert_eq!(r.body["total"], 12);
    assert_eq!(r.body["limit"], 50);
    assert_eq!(r.body["offset"], 0);
    let got: Vec<i64> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let mut want = ids.clone();
    want.reverse();
    assert_eq!(got, want, "newest first, id breaks ties");
    // List rows are serialised on a separate fast path: they must equal the single-task view.
    for item in r.body["items"].as_array().unwrap() {
        let one = s.get(&format!("/api/tasks/{}", item["id"])).await.body;
        assert_eq!(item, &one);
    }

    assert_eq!(count(&s, "status=draft").await, (6, 6));
    assert_eq!(count(&s, "tag=even3").await, (4, 4));
    assert_eq!(count(&s, "tag=even3&status=draft").await, (2, 2));
    assert_eq!(count(&s, &format!("agent_id={agent_id}")).await, (4, 4));
    assert_eq!(count(&s, "q=needle_1").await, (3, 3));
    assert_eq!(
        count(&s, "q=NEEDLE_1").await,
        (3, 3),
        "substring match ignores ASCII case"
    );
    assert_eq!(count(&s, "q=100%25").await, (1, 1), "% is literal");
    assert_eq!(count(&s, "q=special_").await, (1, 1), "_ is literal");
    assert_eq!(count(&s, "q=nothing-matches").await, (0, 0));
    assert_eq!(count(&s, "tag=missing").await, (0, 0));
    s.stop().await;
}

#[tokio::test]
async fn paging_edges() {
    let s = TestServer::start().await;
    for i in 0..7 {
        create(&s, json!({"title": format!("t{i}")})).await;
    }
    let page = |q: &'static str| {
        let s = &s;
        async move { s.get(&format!("/api/tasks?{q}")).await }
    };
    let r = page("limit=3&offset=0").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    let first: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    let r = page("limit=3&offset=3").await;
    let second: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    let r = page("limit=3&offset=6").await;
    let third: Vec<Value> = r.body["items"].as_array().unwrap().clone();
    assert_eq!(third.len(), 1);
    let all: Vec<i64> = first
        .iter()
        .chain(&second)
        .chain(&third)
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let mut dedup = all.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 7, "pages neither overlap nor skip");

    let r = page("offset=100").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"], 7);
    assert_eq!(r.body["offset"], 100);
    let r = page("limit=0").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["total"], 7);
    let r = page("limit=500").await;
    assert_eq!(r.status, 200);
    assert_eq!(page("limit=501").await.status, 400);
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_task_with_a_running_execution_is_409() {
    use claude_manager::db::executions::{self, ExecutionStatus, ExecutionType, NewExecution};
    let s = TestServer::start().await;
    let id = create(&s, json!({"title": "busy"})).await["id"]
        .as_i64()
        .unwrap();
    let boot = s.state().boot_id.to_string();
    let exec_id = s
        .state()
        .db
        .write(move |c| {
            executions::insert(
                c,
                &NewExecution {
                    kind: ExecutionType::AgentRun,
                    status: ExecutionStatus::Running,
                    task_id: Some(id),
                    agent_id: None,
                    boot_id: boot,
                    session_id: None,
                    cwd: None,
                    command: vec!["fake".into()],
                    meta: json!({}),
                },
            )
        })
        .await
        .unwrap()
        .id;
    let t = s.get(&format!("/api/tasks/{id}")).await.body;
    assert_eq!(t["executions_total"], 1);
    assert_eq!(t["executions_active"], 1);
    let r = s.delete(&format!("/api/tasks/{id}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "task_busy");

    s.state()
        .db
        .write(move |c| {
            executions::finish(
                c,
                exec_id,
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
        })
        .await
        .unwrap();
    assert_eq!(s.delete(&format!("/api/tasks/{id}")).await.status, 204);
    // The execution record outlives its task.
    let r = s.get(&format!("/api/executions/{exec_id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["task_id"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn concurrent_creates_all_land() {
    let s = TestServer::start().await;
    let mut handles = vec![];
    for i in 0..40 {
        let rb = s
            .req(reqwest::Method::POST, "/api/tasks")
            .json(&json!({"title": format!("c{i}")}));
        handles.push(tokio::spawn(async move {
            rb.send().await.unwrap().status().as_u16()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 201);
    }
    assert_eq!(s.get("/api/tasks?limit=0").await.body["total"], 40);
    s.stop().await;
}
