//! A session is its whole process tree: stopping a terminal or a run — by DELETE, cancel, idle
//! reap, SIGTERM, a second SIGTERM, or `kill -9` followed by a restart — ends every process it
//! started, including background jobs in other process groups and ones that ignore SIGHUP and
//! SIGTERM. Each path is proved with cgroups (the default here: this machine has a writable
//! cgroup2 tree) and, where the path differs, without them (`session_cgroups = off`, the /proc
//! walk by session id).

mod common;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use claude_manager::config::CgroupSetting;
use common::{eventually, ServerProcess, TestServer, WAIT};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// Makes every test's `sleep` arguments unique, so no test sees another's processes.
fn markers() -> Jobs {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = format!("{}{:03}", std::process::id() % 100_000, n);
    Jobs(["1", "2", "3"].map(|k| format!("9{base}{k}")).to_vec())
}

/// The markers of a test's background jobs. When the test ends — above all when it fails
/// because a job escaped — whatever is still running under them is killed, so a failing test
/// never leaves centuries-long `sleep`s behind.
struct Jobs(Vec<String>);

impl Jobs {
    /// The first `n` markers, now guarded by the returned value instead.
    fn take(mut self, n: usize) -> Vec<String> {
        let mut all = std::mem::take(&mut self.0);
        all.truncate(n);
        all
    }
}

