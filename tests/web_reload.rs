//! The web UI across a server reload, in real Chromium (`web/tests/reload.test.mjs`): a terminal
//! open in the page goes on after SIGHUP (exec-in-place, same PID) with no error banner and no
//! line shown twice. The server runs as its own process here (a reload re-executes the binary),
//! unlike `tests/web_ui.rs`, whose servers run inside the test.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::ServerProcess;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
const TEST_BOUND: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_in_the_page_goes_on_across_a_server_reload() {
    if std::env::var_os("CM_SKIP_BROWSER_TESTS").is_some_and(|v| v == "1") {
        eprintln!("CM_SKIP_BROWSER_TESTS=1: browser test reload skipped");
        return;
    }
    let chromium = std::env::var("CM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} not found");
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let work_path = work.path().canonicalize().unwrap();
    let roots = work_path.display().to_string();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &["--allowed-roots", &roots]).await;
    let pid = p.pid();
    let mut child = tokio::process::Command::new("node")
        .arg("tests/reload.test.mjs")
        .current_dir(Path::new(MANIFEST).join("web"))
        .env("CM_URL", &p.base)
        .env("CM_TOKEN", &p.token)
        .env("CM_SERVER_PID", pid.to_string())
        .env("CM_WORK_DIR", &work_path)
        .env(
            "CM_SHOT_DIR",
            Path::new(MANIFEST).join("target/web-screenshots"),
        )
        .env("CM_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let status = tokio::time::timeout(TEST_BOUND, child.wait())
        .await
        .expect("browser test in time")
        .expect("node exit status");
    assert!(status.success(), "browser test reload failed: {status}");
    assert_eq!(p.pid(), pid);
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the server still runs"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}
