//! `backup` while writers run gives a consistent copy holding every row committed before it;
//! `restore` checks integrity first and refuses while a server runs.

mod common;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::TestServer;
use serde_json::json;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(common::binary())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn task_ids(db: &std::path::Path) -> HashSet<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut stmt = conn.prepare("SELECT id FROM tasks").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_four_writers_is_consistent_and_complete() {
    let s = TestServer::start().await;
    let data = s.dir.path().to_str().unwrap().to_string();
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..4 {
        let acked = acked.clone();
        let stop = stop.clone();
        let base = s.req(reqwest::Method::POST, "/api/tasks");
        writers.push(tokio::spawn(async move {
            for i in 0..2000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let rb = base
                    .try_clone()
                    .unwrap()
                    .json(&json!({"title": format!("w{w} #{i}")}));
                let r = rb.send().await.unwrap();
                assert_eq!(r.status(), 201);
                let v: serde_json::Value = r.json().await.unwrap();
                acked.lock().unwrap().push(v["id"].as_i64().unwrap());
            }
        }));
    }
    // Wait until the writers are well under way (an event: rows acknowledged).
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while acked.lock().unwrap().len() < 200 {
        assert!(tokio::time::Instant::now() < deadline, "writers too slow");
        tokio::task::yield_now().await;
    }
    let before: HashSet<i64> = acked.lock().unwrap().iter().copied().collect();
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("cm.backup");
    let file_s = file.to_str().unwrap().to_string();
    let data2 = data.clone();
    let (code, out, err) =
        tokio::task::spawn_blocking(move || cli(&["backup", &file_s, "--data-dir", &data2]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("integrity ok"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let in_copy = task_ids(&file);
    let missing: Vec<_> = before.difference(&in_copy).collect();
    assert!(
        missing.is_empty(),
        "rows committed before the backup are missing: {missing:?}"
    );
    assert!(!file.with_extension("backup.partial").exists());

    // Without --force an existing file is not overwritten.
    let (code, _, err) = cli(&["backup", file.to_str().unwrap(), "--data-dir", &data]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");

    // Restore is refused while the server holds the data dir.
    let (code, _, err) = cli(&["restore", file.to_str().unwrap(), "--data-dir", &data]);
    assert_eq!(code, 1);
    assert!(err.contains("running"), "{err}");
    s.stop().await;
}

#[tokio::test]
async fn restore_puts_the_copy_back_after_checking_it() {
    let s = TestServer::start().await;
    let data = s.dir.path().to_path_buf();
    for i in 0..5 {
        s.post("/api/tasks", json!({"title": format!("kept {i}")}))
            .await;
    }
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("cm.backup");
    let (code, _, err) = cli(&[
        "backup",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    for i in 0..3 {
        s.post("/api/tasks", json!({"title": format!("after {i}")}))
            .await;
    }
    let config = claude_manager::config::Config::for_data_dir(&data);
    let _keep = s.stop_keep_dir().await;
    assert_eq!(
        task_ids(&data.join("claude-manager.db")).len(),
        8,
        "before restore"
    );

    // A corrupt file is refused and the database is left as it was.
    let junk = copy.path().join("junk.db");
    std::fs::write(&junk, b"SQLite format 3\0 but not really a database").unwrap();
    let (code, _, err) = cli(&[
        "restore",
        junk.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(task_ids(&data.join("claude-manager.db")).len(), 8);

    let (code, out, err) = cli(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored"));
    let s = TestServer::start_config(config, tempfile::tempdir().unwrap()).await;
    assert_eq!(s.get("/api/tasks").await.body["total"], 5);
    s.stop().await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let s = TestServer::start().await;
    let data = s.dir.path().to_path_buf();
    let config = claude_manager::config::Config::for_data_dir(&data);
    let err = claude_manager::app::Server::start(
        config,
        claude_manager::logging::discard(),
        Default::default(),
    )
    .await
    .err()
    .expect("second server refused");
    assert!(err.to_string().contains("running"), "{err}");
    s.stop().await;
}