impl std::ops::Deref for Jobs {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for m in &self.0 {
            for pid in sleeping(m) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

/// A shell with job control (so each background job has a process group of its own) that
/// starts a `nohup` job, a job that ignores SIGHUP and SIGTERM, and — when `setsid` — a job in
/// a session of its own; then waits in the foreground.
fn shell_with_jobs(m: &[String], setsid: bool) -> Vec<String> {
    let escapee = if setsid {
        format!("setsid sleep {} & ", m[2])
    } else {
        String::new()
    };
    let script = format!(
        "set -m; nohup sleep {} >/dev/null 2>&1 & \
         bash -c \"trap '' HUP TERM; exec sleep {}\" & {escapee}\
         echo ready; sleep 600",
        m[0], m[1]
    );
    vec!["bash".into(), "-c".into(), script]
}

/// Live (not zombie) processes whose command line is `sleep MARKER`.
fn sleeping(marker: &str) -> Vec<i32> {
    let wanted = format!("sleep\0{marker}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, s)| s.starts_with('Z'));
        if cmdline == wanted.as_bytes() && !zombie {
            found.push(pid);
        }
    }
    found
}

/// Waits until every marked job runs (the tree is complete).
async fn all_running(markers: &[String]) {
    for m in markers {
        eventually(&format!("sleep {m} running"), || async {
            (!sleeping(m).is_empty()).then_some(())
        })
        .await;
    }
}

/// Waits until none of the marked jobs is left.
async fn all_gone(markers: &[String]) {
    for m in markers {
        eventually(&format!("sleep {m} gone"), || async {
            sleeping(m).is_empty().then_some(())
        })
        .await;
    }
}

async fn start(cgroups: bool) -> TestServer {
    TestServer::start_with(|c| {
        if !cgroups {
            c.session_cgroups = CgroupSetting::Off;
        }
    })
    .await
}

async fn delete_ends_every_job(cgroups: bool) {
    let s = start(cgroups).await;
    let m = markers();
    let jobs = if cgroups { &m[..] } else { &m[..2] };
    let t = s
        .post(
            "/api/terminals",
            json!({ "command": shell_with_jobs(&m, cgroups) }),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let exec = t.body["execution_id"].as_i64().unwrap();
    all_running(jobs).await;
    let id = t.body["id"].as_str().unwrap();
    let r = s.delete(&format!("/api/terminals/{id}")).await;
    assert!(r.status < 300, "{}", r.text);
    all_gone(jobs).await;
    let row = eventually("execution recorded", || async {
        let r = s.get(&format!("/api/executions/{exec}")).await;
        (r.body["status"] != "running").then_some(r.body)
    })
    .await;
    assert_eq!(row["status"], "cancelled", "{row}");
    assert_eq!(row["cgroup"].is_string(), cgroups, "{row}");
    if let Some(dir) = row["cgroup"].as_str() {
        let dir = dir.to_owned();
        eventually("the session's cgroup is removed", || async {
            (!std::path::Path::new(&dir).exists()).then_some(())
        })
        .await;
    }
    s.stop().await;
}

#[tokio::test]
async fn delete_ends_background_jobs_even_one_that_called_setsid_in_a_cgroup() {
    delete_ends_every_job(true).await;
}

#[tokio::test]
async fn delete_ends_background_jobs_in_other_groups_without_cgroups() {
    delete_ends_every_job(false).await;
}

#[tokio::test]
async fn the_idle_reaper_ends_background_jobs() {
    let s = TestServer::start_with(|c| {
        c.reap_interval = Duration::from_secs(1);
        c.terminal_idle_timeout = Some(Duration::from_secs(1));
    })
    .await;
    let m = markers();
    let t = s
        .post(
            "/api/terminals",
            json!({ "command": shell_with_jobs(&m, true) }),
        )
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    all_running(&m).await;
    all_gone(&m).await;
    s.stop().await;
}

/// An agent whose "CLI" starts the same background jobs and then works for a long time.
async fn agent_with_jobs(s: &TestServer, m: &[String]) -> i64 {
    let a = s
        .post(
            "/api/agents",
            json!({"name": format!("jobs-{}", m[0]), "command": shell_with_jobs(m, true)}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn cancelling_a_run_ends_its_background_jobs() {
    let s = TestServer::start().await;
    let m = markers();
    let agent = agent_with_jobs(&s, &m).await;
    let task = s
        .post("/api/tasks", json!({"title": "jobs", "agent_id": agent}))
        .await;
    assert_eq!(task.status, 201, "{}", task.text);
    let run = s
        .post(&format!("/api/tasks/{}/run", task.body["id"]), json!({}))
        .await;
    assert_eq!(run.status, 202, "{}", run.text);
    all_running(&m).await;
    let exec = run.body["id"].as_i64().unwrap();
    let r = s
        .post(&format!("/api/executions/{exec}/cancel"), json!({}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    all_gone(&m).await;
    s.stop().await;
}

/// A real server with a terminal and a run, each with background jobs; returns the markers.
async fn server_with_jobs(dir: &std::path::Path, extra: &[&str]) -> (ServerProcess, Jobs) {
    server_with_jobs_env(dir, extra, &[]).await
}

async fn server_with_jobs_env(
    dir: &std::path::Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (ServerProcess, Jobs) {
    let p = ServerProcess::start_env(dir, "127.0.0.1:0", extra, env).await;
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", p.base))
            .bearer_auth(&p.token)
            .json(&body)
            .send()
    };
    let cgroups = !extra.contains(&"off");
    let (term, run) = (markers(), markers());
    let r = post(
        "/api/terminals",
        json!({ "command": shell_with_jobs(&term, cgroups) }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let agent: Value = post(
        "/api/agents",
        json!({"name": "jobs", "command": shell_with_jobs(&run, cgroups)}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let task: Value = post(
        "/api/tasks",
        json!({"title": "jobs", "agent_id": agent["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let r = post(&format!("/api/tasks/{}/run", task["id"]), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let n = if cgroups { 3 } else { 2 };
    let mut jobs = term.take(n);
    jobs.extend(run.take(n));
    let jobs = Jobs(jobs);
    all_running(&jobs).await;
    (p, jobs)
}

#[tokio::test]
async fn sigterm_ends_the_background_jobs_of_terminals_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, jobs) = server_with_jobs(dir.path(), &[]).await;
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
    all_gone(&jobs).await;
}

#[tokio::test]
async fn a_second_sigterm_ends_the_background_jobs_too() {
    let dir = tempfile::tempdir().unwrap();
    // The server says STOPPING=1 once it is in the shutdown that a second SIGTERM cuts short;
    // signalling twice back to back would let tokio merge both into one.
    let notify_path = dir.path().join("notify.sock");
    let notify = tokio::net::UnixDatagram::bind(&notify_path).unwrap();
    let (mut p, jobs) = server_with_jobs_env(
        dir.path(),
        &["--session-cgroups", "off"],
        &[("NOTIFY_SOCKET", notify_path.to_str().unwrap())],
    )
    .await;
    p.signal(Signal::SIGTERM);
    let mut buf = [0u8; 512];
    loop {
        let n = tokio::time::timeout(WAIT, notify.recv(&mut buf))
            .await
            .expect("STOPPING=1 in time")
            .unwrap();
        if buf[..n].starts_with(b"STOPPING=1") {
            break;
        }
    }
    p.signal(Signal::SIGTERM);
    assert_eq!(p.wait().await.code(), Some(0));
    all_gone(&jobs).await;
}

async fn kill_9_then_restart_ends_every_job(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (mut p, jobs) = server_with_jobs(dir.path(), extra).await;
    p.signal(Signal::SIGKILL);
    p.wait().await;
    // The crash left them running: only the next start can end them.
    for m in jobs.iter() {
        assert!(!sleeping(m).is_empty(), "sleep {m} died with the server");
    }
    let mut p2 = ServerProcess::start(dir.path(), "127.0.0.1:0", extra).await;
    all_gone(&jobs).await;
    p2.signal(Signal::SIGTERM);
    assert_eq!(p2.wait().await.code(), Some(0));
}

#[tokio::test]
async fn after_kill_9_the_restart_ends_every_job_of_every_cgroup() {
    kill_9_then_restart_ends_every_job(&[]).await;
}

#[tokio::test]
async fn after_kill_9_the_restart_ends_every_job_of_every_session_without_cgroups() {
    kill_9_then_restart_ends_every_job(&["--session-cgroups", "off"]).await;
}

#[tokio::test]
async fn a_restart_removes_the_empty_cgroups_of_earlier_runs_and_no_one_elses() {
    let s = start(true).await;
    let t = s
        .post("/api/terminals", json!({"command": ["sh", "-c", "exit 0"]}))
        .await;
    assert_eq!(t.status, 201, "{}", t.text);
    let exec = t.body["execution_id"].as_i64().unwrap();
    let row = s.get(&format!("/api/executions/{exec}")).await;
    let dir = std::path::PathBuf::from(row.body["cgroup"].as_str().expect("ran in a cgroup"));
    let root = dir.parent().unwrap().to_path_buf();
    let boot = row.body["boot_id"].as_str().unwrap().to_owned();
    let data = s.stop_keep_dir().await;
    // What a shutdown cut short would leave: an empty cgroup of this data dir's earlier run,
    // beside one of a server this data dir never knew.
    let left = root.join(format!("{boot}-999999"));
    let foreign = root.join(format!("00000000-0000-0000-0000-{:0>12}-1", markers()[0]));
    std::fs::create_dir_all(&left).unwrap();
    std::fs::create_dir_all(&foreign).unwrap();
    let config = claude_manager::config::Config::for_data_dir(data.path());
    let s = TestServer::start_config(config, data).await;
    assert!(!left.exists(), "{} left behind", left.display());
    assert!(foreign.exists(), "another server's cgroup was removed");
    std::fs::remove_dir(&foreign).unwrap();
    s.stop().await;
}
