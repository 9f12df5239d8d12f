//! systemd's notify protocol against a test NOTIFY_SOCKET: READY after bind, WATCHDOG pings at
//! half of WATCHDOG_USEC, STOPPING on SIGTERM.

mod common;
use common::{ServerProcess, WAIT};
use nix::sys::signal::Signal;
use tokio::net::UnixDatagram;

async fn next(sock: &UnixDatagram) -> String {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, sock.recv(&mut buf))
        .await
        .expect("notification in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn ready_watchdog_and_stopping_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let data = dir.path().join("data");
    let mut p = ServerProcess::start_env(
        &data,
        "127.0.0.1:0",
        &[],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    )
    .await;
    let first = next(&sock).await;
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    assert!(
        first.contains("STATUS=serving; 0 terminal sessions"),
        "{first}"
    );
    // READY came after bind: the port answers.
    let r = reqwest::get(format!("{}/api/health", p.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let mut pings = 0;
    while pings < 3 {
        let msg = next(&sock).await;
        if msg.lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
    }
    p.signal(Signal::SIGTERM);
    loop {
        let msg = next(&sock).await;
        if msg.lines().any(|l| l == "STOPPING=1") {
            break;
        }
    }
    assert_eq!(p.wait().await.code(), Some(0));
}

#[tokio::test]
async fn without_notify_socket_nothing_is_sent_and_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let r = reqwest::get(format!("{}/api/health", p.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
}
