//! `claude-manager token …` and the first-start admin token, run as the real binary.

mod common;
use common::{binary, cli_token, run_cli, ServerProcess, WAIT};

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

async fn status_with(base: &str, path: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn create_list_revoke_and_reset_admin_work_on_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let admin = cli_token(dir.path(), "admin").await;
    let monitor = cli_token(dir.path(), "monitor").await;
    assert!(admin.starts_with("cmt_") && admin.len() == 68, "{admin}");
    assert_ne!(admin, monitor);

    let (code, out, _) = run_cli(&["token", "list", "--data-dir", d]).await;
    assert_eq!(code, 0);
    assert!(out.contains("admin") && out.contains("monitor"), "{out}");
    assert!(!out.contains(&admin[4..]), "list shows a secret: {out}");

    let (code, out, _) = run_cli(&["token", "revoke", "2", "--data-dir", d]).await;
    assert_eq!(code, 0);
    assert!(out.contains("revoked"));
    let (code, _, err) = run_cli(&["token", "revoke", "2", "--data-dir", d]).await;
    assert_eq!(code, 2, "revoking twice names the problem: {err}");
    assert!(err.contains("no active token with id 2"), "{err}");
    let (_, out, _) = run_cli(&["token", "list", "--data-dir", d]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("2 ") && l.contains("revoked")),
        "{out}"
    );

    let (code, new_admin, err) = run_cli(&["token", "reset-admin", "--data-dir", d]).await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("revoked 1 admin token"), "{err}");
    let new_admin = new_admin.trim().to_string();

    // The server sees exactly what the CLI did.
    let mut server = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    assert_eq!(status_with(&server.base, "/api/tasks", &admin).await, 401);
    assert_eq!(status_with(&server.base, "/api/tasks", &monitor).await, 401);
    assert_eq!(
        status_with(&server.base, "/api/tasks", &new_admin).await,
        200
    );
    // reset-admin while the server runs: the harness's admin token stops at once.
    assert_eq!(
        status_with(&server.base, "/api/tasks", &server.token).await,
        200
    );
    let (code, newest, _) = run_cli(&["token", "reset-admin", "--data-dir", d]).await;
    assert_eq!(code, 0);
    assert_eq!(
        status_with(&server.base, "/api/tasks", &server.token).await,
        401
    );
    assert_eq!(
        status_with(&server.base, "/api/tasks", newest.trim()).await,
        200
    );
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait().await.success());
}

#[tokio::test]
async fn bad_scope_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, _, err) = run_cli(&["token", "create", "--scope", "root", "--data-dir", d]).await;
    assert_eq!(code, 2, "{err}");
}

/// Starts `serve` on a fresh dir; returns the child, its address and its stderr lines so far.
async fn serve_fresh(dir: &std::path::Path) -> (tokio::process::Child, String, Vec<String>) {
    let mut child = tokio::process::Command::new(binary())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(WAIT, async {
        while let Some(line) = out.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("claude-manager listening on ") {
                return a.trim().to_string();
            }
        }
        panic!("no listening line");
    })
    .await
    .unwrap();
    // stderr is written before the listening line; read what is there without blocking on EOF.
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut lines = Vec::new();
    while let Ok(Ok(Some(l))) =
        tokio::time::timeout(std::time::Duration::from_millis(300), err.next_line()).await
    {
        lines.push(l);
    }
    (child, base, lines)
}

#[tokio::test]
async fn first_start_prints_an_admin_token_once_on_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let (child, base, err) = serve_fresh(dir.path()).await;
    let token = err
        .iter()
        .find_map(|l| l.split("admin token: ").nth(1))
        .unwrap_or_else(|| panic!("no token in stderr: {err:?}"))
        .trim()
        .to_string();
    assert!(
        err.iter().any(|l| l.contains("log in at http://")),
        "{err:?}"
    );
    assert_eq!(status_with(&base, "/api/tasks", &token).await, 200);
    stop(child).await;
    let mut logs = String::new();
    for e in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        logs.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap_or_default());
    }
    assert!(logs.contains("first start: admin token created"), "{logs}");
    assert!(!logs.contains(&token), "the token reached the log");

    let (child, base, err) = serve_fresh(dir.path()).await;
    assert!(
        !err.iter().any(|l| l.contains("admin token:")),
        "printed twice: {err:?}"
    );
    assert_eq!(status_with(&base, "/api/tasks", &token).await, 200);
    stop(child).await;
}

async fn stop(mut child: tokio::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

/// Runs the binary in `cwd` with only the given `CM_*` variables set.
async fn run_in(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (code, out, err) = common::run_to_end(
        tokio::process::Command::new(binary())
            .args(args)
            .current_dir(cwd)
            .env_remove("CM_DATA_DIR")
            .env_remove("CM_CONFIG")
            .envs(env.iter().copied()),
    )
    .await;
    (code, out + &err)
}

#[tokio::test]
async fn commands_refuse_to_create_a_database_and_say_which_data_dir_to_pass() {
    let cwd = tempfile::tempdir().unwrap();
    let elsewhere = cwd.path().join("elsewhere");
    let e = elsewhere.to_str().unwrap();
    let backup = cwd.path().join("copy.db");
    let b = backup.to_str().unwrap();
    let commands: [&[&str]; 7] = [
        &["token", "list"],
        &["token", "create", "--scope", "admin"],
        &["token", "reset-admin"],
        &["migrate"],
        &["backup", b],
        &["token", "list", "--data-dir", e],
        &["restore", b, "--data-dir", e],
    ];
    for args in commands {
        let (code, text) = run_in(cwd.path(), args, &[]).await;
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(
            text.contains("--data-dir")
                && text.contains("--config")
                && text.contains("migrate --create"),
            "{args:?} does not say what to pass: {text}"
        );
    }
    assert!(!cwd.path().join("data").exists(), "./data was created");
    assert!(!elsewhere.exists(), "--data-dir was created");

    // `migrate --create` is the way to make one outside `serve`.
    let (code, text) = run_in(cwd.path(), &["migrate", "--create", "--data-dir", e], &[]).await;
    assert_eq!(code, 0, "{text}");
    assert!(elsewhere.join("claude-manager.db").is_file());
}

#[tokio::test]
async fn commands_find_the_data_dir_from_the_config_file_or_the_environment() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("server-data");
    let d = data.to_str().unwrap();
    let config = cwd.path().join("config.toml");
    std::fs::write(&config, format!("data_dir = {d:?}\n")).unwrap();
    let c = config.to_str().unwrap();

    let (code, text) = run_in(cwd.path(), &["migrate", "--create", "--config", c], &[]).await;
    assert_eq!(code, 0, "{text}");
    assert!(data.join("claude-manager.db").is_file(), "{text}");
    let (code, text) = run_in(
        cwd.path(),
        &["token", "create", "--scope", "admin", "--name", "from-file"],
        &[("CM_CONFIG", c)],
    )
    .await;
    assert_eq!(code, 0, "CM_CONFIG: {text}");
    let (code, text) = run_in(cwd.path(), &["token", "list"], &[("CM_DATA_DIR", d)]).await;
    assert_eq!(code, 0, "CM_DATA_DIR: {text}");
    assert!(text.contains("from-file"), "{text}");
    assert!(!cwd.path().join("data").exists(), "./data was created");
}
