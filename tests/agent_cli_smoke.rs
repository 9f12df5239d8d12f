//! Smoke tests with the real OpenAI Codex CLI and Gemini CLI, when they are installed: each
//! starts in an agent session and prints its version, and the argv claude-manager builds for a
//! headless run of its kind (model, permission mode, resume) gets past the CLI's own argument
//! parser — the run then fails for want of credentials or a trusted folder, never for an
//! argument. No credentials are used. Skipped (saying why) when the CLI is not found:
//! `scripts/test` installs both from npm into `target/test-tools/npm` and passes
//! `CM_CODEX_BIN` / `CM_GEMINI_BIN`.

mod common;
use common::runs::task;
use common::term::agent_session_output;
use common::TestServer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// `$var`, else `name` on PATH, else the prefix `scripts/test` installs into.
fn find(var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target/test-tools/npm/node_modules/.bin")
            .join(name);
        p.is_file().then_some(p)
    })
}

/// An agent of `kind` whose session prints the CLI's version: the output it left.
async fn version_output(s: &TestServer, kind: &str, bin: &Path, home: &str) -> String {
    let def = json!({"name": format!("{kind}-version"), "kind": kind,
                     "command": [bin.display().to_string()], "args": ["--version"],
                     "session_args": {"first": [], "resume": []}, "env": {"HOME": home}});
    agent_session_output(s, def).await
}

fn has_version(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| w.split('.').filter(|p| !p.is_empty()).count() >= 3)
}

/// Runs a task with agent `agent` (optionally resuming `resume`) and returns its execution once
/// it finished: with no credentials it fails, and its stderr tail says why.
async fn failed_run(s: &TestServer, agent: i64, resume: Option<&str>) -> Value {
    let t = task(s, "say hello", Some(agent), 5).await;
    let body = match resume {
        Some(r) => json!({"resume": r}),
        None => json!({}),
    };
    let r = s.post(&format!("/api/tasks/{t}/run"), body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    // A CLI without network retries for a while: wait longer than the harness's usual bound.
    let deadline = tokio::time::Instant::now() + RUN_WAIT;
    loop {
        let exec = s.get(&format!("/api/executions/{id}")).await.body;
        if !matches!(exec["status"].as_str(), Some("pending" | "running")) {
            assert_eq!(
                exec["status"], "failed",
                "no credentials, no success: {exec}"
            );
            return exec;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} still {}",
            exec["status"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await; // polling a condition, bounded
    }
}

/// How long a real CLI's failing run may take (Gemini CLI takes ~25 s on a loaded machine).
const RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

#[tokio::test]
async fn real_codex_prints_its_version_and_accepts_the_argv_we_build() {
    let Some(codex) = find("CM_CODEX_BIN", "codex") else {
        eprintln!(
            "SKIPPED real_codex_prints_its_version_and_accepts_the_argv_we_build: no `codex` \
             (set CM_CODEX_BIN, put it on PATH, or run scripts/test, which installs @openai/codex)"
        );
        return;
    };
    // The CLI's home and the run's folder: a fresh directory (not a git repository).
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let root = home.path().to_path_buf();
    let s = TestServer::start_with(|c| c.allowed_roots.push(root)).await;
    let out = version_output(&s, "codex", &codex, &home_s).await;
    assert!(out.contains("codex-cli") && has_version(&out), "{out:?}");

    // A headless run in a folder Codex does not trust (not a git repository): it stops there,
    // after parsing the argv and reading the prompt.
    let r = s
        .post(
            "/api/agents",
            json!({"name": "codex-run", "kind": "codex", "command": [codex.display().to_string()],
                   "model": "gpt-5", "permission_mode": "plan", "project_dir": home_s,
                   "env": {"HOME": home_s, "OPENAI_API_KEY": ""}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let agent = r.body["id"].as_i64().unwrap();
    let exec = failed_run(&s, agent, None).await;
    let argv: Vec<&str> = exec["command"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        argv[1..],
        [
            "exec",
            "--json",
            "--model",
            "gpt-5",
            "--sandbox",
            "read-only"
        ]
    );
    let stderr = exec["output_tail"].as_str().unwrap_or("");
    assert_ne!(exec["exit_code"], 2, "a usage error: {stderr}");
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    assert!(
        stderr.contains("trusted directory") || stderr.contains("Reading prompt"),
        "{stderr}"
    );
    // Resuming: `codex exec … resume <id> -` parses, and fails on the unknown conversation.
    let exec = failed_run(&s, agent, Some("0199a213-81c0-7800-8aa1-bbab2a035a53")).await;
    let stderr = exec["output_tail"].as_str().unwrap_or("");
    assert_ne!(exec["exit_code"], 2, "a usage error: {stderr}");
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    s.stop().await;
}

#[tokio::test]
async fn real_gemini_prints_its_version_and_accepts_the_argv_we_build() {
    let Some(gemini) = find("CM_GEMINI_BIN", "gemini") else {
        eprintln!(
            "SKIPPED real_gemini_prints_its_version_and_accepts_the_argv_we_build: no `gemini` \
             (set CM_GEMINI_BIN, put it on PATH, or run scripts/test, which installs \
             @google/gemini-cli)"
        );
        return;
    };
    // The CLI's home and the run's folder: a fresh directory (not a git repository).
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let root = home.path().to_path_buf();
    let s = TestServer::start_with(|c| c.allowed_roots.push(root)).await;
    let out = version_output(&s, "gemini", &gemini, &home_s).await;
    assert!(has_version(&out), "{out:?}");

    let r = s
        .post(
            "/api/agents",
            json!({"name": "gemini-run", "kind": "gemini", "command": [gemini.display().to_string()],
                   "model": "gemini-2.5-pro", "permission_mode": "plan", "project_dir": home_s,
                   "env": {"HOME": home_s}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let exec = failed_run(&s, r.body["id"].as_i64().unwrap(), None).await;
    let stderr = exec["output_tail"].as_str().unwrap_or("");
    // It got as far as asking for credentials: the arguments were understood.
    assert!(stderr.contains("Auth method"), "{stderr}");
    assert!(!stderr.contains("Unknown argument"), "{stderr}");
    s.stop().await;
}
