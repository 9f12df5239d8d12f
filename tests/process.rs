//! The real binary: settings errors, SIGTERM with a WebSocket open, JSON logs with request ids,
//! log rotation, `migrate`.

mod common;
use std::process::Command;

use common::{ServerProcess, WAIT};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(common::binary())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_exit_2_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let file_in_the_way = dir.path().join("file");
    std::fs::write(&file_in_the_way, "x").unwrap();
    let under_a_file = file_in_the_way.join("sub");
    let toml = dir.path().join("cm.toml");
    std::fs::write(&toml, "bind = \"127.0.0.1:0\"\nno_such_key = 1\n").unwrap();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["serve", "--data-dir", d, "--bind", "127.0.0.1:99999"],
            vec![],
            "bind",
        ),
        (
            vec!["serve", "--data-dir", d, "--bind", "nonsense"],
            vec![],
            "bind",
        ),
        (
            vec!["serve", "--data-dir", d],
            vec![("CM_DB_POOL_SIZE", "0")],
            "db_pool_size",
        ),
        (
            vec!["serve", "--data-dir", d],
            vec![("CM_LOG_LEVEL", "loud")],
            "log_level",
        ),
        (
            vec!["serve", "--data-dir", d, "--body-limit-bytes", "lots"],
            vec![],
            "body_limit_bytes",
        ),
        (
            vec!["serve", "--data-dir", under_a_file.to_str().unwrap()],
            vec![],
            "data_dir",
        ),
        (
            vec!["serve", "--data-dir", d, "--config", toml.to_str().unwrap()],
            vec![],
            "no_such_key",
        ),
        (
            vec!["serve", "--data-dir", d, "--config", "/nonexistent/cm.toml"],
            vec![],
            "config",
        ),
    ];
    for (args, env, setting) in cases {
        let (code, stderr) = run(&args, &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(setting),
            "{args:?} names {setting}: {stderr}"
        );
    }
}

#[test]
fn flags_win_over_env_which_wins_over_the_file() {
    // An invalid env value is reported even when the file has a valid one; a valid flag hides
    // an invalid env value.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let toml = dir.path().join("cm.toml");
    std::fs::write(&toml, "db_pool_size = 4\n").unwrap();
    let t = toml.to_str().unwrap();
    let (code, err) = run(
        &["serve", "--data-dir", d, "--config", t],
        &[("CM_DB_POOL_SIZE", "999")],
    );
    assert_eq!(code, 2, "env beats file: {err}");
    assert!(err.contains("999"));
    let (code, err) = run(
        &["migrate", "--create", "--data-dir", d, "--config", t],
        &[("CM_DATA_DIR", "/nonexistent/never")],
    );
    assert_eq!(code, 0, "flag beats env: {err}");
}

#[test]
fn migrate_applies_the_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    for _ in 0..2 {
        let out = Command::new(common::binary())
            .args(["migrate", "--create", "--data-dir", d])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("schema version"));
    }
    let conn = rusqlite::Connection::open(dir.path().join("claude-manager.db")).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert!(v >= 1);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn help_explains_every_option() {
    let out = Command::new(common::binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--bind",
        "--data-dir",
        "--config",
        "--log-level",
        "--db-pool-size",
        "--db-checkout-timeout-ms",
        "--body-limit-bytes",
        "CM_BIND",
    ] {
        assert!(help.contains(opt), "--help mentions {opt}");
    }
    let out = Command::new(common::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn sigterm_closes_websockets_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let mut req = format!("ws://{}/api/events", p.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", p.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    // The subscription is live once a ping is answered.
    futures_util::SinkExt::send(&mut ws, Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    let pong = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(pong.to_text().unwrap().contains("pong"));

    p.signal(Signal::SIGTERM);
    let close = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("close frame in time");
    assert_eq!(u16::from(close.expect("close frame has a code").code), 1001);
    let status = p.wait().await;
    assert_eq!(status.code(), Some(0), "clean exit");

    // The WAL was checkpointed: the DB is one self-contained file.
    let wal = dir.path().join("claude-manager.db-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[tokio::test]
async fn logs_are_json_lines_carrying_the_request_id_and_rotate_keeping_n_backups() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(
        dir.path(),
        "127.0.0.1:0",
        &["--log-max-bytes", "4096", "--log-backups", "2"],
    )
    .await;
    let http = reqwest::Client::new();
    for i in 0..200 {
        let r = http
            .get(format!("{}/api/tasks/{}", p.base, 1000 + i))
            .header("x-request-id", format!("req-{i}"))
            .bearer_auth(&p.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));

    let logs = dir.path().join("logs");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("claude-manager.log"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "claude-manager.log",
            "claude-manager.log.1",
            "claude-manager.log.2"
        ]
    );
    let mut seen_last = false;
    for name in &names {
        let text = std::fs::read_to_string(logs.join(name)).unwrap();
        assert!(text.len() <= 4096, "{name} over the rotation size");
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            for field in ["ts", "level", "msg", "module"] {
                assert!(v.get(field).is_some(), "{field} missing: {line}");
            }
            if v["request_id"] == "req-199" {
                assert_eq!(v["status"], 404);
                assert_eq!(v["route"], "/api/tasks/1199");
                assert_eq!(v["method"], "GET");
                assert!(v["duration_ms"].is_number());
                assert!(v["bytes"].is_number());
                seen_last = true;
            }
        }
    }
    assert!(
        seen_last,
        "the last request's access line is in the newest file"
    );
    // Warnings and errors go to error.log too; it exists from the start.
    assert!(logs.join("error.log").exists());
}

#[test]
fn insecure_no_auth_is_a_file_key_and_still_needs_a_loopback_bind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let toml = dir.path().join("cm.toml");
    let t = toml.to_str().unwrap();
    std::fs::write(&toml, "insecure_no_auth = true\n").unwrap();
    let (code, err) = run(
        &["migrate", "--create", "--data-dir", d, "--config", t],
        &[],
    );
    assert_eq!(code, 0, "accepted on the default loopback bind: {err}");
    std::fs::write(&toml, "insecure_no_auth = true\nbind = \"0.0.0.0:0\"\n").unwrap();
    let (code, err) = run(&["migrate", "--data-dir", d, "--config", t], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("insecure_no_auth"), "{err}");
    std::fs::write(&toml, "insecure_no_auth = \"yes\"\n").unwrap();
    let (code, err) = run(&["migrate", "--data-dir", d, "--config", t], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("insecure_no_auth") && err.contains("true or false"),
        "{err}"
    );
}
