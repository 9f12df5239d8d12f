//! Agent kinds against a real server: the kinds the API lists, a definition's kind by default
//! and round trip, fields a kind cannot express refused, the command checked when saved, older
//! definitions read with their default kind, and headless runs of a Codex agent (the fake
//! `codex exec --json`) and of a plain command parsed into events and a result.

mod common;
use common::runs::{event_stream, fake_claude, run, task};
use common::term::{events, wait_event};
use common::TestServer;
use serde_json::{json, Value};

fn fake_codex() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-codex").to_string()
}

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s.post("/api/agents", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body
}

#[tokio::test]
async fn the_kinds_are_listed_with_what_each_supports() {
    let s = TestServer::start().await;
    let r = s.get("/api/agent-kinds").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|k| k["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["claude", "codex", "gemini", "aider", "opencode", "command"]
    );
    let by = |k: &str| items.iter().find(|i| i["kind"] == k).unwrap().clone();
    assert_eq!(by("claude")["default_command"], json!(["claude"]));
    assert_eq!(
        by("claude")["supports"]["headless_output"],
        "claude-stream-json"
    );
    assert_eq!(by("codex")["supports"]["headless_output"], "codex-json");
    assert_eq!(by("codex")["flags"]["headless"], json!(["exec", "--json"]));
    assert_eq!(by("codex")["supports"]["system_prompt"], false);
    assert_eq!(
        by("gemini")["supports"]["headless_output"],
        "gemini-stream-json"
    );
    assert_eq!(by("aider")["supports"]["headless_output"], "text");
    let command = by("command");
    assert_eq!(command["default_command"], json!([]));
    assert_eq!(command["supports"]["model"], false);
    assert_eq!(command["supports"]["permission_modes"], json!([]));
    assert_eq!(command["session_args"], json!({"first": [], "resume": []}));
    s.stop().await;
}

