//! Reload = exec-in-place (DESIGN "Sessions outlive the server process"): `claude-manager
//! reload` (SIGHUP) re-executes the binary from the path it was started from, keeping the PID,
//! and every terminal and agent session goes on: the children stay alive and ours (exact exit
//! codes), viewers are closed with 1012 and resume byte-exact with `since`, and no request is
//! refused meanwhile. A binary that cannot be executed leaves the old image serving; a handover
//! record the new image cannot read stops the sessions it named, recorded with the reason.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::resume::{alive, assert_resume_is_exact, attach};
use common::term::{read_until, send_input, send_json, Seen};
use common::{binary, run_cli, ServerProcess, WAIT};
use serde_json::{json, Value};

/// Prints a numbered line every 20 ms, forever.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done";

struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(p: &ServerProcess) -> Api {
        let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        Api {
            base: p.base.clone(),
            token: p.token.clone(),
            http,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn terminal(&self, body: Value) -> Value {
        let (status, t) = self.post("/api/terminals", body).await;
        assert_eq!(status, 201, "{t}");
        t
    }

    async fn agent_session(&self) -> Value {
        let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
        let (status, agent) = self
            .post("/api/agents", json!({"name": "talker", "command": [fake]}))
            .await;
        assert_eq!(status, 201, "{agent}");
        let id = agent["id"].as_i64().unwrap();
        let (status, session) = self
            .post(&format!("/api/agents/{id}/session"), json!({}))
            .await;
        assert_eq!(status, 201, "{session}");
        session
    }

    async fn reload_report(&self) -> Value {
        let (status, h) = self.get("/api/system/health/detailed").await;
        assert_eq!(status, 200, "{h}");
        h["reload"].clone()
    }

    /// Waits (bounded) until the session has ended; returns it.
    async fn ended(&self, prefix: &str, id: &str) -> Value {
        common::eventually("the session ends", || async {
            let (_, s) = self.get(&format!("{prefix}/{id}")).await;
            (s["status"] != "running" && s["status"] != "stopping").then_some(s)
        })
        .await
    }
}

async fn reload(dir: &Path) -> (i32, String, String) {
    run_cli(&["reload", "--data-dir", dir.to_str().unwrap()]).await
}

/// `GET /api/health` on a fresh connection each time, back to back, until stopped: every
/// answer that is not a 200 (a refused or reset connection included) is kept.
struct Hammer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hammer {
    fn start(base: &str) -> Hammer {
        let (stop, ok, failures) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(Mutex::new(Vec::new())),
        );
        let http = reqwest::Client::builder()
            .timeout(WAIT)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let url = format!("{base}/api/health");
        let (s, o, f) = (stop.clone(), ok.clone(), failures.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                match http.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        o.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => f.lock().unwrap().push(format!("status {}", r.status())),
                    Err(e) => f.lock().unwrap().push(format!("error {e:?}")),
                }
            }
        });
        Hammer {
            stop,
            ok,
            failures,
            task,
        }
    }

    async fn wait_for_answers(&self, n: u64) {
        let target = self.ok.load(Ordering::SeqCst) + n;
        common::eventually("health answers", || async {
            (self.ok.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await;
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::SeqCst), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_every_session_and_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let api = Api::new(&p);
    let pid = p.pid();

    let counter = api
        .terminal(json!({"command": ["sh", "-c", COUNTER]}))
        .await;
    let vim = api
        .terminal(json!({"command": ["vim", "-u", "NONE", "-N", "-n"], "cols": 80, "rows": 24}))
        .await;
    let exits_7 = api
        .terminal(json!({"command": ["sh", "-c", r"printf '\033]2;seven\007'; read x; exit 7"]}))
        .await;
    let agent = api.agent_session().await;
    let (cid, vid, xid, aid) = (
        counter["id"].as_str().unwrap(),
        vim["id"].as_str().unwrap(),
        exits_7["id"].as_str().unwrap(),
        agent["id"].as_str().unwrap(),
    );

    // The agent mid-conversation, vim on its screen, the counter counting.
    let (mut agent_ws, _) = attach(&p, "/api/agent-sessions", aid, "").await;
    let mut agent_seen = Seen::default();
    send_input(&mut agent_ws, b"hello\r").await;
    read_until(&mut agent_ws, &mut agent_seen, |s| {
        s.contains(b"echo: hello")
    })
    .await;
    let (mut vim_ws, _) = attach(&p, "/api/terminals", vid, "").await;
    let mut vim_seen = Seen::default();
    read_until(&mut vim_ws, &mut vim_seen, |s| s.contains(b"~")).await;
    // vim's viewer holds the session's size.
    send_json(
        &mut vim_ws,
        json!({"type": "resize", "cols": 100, "rows": 30, "take": true}),
    )
    .await;
    read_until(&mut vim_ws, &mut vim_seen, |s| s.has_json("resize")).await;
    // since=0: the raw stream from its first byte (a bare attach gets a screen snapshot first,
    // whose bytes are not stream offsets).
    let (mut counter_ws, attached) = attach(&p, "/api/terminals", cid, "?since=0").await;
    let mut before = Seen::default();
    read_until(&mut counter_ws, &mut before, |s| s.contains(b"tick 20\r\n")).await;

    // The title its program set, as the screen parsed it.
    let title_of = |id: &str| {
        let path = format!("/api/terminals/{id}");
        let api = &api;
        async move { api.get(&path).await.1["title"].clone() }
    };
    common::eventually("the title before the reload", || async {
        (title_of(xid).await == "seven").then_some(())
    })
    .await;

    let hammer = Hammer::start(&p.base);
    hammer.wait_for_answers(5).await;
    let (code, out, err) = reload(dir.path()).await;
    assert_eq!(code, 0, "reload failed: {out} {err}");
    assert!(out.contains("generation 1"), "{out}");

    // Every viewer was told to come back (1012), after everything the old image had read.
    for (ws, seen) in [
        (&mut counter_ws, &mut before),
        (&mut vim_ws, &mut vim_seen),
        (&mut agent_ws, &mut agent_seen),
    ] {
        read_until(ws, seen, |s| s.close.is_some()).await;
        assert_eq!(seen.close, Some(1012), "close code; json {:?}", seen.json);
    }
    hammer.wait_for_answers(5).await;
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    assert_eq!(p.pid(), pid);
    let report = api.reload_report().await;
    assert_eq!(report["generation"], 1, "{report}");
    assert_eq!(report["adopted_sessions"], 4, "{report}");
    assert_eq!(report["last_reload_outcome"], "ok", "{report}");
    for s in [&counter, &vim, &exits_7, &agent] {
        assert!(
            alive(s["pid"].as_i64().unwrap()),
            "child {} alive",
            s["pid"]
        );
    }

    // The title is handed over: the new image has it before anything is parsed again.
    assert_eq!(title_of(xid).await, "seven");

    // `since` resumes exactly where the old viewer stopped, and equals a since=0 replay.
    let resume_at = attached["offset"].as_u64().unwrap() + before.bytes.len() as u64;
    assert_resume_is_exact(&p, cid, resume_at).await;

    // The agent goes on with its conversation; vim still answers; the exit code is exact.
    let (mut agent_ws, _) = attach(&p, "/api/agent-sessions", aid, "").await;
    let mut seen = Seen::default();
    send_input(&mut agent_ws, b"again\r").await;
    read_until(&mut agent_ws, &mut seen, |s| s.contains(b"echo: again")).await;
    // The device that held vim's size holds it again when it comes back (the holder is handed
    // over with the session).
    let (mut vim_ws, hello) = attach(&p, "/api/terminals", vid, "").await;
    assert_eq!(hello["size_by"], hello["viewer"], "{hello}");
    assert_eq!(
        (&hello["cols"], &hello["rows"]),
        (&json!(100), &json!(30)),
        "{hello}"
    );
    send_input(&mut vim_ws, b"\x1b:q!\r").await;
    let vim_end = api.ended("/api/terminals", vid).await;
    assert_eq!(vim_end["exit_code"], 0, "{vim_end}");
    let (mut x_ws, _) = attach(&p, "/api/terminals", xid, "").await;
    send_input(&mut x_ws, b"go\r").await;
    let x_end = api.ended("/api/terminals", xid).await;
    assert_eq!(x_end["exit_code"], 7, "{x_end}");
    assert_eq!(x_end["status"], "failed", "{x_end}");

    let (ok, failures) = hammer.finish().await;
    assert!(
        failures.is_empty(),
        "health requests failed during the reload: {failures:?}"
    );
    assert!(ok >= 10);
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}

/// Installs `from` at `to` the way an upgrade does: a new file renamed over the old one.
fn install(from: &Path, to: &Path, mode: u32) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_runs_the_newly_installed_binary_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let installed = bin_dir.path().join("claude-manager");
    install(&binary(), &installed, 0o755);
    let mut p = ServerProcess::start_from(&installed, dir.path(), "127.0.0.1:0", &[], &[]).await;
    let api = Api::new(&p);
    let pid = p.pid();
    let exe = format!("/proc/{pid}/exe");
    let t = api
        .terminal(json!({"command": ["sh", "-c", COUNTER]}))
        .await;
    let id = t["id"].as_str().unwrap();
    let (mut ws, _) = attach(&p, "/api/terminals", id, "").await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.contains(b"tick 3\r\n")).await;

    // A broken install (not executable): the old image serves on, its viewers undisturbed.
    install(&binary(), &installed, 0o644);
    let (code, out, err) = reload(dir.path()).await;
    assert_ne!(
        code, 0,
        "a reload onto a non-executable binary must fail: {out}"
    );
    assert!(err.contains("cannot be executed"), "{err}");
    let report = api.reload_report().await;
    assert_eq!(report["generation"], 0, "{report}");
    assert_eq!(report["last_reload_outcome"], "failed", "{report}");
    let n = seen.bytes.len();
    read_until(&mut ws, &mut seen, |s| s.bytes.len() > n + 100).await;
    assert_eq!(seen.close, None, "the viewer stays attached");

    // The fixed install is what runs after the next reload: a new inode, same PID.
    install(&binary(), &installed, 0o755);
    let new_inode = std::fs::metadata(&installed).unwrap().ino();
    assert_ne!(std::fs::metadata(&exe).unwrap().ino(), new_inode);
    let (code, out, err) = reload(dir.path()).await;
    assert_eq!(code, 0, "reload failed: {out} {err}");
    assert_eq!(
        std::fs::metadata(&exe).unwrap().ino(),
        new_inode,
        "the new file runs"
    );
    assert_eq!(p.pid(), pid);
    let report = api.reload_report().await;
    assert_eq!(report["generation"], 1, "{report}");
    assert_eq!(report["adopted_sessions"], 1, "{report}");
    assert!(alive(t["pid"].as_i64().unwrap()));

    // And again: a reload of a reload still execs the installed path.
    let (code, out, err) = reload(dir.path()).await;
    assert_eq!(code, 0, "second reload failed: {out} {err}");
    assert_eq!(api.reload_report().await["generation"], 2);
    assert!(alive(t["pid"].as_i64().unwrap()));
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
    assert!(
        !alive(t["pid"].as_i64().unwrap()),
        "SIGTERM still stops the sessions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_new_image_cannot_read_stops_its_sessions_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start_env(
        dir.path(),
        "127.0.0.1:0",
        &[],
        &[("CM_FAULT_HANDOVER_VERSION", "999")],
    )
    .await;
    let api = Api::new(&p);
    let t = api.terminal(json!({"command": ["sleep", "600"]})).await;
    let child = t["pid"].as_i64().unwrap();
    let (code, out, err) = reload(dir.path()).await;
    assert_ne!(code, 0, "the reload must report the failure: {out}");
    assert!(err.contains("handover record"), "{err}");
    let report = api.reload_report().await;
    assert_eq!(report["generation"], 1, "{report}");
    assert_eq!(report["last_reload_outcome"], "failed", "{report}");
    let exec = t["execution_id"].as_i64().unwrap();
    let (_, e) = api.get(&format!("/api/executions/{exec}")).await;
    assert_eq!(e["status"], "interrupted", "{e}");
    assert!(
        e["reason"].as_str().unwrap_or("").contains("version 999"),
        "the reason says why: {e}"
    );
    common::eventually("the child is stopped and reaped", || async {
        (!alive(child) && !Path::new(&format!("/proc/{child}")).exists()).then_some(())
    })
    .await;
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}

