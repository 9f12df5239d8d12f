//! The web UI across a server reload, in real Chromium (`web/tests/reload.test.mjs`): a terminal
//! open in the page goes on after SIGHUP (exec-in-place, same PID) with no error banner and no
//! line shown twice. The server runs as its own process here (a reload re-executes the binary),
//! unlike `tests/web_ui.rs`, whose servers run inside the test.

mod common;

use common::ServerProcess;

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_in_the_page_goes_on_across_a_server_reload() {
    if common::browser::skipped("reload") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let work_path = work.path().canonicalize().unwrap();
    let roots = work_path.display().to_string();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &["--allowed-roots", &roots]).await;
    let pid = p.pid();
    common::browser::run(
        "reload",
        &[
            ("CM_URL", p.base.clone().into()),
            ("CM_TOKEN", p.token.clone().into()),
            ("CM_SERVER_PID", pid.to_string().into()),
            ("CM_WORK_DIR", work_path.clone().into()),
        ],
    )
    .await;
    assert_eq!(p.pid(), pid);
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the server still runs"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}