#[tokio::test]
async fn a_kind_is_defaulted_from_the_command_and_kept_on_a_round_trip() {
    let s = TestServer::start().await;
    // A Claude Code wrapper (`*-claude`) is Claude Code; anything else is a plain command.
    let claude = create(&s, json!({"name": "c", "command": [fake_claude()]})).await;
    assert_eq!(claude["kind"], "claude");
    let plain = create(&s, json!({"name": "p", "command": ["sh", "-c", "echo hi"]})).await;
    assert_eq!(plain["kind"], "command");
    assert_eq!(plain["session_args"], json!({"first": [], "resume": []}));
    // An explicit kind wins, and gets its own session flags by default.
    let codex = create(
        &s,
        json!({"name": "x", "kind": "codex", "command": [fake_codex()], "model": "gpt-5"}),
    )
    .await;
    assert_eq!(codex["kind"], "codex");
    assert_eq!(
        codex["session_args"],
        json!({"first": [], "resume": ["resume", "--last"]})
    );
    let path = format!("/api/agents/{}", codex["id"]);
    let r = s.patch(&path, json!({"description": "d"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["kind"], "codex");
    assert_eq!(r.body["model"], "gpt-5");
    assert_eq!(s.get(&path).await.body["kind"], "codex");
    let r = s.patch(&path, json!({"kind": "nonsense"})).await;
    assert_eq!(r.status, 400, "an unknown kind: {}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn a_missing_command_or_a_field_the_kind_lacks_is_a_422_naming_it() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "t", "command": ["tiny-agent"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.body["error"]["field"], "command");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"tiny-agent\"") && message.contains("PATH"),
        "{message}"
    );
    // The kind's default command is checked too: no `codex` on the tests' PATH.
    let r = s
        .post("/api/agents", json!({"name": "t", "kind": "codex"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("OpenAI Codex CLI"), "{}", r.text);
    let not_executable = tempfile::NamedTempFile::new().unwrap();
    let r = s
        .post(
            "/api/agents",
            json!({"name": "t", "command": [not_executable.path()]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("command"))
    );
    let r = s
        .post("/api/agents", json!({"name": "t", "kind": "command"}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("command"))
    );
    let cases = [
        (json!({"command": ["sh"], "model": "m"}), "model"),
        (
            json!({"kind": "codex", "system_prompt": "be brief"}),
            "system_prompt",
        ),
        (
            json!({"kind": "aider", "allowed_tools": ["Read"]}),
            "allowed_tools",
        ),
        (
            json!({"kind": "codex", "permission_mode": "dontAsk"}),
            "permission_mode",
        ),
        (
            json!({"kind": "opencode", "permission_mode": "plan"}),
            "permission_mode",
        ),
    ];
    for (mut body, field) in cases {
        body["name"] = json!("t");
        if body.get("command").is_none() {
            body["command"] = json!([fake_codex()]);
        }
        let r = s.post("/api/agents", body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["error"]["field"], field, "{body}: {}", r.text);
    }
    // A PATCH that would break the rule is refused the same way.
    let a = create(&s, json!({"name": "ok", "command": ["sh"]})).await;
    let r = s
        .patch(
            &format!("/api/agents/{}", a["id"]),
            json!({"command": ["gone-agent-xyz"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("command"))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_definition_stored_before_kinds_is_read_with_its_default_kind() {
    let s = TestServer::start().await;
    let a = create(
        &s,
        json!({"name": "old", "command": ["sh", "-c", "true"],
                             "session_args": {"first": ["--session-id", "{session_id}"],
                                              "resume": ["--resume", "{session_id}"]}}),
    )
    .await;
    let b = create(
        &s,
        json!({"name": "old-claude", "command": [fake_claude()]}),
    )
    .await;
    // As an older server stored them: no `kind`.
    let db = s.state().db.clone();
    db.write(|c| {
        c.execute(
            "UPDATE agents SET definition = json_remove(definition, '$.kind')",
            [],
        )
        .map_err(claude_manager::db::DbError::from)
    })
    .await
    .unwrap();
    let old = s.get(&format!("/api/agents/{}", a["id"])).await.body;
    assert_eq!(old["kind"], "command");
    // Claude Code's session flags were a default then, not its user's: they go.
    assert_eq!(old["session_args"], json!({"first": [], "resume": []}));
    let old_claude = s.get(&format!("/api/agents/{}", b["id"])).await.body;
    assert_eq!(old_claude["kind"], "claude");
    assert_eq!(old_claude["session_args"], b["session_args"]);
    s.stop().await;
}

#[tokio::test]
async fn a_codex_run_parses_its_json_events_into_events_and_a_result() {
    let s = TestServer::start().await;
    let argv_file = tempfile::NamedTempFile::new().unwrap();
    let a = create(
        &s,
        json!({"name": "codex", "kind": "codex", "command": [fake_codex()], "model": "gpt-5",
               "permission_mode": "plan",
               "env": {"FAKE_CODEX_ARGV": argv_file.path().display().to_string()}}),
    )
    .await;
    let t = task(&s, "tidy the readme", a["id"].as_i64(), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["result"], "codex did: tidy the readme");
    assert_eq!(exec["usage"]["output_tokens"], 42);
    let argv = std::fs::read_to_string(argv_file.path()).unwrap();
    assert_eq!(
        argv.lines().collect::<Vec<_>>(),
        [
            "exec",
            "--json",
            "--model",
            "gpt-5",
            "--sandbox",
            "read-only"
        ]
    );
    let stored: Vec<Value> = event_stream(&s, id, 0)
        .await
        .into_iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["data"].clone())
        .collect();
    let kinds: Vec<&str> = stored.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "thread.started",
            "turn.started",
            "item.completed",
            "item.started",
            "item.completed",
            "item.completed",
            "turn.completed"
        ]
    );
    // Continuing the conversation uses `codex exec resume <thread id> -`.
    let thread = stored[0]["data"]["thread_id"].as_str().unwrap().to_string();
    let r = s
        .post(&format!("/api/tasks/{t}/run"), json!({"resume": thread}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let again = r.body["id"].as_i64().unwrap();
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == again).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let argv = std::fs::read_to_string(argv_file.path()).unwrap();
    assert!(argv.ends_with(&format!("resume\n{thread}\n-\n")), "{argv}");
    s.stop().await;
}

#[tokio::test]
async fn a_failed_codex_turn_fails_the_run_with_codexs_words() {
    let s = TestServer::start().await;
    let a = create(
        &s,
        json!({"name": "codex", "kind": "codex", "command": [fake_codex()],
               "env": {"FAKE_CODEX_MODE": "fail"}}),
    )
    .await;
    let t = task(&s, "anything", a["id"].as_i64(), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(
        exec["reason"],
        "the agent reported an error: 401 Unauthorized: missing API key"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_plain_command_run_gets_no_flags_and_its_last_lines_are_the_result() {
    let s = TestServer::start().await;
    // Prints its argv count and the prompt it read on stdin.
    let script = r#"echo "args: $#"; read -r line; echo "did: $line""#;
    let a = create(
        &s,
        json!({"name": "sh", "command": ["sh", "-c", script, "sh"]}),
    )
    .await;
    assert_eq!(a["kind"], "command");
    let t = task(&s, "count the files", a["id"].as_i64(), 5).await;
    let mut ev = events(&s).await;
    let id = run(&s, t).await;
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["command"], json!(["sh", "-c", script, "sh"]));
    assert_eq!(exec["result"], "args: 0\ndid: count the files");
    let failing = create(
        &s,
        json!({"name": "f", "command": ["sh", "-c", "echo oops; exit 3"]}),
    )
    .await;
    let t = task(&s, "fail", failing["id"].as_i64(), 5).await;
    let id = run(&s, t).await;
    let done = wait_event(&mut ev, "execution.finished", |d| d["id"] == id).await;
    assert_eq!(done["status"], "failed", "{done}");
    let exec = s.get(&format!("/api/executions/{id}")).await.body;
    assert_eq!(exec["reason"], "exited with code 3");
    // A plain command has no way to continue a conversation: asking is refused up front.
    let r = s
        .post(&format!("/api/tasks/{t}/run"), json!({"resume": "abc"}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("resume"))
    );
    s.stop().await;
}
