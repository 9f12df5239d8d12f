//! Private by default: whatever umask the server is started with, its data dir is 0700 and its
//! database, WAL, lock and logs 0600; a data dir it finds looser is reported at start and in
//! detailed health. Children get the starting umask back.

mod common;
use common::{run_cli, ServerProcess};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn detailed_health(p: &ServerProcess) -> Value {
    reqwest::Client::new()
        .get(format!("{}/api/system/health/detailed", p.base))
        .bearer_auth(&p.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_data_dir_and_its_files_are_private_even_under_umask_000() {
    // The most permissive umask there is; the server must not depend on the caller's.
    // SAFETY: umask only changes this process's mask; the tests in this file expect it.
    let previous = unsafe { libc::umask(0o000) };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = ServerProcess::start(&data, "127.0.0.1:0", &[]).await;
    // A write, so that the WAL exists.
    let created = reqwest::Client::new()
        .post(format!("{}/api/tasks", p.base))
        .bearer_auth(&p.token)
        .json(&serde_json::json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("logs")), 0o700, "log dir");
    for file in [
        "claude-manager.db",
        "claude-manager.db-wal",
        "claude-manager.lock",
        "logs/claude-manager.log",
        "logs/error.log",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let health = detailed_health(&p).await;
    assert_eq!(
        health["loose_permissions"],
        serde_json::json!([]),
        "{health}"
    );
    drop(p);
    // SAFETY: as above.
    unsafe { libc::umask(previous) };
}

#[tokio::test]
async fn a_data_dir_readable_by_others_is_reported_in_detailed_health() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = ServerProcess::start(&data, "127.0.0.1:0", &[]).await;
    let health = detailed_health(&p).await;
    let loose = health["loose_permissions"].as_array().expect("a list");
    assert!(
        loose
            .iter()
            .any(|l| l["path"] == data.display().to_string() && l["mode"] == "0755"),
        "{health}"
    );
}

#[tokio::test]
async fn a_second_serve_on_a_locked_data_dir_is_told_to_stop_the_first_not_about_restoring() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _first = ServerProcess::start(&data, "127.0.0.1:0", &[]).await;
    let data_arg = data.to_str().unwrap();
    let (code, _, err) = run_cli(&["serve", "--data-dir", data_arg, "--bind", "127.0.0.1:0"]).await;
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("stop it before starting another"), "{err}");
    assert!(!err.contains("restoring"), "{err}");
}