/// A permission request pending across a reload is not lost: the agent's hook reconnects to the
/// new image with its request, which still waits; the user's answer reaches the agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_pending_across_a_reload_is_answered_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &[]).await;
    let api = Api::new(&p);
    let session = api.agent_session().await;
    let sid = session["id"].as_str().unwrap();
    let (mut ws, _) = attach(&p, "/api/agent-sessions", sid, "?since=0").await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.contains(b"> ")).await;
    send_input(&mut ws, b"ask Bash {\"command\": \"ls\"}\r").await;
    let id = common::eventually("the request is recorded", || async {
        let (_, list) = api.get("/api/approvals?status=pending").await;
        list["items"][0]["id"].as_i64()
    })
    .await;

    let (code, out, err) = reload(dir.path()).await;
    assert_eq!(code, 0, "reload failed: {out} {err}");
    let (status, still) = api.get(&format!("/api/approvals/{id}")).await;
    assert_eq!(status, 200, "{still}");
    assert_eq!(still["status"], "pending", "{still}");

    let (status, decided) = api
        .post(
            &format!("/api/approvals/{id}"),
            json!({"decision": "allow"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    let (mut ws, _) = attach(&p, "/api/agent-sessions", sid, "?since=0").await;
    let mut after = Seen::default();
    read_until(&mut ws, &mut after, |s| s.contains(b"allowed: Bash")).await;
    assert!(after.contains(b"allowed: Bash"), "the agent got the answer");
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}

/// Every message of a run's event socket (`since=0`) until its `end`.
async fn run_events(p: &ServerProcess, id: i64) -> Vec<Value> {
    use futures_util::StreamExt;
    let mut ws = p.ws(&format!("/api/executions/{id}/events?since=0")).await;
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time");
        match msg {
            Some(Ok(m)) if m.is_text() => {
                let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
                let end = v["type"] == "end";
                out.push(v);
                if end {
                    return out;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("the event socket ended before its end: {other:?}"),
        }
    }
}

/// The `tick N` numbers of a run's events, in order, and their sequence numbers.
fn ticks_and_seqs(events: &[Value]) -> (Vec<u64>, Vec<i64>) {
    let events: Vec<&Value> = events.iter().filter(|m| m["type"] == "event").collect();
    let seqs = events.iter().map(|m| m["data"]["seq"].as_i64().unwrap());
    let ticks = events.iter().filter_map(|m| {
        let text = m["data"]["data"]["message"]["content"][0]["text"].as_str()?;
        text.strip_prefix("tick ")?.parse().ok()
    });
    (ticks.collect(), seqs.collect())
}

/// A headless run mid-stream and one queued behind it survive a reload: same server PID, the
/// running run's child is the same process, its event stream goes on with no gap and no repeat
/// (a line half-written at the reload included), its stderr tail spans both images, its exit
/// code is exact; the queued one starts in the new image and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_mid_stream_and_a_queued_one_go_on_across_a_reload() {
    const TICKS: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--max-concurrent-runs", "1"];
    let mut p = ServerProcess::start(dir.path(), "127.0.0.1:0", &extra).await;
    let api = Api::new(&p);
    let pid = p.pid();
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
    let env = json!({"FAKE_CLAUDE_MODE": "ticks", "FAKE_CLAUDE_TICKS": TICKS.to_string(),
                     "FAKE_CLAUDE_TICK_SECS": "0.05", "FAKE_CLAUDE_EXIT_CODE": "5"});
    let (status, agent) = api
        .post(
            "/api/agents",
            json!({"name": "ticker", "command": [fake], "env": env}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let mut runs = Vec::new();
    for title in ["first", "second"] {
        let body = json!({"title": title, "description": "", "agent_id": agent["id"]});
        let (status, task) = api.post("/api/tasks", body).await;
        assert_eq!(status, 201, "{task}");
        let (status, run) = api
            .post(&format!("/api/tasks/{}/run", task["id"]), json!({}))
            .await;
        assert_eq!(status, 202, "{run}");
        runs.push(run["id"].as_i64().unwrap());
    }
    let (first, second) = (runs[0], runs[1]);

    // Mid-stream: some ticks stored, most still to come.
    let running = common::eventually("the first run ticks", || async {
        let (_, e) = api.get(&format!("/api/executions/{first}")).await;
        (e["status"] == "running" && e["pid"].is_i64()).then_some(e)
    })
    .await;
    let (mut ws, mut seen) = (
        p.ws(&format!("/api/executions/{first}/events?since=0"))
            .await,
        0u64,
    );
    while seen < 5 {
        use futures_util::StreamExt;
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time");
        let text = msg.expect("open").expect("message");
        if text.to_text().unwrap_or("").contains("\"tick ") {
            seen += 1;
        }
    }
    let (_, queued) = api.get(&format!("/api/executions/{second}")).await;
    assert_eq!(queued["status"], "pending", "{queued}");

    let (code, out, err) = reload(dir.path()).await;
    assert_eq!(code, 0, "reload failed: {out} {err}");
    assert_eq!(p.pid(), pid);
    let (_, during) = api.get(&format!("/api/executions/{first}")).await;
    assert_eq!(during["pid"], running["pid"], "{during}");
    assert_eq!(
        during["status"], "running",
        "handed over, not ended: {during}"
    );

    for id in [first, second] {
        let done = common::eventually("the run ends", || async {
            let (_, e) = api.get(&format!("/api/executions/{id}")).await;
            (e["status"] != "running" && e["status"] != "pending").then_some(e)
        })
        .await;
        assert_eq!(done["exit_code"], 5, "exact exit code: {done}");
        assert_eq!(done["status"], "failed", "{done}");
        let reason = done["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("exited with code 5"), "{done}");
        let result = done["result"].as_str().unwrap_or_default();
        assert!(
            result.starts_with("Done: "),
            "the result event was read: {done}"
        );
        let events = run_events(&p, id).await;
        let (ticks, seqs) = ticks_and_seqs(&events);
        assert_eq!(
            ticks,
            (1..=TICKS).collect::<Vec<_>>(),
            "every tick once, in order"
        );
        let n = seqs.len() as i64;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "no gap, no repeat");
        assert_eq!(n as u64, TICKS + 5, "system, 3 turns, the ticks, result");
        let tail = done["output_tail"].as_str().unwrap_or_default();
        assert!(
            tail.contains("stderr tick 1\n") && tail.contains(&format!("stderr tick {TICKS}\n")),
            "the stderr tail spans the reload: {done}"
        );
    }
    let (_, after) = api.get(&format!("/api/executions/{first}")).await;
    assert_eq!(
        after["pid"], running["pid"],
        "the same child ran to its end"
    );
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    p.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(p.wait().await.success());
}
