//! What a session's child inherits from the server: the allow-listed environment plus its own
//! variables, the soft open-file limit the server was started with, and no shell history file.
//! Proved with the real binary started as a service manager would start it.

mod common;
use common::ServerProcess;

use serde_json::{json, Value};
use tokio::net::UnixDatagram;

/// Runs `script` in a terminal session of `p` and returns its recorded output once it exited.
async fn terminal_output(p: &ServerProcess, script: &str, env: Value) -> String {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/terminals", p.base))
        .bearer_auth(&p.token)
        .json(&json!({"command": ["sh", "-c", script], "env": env}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exec_url = format!("{}/api/executions/{}", p.base, created["execution_id"]);
    common::eventually("the terminal's child exits", || async {
        let exec: Value = http
            .get(&exec_url)
            .bearer_auth(&p.token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let done = exec["status"] != "running" && exec["status"] != "pending";
        done.then(|| exec["output_tail"].as_str().unwrap_or("").replace('\r', ""))
    })
    .await
}

fn soft_nofile_of(pid: i32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[tokio::test]
async fn children_get_the_allow_listed_environment_their_own_env_and_the_starting_fd_limit() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let _notify = UnixDatagram::bind(&notify_path).unwrap();
    let data = dir.path().join("data");
    let p = ServerProcess::start_env(
        &data,
        "127.0.0.1:0",
        &[],
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "600000000"),
            ("INVOCATION_ID", "0123456789abcdef"),
            ("JOURNAL_STREAM", "8:12345"),
            ("CM_PROBE_SETTING", "server-only"),
            ("CREDENTIALS_DIRECTORY", "/run/credentials/x"),
            ("SERVER_ONLY_PROBE", "server-only"),
            ("TZ", "Europe/Berlin"),
            ("LC_PAPER", "C"),
        ],
    )
    .await;
    let out = terminal_output(
        &p,
        "env | sort; echo \"nofile=$(ulimit -n)\"; echo \"histfile=[${HISTFILE-unset}]\"",
        json!({"SESSION_PROBE": "mine", "TZ": "UTC"}),
    )
    .await;
    let vars: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    for leaked in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "CM_PROBE_SETTING",
        "CM_DATA_DIR",
        "CREDENTIALS_DIRECTORY",
        "SERVER_ONLY_PROBE",
    ] {
        assert!(!vars.contains(&leaked), "{leaked} leaked into:\n{out}");
    }
    assert!(!out.contains("server-only"), "{out}");
    for line in [
        "SESSION_PROBE=mine",
        "TZ=UTC",
        "LC_PAPER=C",
        "TERM=xterm-256color",
        "histfile=[]",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line} missing from:\n{out}"
        );
    }
    assert!(vars.contains(&"PATH") && vars.contains(&"HOME"), "{out}");

    // The child gets the limit the server was started with (ours), not the one it raised to.
    let (ours, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    assert!(
        out.lines().any(|l| l == format!("nofile={ours}")),
        "want nofile={ours}:\n{out}"
    );
    if ours < hard {
        assert_eq!(soft_nofile_of(p.pid()), hard, "the server raised its own");
    }
    drop(p);
}
