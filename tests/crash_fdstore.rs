//! A crash under systemd keeps the sessions (DESIGN "Sessions outlive the server process", issue
//! 13 item 3): the test plays systemd's documented part without a real PID 1. It owns the
//! `NOTIFY_SOCKET` datagram socket and keeps the fds sent with `FDSTORE=1` (SCM_RIGHTS) under
//! their `FDNAME`, honouring `FDSTOREREMOVE=1`; kills the server with SIGKILL; and starts it again
//! with the kept fds at 3…, `LISTEN_FDS`, `LISTEN_FDNAMES` and `LISTEN_PID` (set by a tiny `sh`
//! wrapper that execs the server, so it is the new process's own pid).

mod common;

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::resume::{alive, assert_resume_is_exact, attach};
use common::term::{read_until, send_input, Seen};
use common::{binary, ServerProcess, WAIT};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// Prints a numbered line every 20 ms, forever.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done";

/// systemd's fd store, as sd_notify(3) and systemd.service(5) describe it.
#[derive(Default)]
struct FdStore {
    fds: Vec<(String, OwnedFd)>,
    messages: u64,
}

/// Receives notifications on `socket` into `store`, on a thread, until the socket is shut down.
fn serve_notify(socket: UnixDatagram, store: Arc<Mutex<FdStore>>) {
    std::thread::spawn(move || loop {
        let mut buf = [0u8; 4096];
        let mut cmsg = nix::cmsg_space!([RawFd; 16]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) else {
            return;
        };
        let mut fds: Vec<OwnedFd> = Vec::new();
        for c in msg.cmsgs().into_iter().flatten() {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these fds in this process for us.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let len = msg.bytes;
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .map(str::to_string)
        };
        let name = field("FDNAME").unwrap_or_else(|| "stored".into());
        let mut store = store.lock().unwrap();
        store.messages += 1;
        if field("FDSTOREREMOVE").as_deref() == Some("1") {
            store.fds.retain(|(n, _)| *n != name);
        }
        if field("FDSTORE").as_deref() == Some("1") {
            store
                .fds
                .extend(fds.into_iter().map(|fd| (name.clone(), fd)));
        }
    });
}

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

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Waits (bounded) until the session's execution has ended; returns it.
    async fn ended(&self, session: &Value) -> Value {
        let id = session["execution_id"].as_i64().expect("execution_id");
        common::eventually("the session ends", || async {
            let e = self.get(&format!("/api/executions/{id}")).await;
            (e["status"] != "running" && e["status"] != "pending").then_some(e)
        })
        .await
    }
}

