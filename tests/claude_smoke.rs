//! Smoke test with the real Claude Code CLI, when it is installed: an agent whose command is
//! `claude --version` runs in a PTY session, exits 0 and leaves its version in the output.
//! No credentials are used. Skipped (with the reason printed) when `claude` is not found:
//! `scripts/test` installs it from npm into `target/test-tools/npm` and passes `CM_CLAUDE_BIN`.

mod common;
use common::term::{agent_session_output, events};
use common::TestServer;
use serde_json::json;
use std::path::PathBuf;

/// `CM_CLAUDE_BIN`, else `claude` on PATH, else the prefix `scripts/test` installs into.
fn find_claude() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CM_CLAUDE_BIN").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("claude"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/test-tools/npm/node_modules/.bin/claude");
        p.is_file().then_some(p)
    })
}

#[tokio::test]
async fn real_claude_version_runs_in_an_agent_session() {
    let Some(claude) = find_claude() else {
        eprintln!(
            "SKIPPED real_claude_version_runs_in_an_agent_session: no `claude` (set CM_CLAUDE_BIN, \
             put it on PATH, or run scripts/test, which installs @anthropic-ai/claude-code)"
        );
        return;
    };
    let s = TestServer::start().await;
    let def = json!({"name": "real-claude", "command": [claude.display().to_string()],
                     "args": ["--version"], "session_args": {"first": [], "resume": []}});
    let tail = agent_session_output(&s, def).await;
    let has_version = tail
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| w.split('.').filter(|p| !p.is_empty()).count() >= 3);
    assert!(has_version, "a version like 1.2.3 in {tail:?}");
    assert!(tail.contains("Claude Code"), "{tail:?}");
    s.stop().await;
}

/// The real CLI accepts what the server gives it for "agents that ask" (docs/approvals.md):
/// `--settings` with our hooks, `--mcp-config` with `claude-manager mcp` and
/// `--permission-prompt-tool`. Without credentials the run ends with Claude Code's own
/// not-logged-in result — but it must get that far: its init event is there, listing our MCP
/// server, and no configuration error was printed.
#[tokio::test]
async fn real_claude_accepts_the_hook_settings_and_mcp_config() {
    let Some(claude) = find_claude() else {
        eprintln!("SKIPPED real_claude_accepts_the_hook_settings_and_mcp_config: no `claude`");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let s = TestServer::start().await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "real-claude-run", "command": [claude.display().to_string()],
                   // No user settings or credentials of whoever runs the tests.
                   "env": {"HOME": home.path().display().to_string()}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let t = s
        .post(
            "/api/tasks",
            json!({"title": "say hi", "agent_id": r.body["id"]}),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let mut ev = events(&s).await;
    let run = s
        .post(&format!("/api/tasks/{}/run", t.body["id"]), json!({}))
        .await;
    assert_eq!(run.status, 202, "{}", run.text);
    let exec = run.body["id"].as_i64().unwrap();
    let done = common::term::wait_event(&mut ev, "execution.finished", |d| d["id"] == exec).await;
    let events_of = s
        .state()
        .db
        .read(move |c| claude_manager::db::execution_events::list_since(c, exec, 0, 1000))
        .await
        .unwrap();
    let init = events_of
        .iter()
        .find(|e| e.kind == "system" && e.data["subtype"] == "init")
        .unwrap_or_else(|| panic!("no init event: {done} {events_of:?}"));
    let servers = init.data["mcp_servers"].to_string();
    // Listed (`pending` while it connects, which Claude Code does lazily), never `failed`.
    assert!(
        servers.contains("claude_manager") && !servers.contains("failed"),
        "our MCP server is configured: {servers}"
    );
    let text = format!("{done} {}", serde_json::to_string(&events_of).unwrap());
    for bad in [
        "Invalid settings",
        "settings file",
        "Invalid MCP",
        "mcp-config",
        "Unknown option",
    ] {
        assert!(!text.contains(bad), "configuration error {bad:?}: {text}");
    }
    assert!(
        events_of.iter().any(|e| e.kind == "result"),
        "it reached its (not logged in) result: {text}"
    );
    s.stop().await;
}
