//! Helpers shared by the tests of the `pty` modules: commands to run and bounded waits on a
//! child's output and exit.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{ExitInfo, PtyChild, PtyCommand, PtyReader, WindowSize};

/// Bound on every wait for a child's event; generous because CI machines stall.
const EVENT_TIMEOUT_SECS: u64 = 10;
const SIZE: WindowSize = WindowSize { cols: 80, rows: 24 };

pub(super) fn command(program: &str, args: &[&str]) -> PtyCommand {
    PtyCommand {
        program: program.to_owned(),
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        cwd: PathBuf::from("/"),
        env: Vec::new(),
        size: SIZE,
        cgroup: None,
        caps: super::Caps::default(),
    }
}

pub(super) fn sh(script: &str) -> PtyCommand {
    command("sh", &["-c", script])
}

pub(super) async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(EVENT_TIMEOUT_SECS), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {EVENT_TIMEOUT_SECS} s waiting for {what}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Reads into `out` until it holds `needle`; panics on end of output first.
pub(super) async fn read_until(reader: &mut PtyReader, out: &mut Vec<u8>, needle: &[u8]) {
    let what = format!("{:?}", String::from_utf8_lossy(needle));
    within(&what, async {
        let mut buf = [0u8; 4096];
        while !contains(out, needle) {
            let n = reader.read(&mut buf).await.expect("read from master");
            assert!(n > 0, "output ended before {what}: {out:?}");
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
}

pub(super) async fn read_to_end(reader: &mut PtyReader) -> Vec<u8> {
    within("end of output", async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf).await.expect("read from master") {
                0 => return out,
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

pub(super) async fn kill_and_reap(child: &mut PtyChild) -> ExitInfo {
    child.signal_tree(Signal::SIGKILL).expect("kill tree");
    within("child exit", child.wait()).await.expect("wait")
}

/// Waits (bounded) until the process `pid` is stopped (its state is `T`), looking at its
/// `/proc` stat every 10 ms: a stop is no event a test can wait on.
pub(super) async fn stopped(pid: i32) {
    within("the child stopped", async {
        while super::signal::read_stat(pid).is_none_or(|s| s.state != 'T') {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}