/// Starts the server as systemd restarts it: the kept fds at 3…, `LISTEN_*` for its own pid.
async fn restart_with(
    dir: &Path,
    bind: &str,
    notify: &str,
    kept: Vec<(String, OwnedFd)>,
) -> ServerProcess {
    let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
    let (names, count) = (names.join(":"), kept.len().to_string());
    let raw: Vec<RawFd> = kept.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    let env = [
        ("NOTIFY_SOCKET", notify),
        ("LISTEN_FDS", count.as_str()),
        ("LISTEN_FDNAMES", names.as_str()),
    ];
    let server = binary();
    let p = ServerProcess::start_prepared(Path::new("/bin/sh"), dir, bind, &env, |cmd| {
        cmd.arg("-c")
            .arg("LISTEN_PID=$$; export LISTEN_PID; exec \"$0\" \"$@\"")
            .arg(&server);
        // SAFETY: only dup2/fcntl (async-signal-safe) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first, so no target number is overwritten before it is moved.
                let high: Vec<RawFd> = raw
                    .iter()
                    .map(|&fd| libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 1000))
                    .collect();
                for (i, fd) in high.into_iter().enumerate() {
                    if fd < 0 || libc::dup2(fd, 3 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    })
    .await;
    drop(kept);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_crash_through_the_fd_store() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = notify_path.to_str().unwrap().to_string();
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    let store = Arc::new(Mutex::new(FdStore::default()));
    serve_notify(socket.try_clone().unwrap(), store.clone());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    let mut p =
        ServerProcess::start_env(&data, "127.0.0.1:0", &[], &[("NOTIFY_SOCKET", &notify)]).await;
    let api = Api::new(&p);
    let counter = api
        .post("/api/terminals", json!({"command": ["sh", "-c", COUNTER]}))
        .await;
    let reader = api
        .post(
            "/api/terminals",
            json!({"command": ["sh", "-c", "read x; echo \"got $x\""]}),
        )
        .await;
    let doomed = api
        .post(
            "/api/terminals",
            json!({"command": ["sh", "-c", "echo doomed; exec sleep 600"]}),
        )
        .await;
    let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-claude");
    let agent = api
        .post("/api/agents", json!({"name": "talker", "command": [fake]}))
        .await;
    let agent = api
        .post(&format!("/api/agents/{}/session", agent["id"]), json!({}))
        .await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let (cid, rid, did, aid) = (id(&counter), id(&reader), id(&doomed), id(&agent));

    // Every session's master and ring are in the store, under names that say whose they are.
    common::eventually("8 fds in the store", || async {
        (store.lock().unwrap().fds.len() == 8).then_some(())
    })
    .await;
    {
        let s = store.lock().unwrap();
        for sid in [&cid, &rid, &did] {
            for what in ["pty", "ring"] {
                let name = format!("cm.terminal.{sid}.{what}");
                assert!(s.fds.iter().any(|(n, _)| *n == name), "{name} stored");
            }
        }
        let name = format!("cm.agent_session.{aid}.ring");
        assert!(s.fds.iter().any(|(n, _)| *n == name), "{name} stored");
    }
    let health = api.get("/api/system/health/detailed").await;
    assert_eq!(health["reload"]["fd_store_fds"], 8, "{health}");

    // The agent mid-conversation; the counter counting, read from offset 0.
    let (mut agent_ws, _) = attach(&p, "/api/agent-sessions", &aid, "").await;
    let mut agent_seen = Seen::default();
    send_input(&mut agent_ws, b"hello\r").await;
    read_until(&mut agent_ws, &mut agent_seen, |s| {
        s.contains(b"echo: hello")
    })
    .await;
    let (mut counter_ws, attached) = attach(&p, "/api/terminals", &cid, "?since=0").await;
    let mut before = Seen::default();
    read_until(&mut counter_ws, &mut before, |s| s.contains(b"tick 20\r\n")).await;
    let (mut doomed_ws, _) = attach(&p, "/api/terminals", &did, "?since=0").await;
    read_until(&mut doomed_ws, &mut Seen::default(), |s| {
        s.contains(b"doomed")
    })
    .await;

    // kill -9; one child dies while no server runs.
    p.signal(nix::sys::signal::Signal::SIGKILL);
    p.wait().await;
    let doomed_pid = doomed["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(doomed_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::eventually("the doomed child is gone", || async {
        (!alive(doomed_pid)).then_some(())
    })
    .await;
    for s in [&counter, &reader, &agent] {
        assert!(
            alive(s["pid"].as_i64().unwrap()),
            "{} outlived the server",
            s["pid"]
        );
    }

    let kept = std::mem::take(&mut store.lock().unwrap().fds);
    let p = restart_with(&data, &p.addr.to_string(), &notify, kept).await;
    let api = Api::new(&p);
    let health = api.get("/api/system/health/detailed").await;
    assert_eq!(health["reload"]["adopted_sessions"], 3, "{health}");
    // The doomed session's fds were dropped; the adopted ones are stored again.
    common::eventually("6 fds in the store", || async {
        (store.lock().unwrap().fds.len() == 6).then_some(())
    })
    .await;

    // Recorded ended while the server was down: no exit status, said why.
    let doomed_end = api.ended(&doomed).await;
    assert_eq!(doomed_end["status"], "failed", "{doomed_end}");
    assert_eq!(doomed_end["exit_code"], Value::Null, "{doomed_end}");
    assert!(
        doomed_end["reason"]
            .as_str()
            .unwrap_or("")
            .contains("while the server was down"),
        "{doomed_end}"
    );

    // `since` resumes where the old viewer stopped, equal to a since=0 replay; offsets went on.
    let resume_at = attached["offset"].as_u64().unwrap() + before.bytes.len() as u64;
    let ticks = assert_resume_is_exact(&p, &cid, resume_at).await;
    assert!(
        ticks.len() > 20,
        "the counter went on: {} ticks",
        ticks.len()
    );

    // The agent goes on with its conversation.
    let (mut agent_ws, _) = attach(&p, "/api/agent-sessions", &aid, "").await;
    let mut seen = Seen::default();
    send_input(&mut agent_ws, b"again\r").await;
    read_until(&mut agent_ws, &mut seen, |s| s.contains(b"echo: again")).await;

    // Input reaches an adopted child; its end is recorded with no exit status, reason adopted.
    let (mut reader_ws, _) = attach(&p, "/api/terminals", &rid, "").await;
    let mut seen = Seen::default();
    send_input(&mut reader_ws, b"word\r").await;
    read_until(&mut reader_ws, &mut seen, |s| s.contains(b"got word")).await;
    let reader_end = api.ended(&reader).await;
    assert_eq!(reader_end["exit_code"], Value::Null, "{reader_end}");
    assert_eq!(reader_end["exit_signal"], Value::Null, "{reader_end}");
    assert_eq!(reader_end["reason"], "adopted", "{reader_end}");
    common::eventually("the ended session's fds left the store", || async {
        (store.lock().unwrap().fds.len() == 4).then_some(())
    })
    .await;
    let _ = socket.shutdown(std::net::Shutdown::Both);
}
