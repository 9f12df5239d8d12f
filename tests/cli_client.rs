//! The command-line client (`ls`, `new`, `attach`, `logs`) against a real server; `attach`
//! driven through a real PTY the way a person at a terminal would: type, read the screen,
//! resize the window, detach.

mod common;
use common::term::{create, sh};
use common::{binary, eventually, run_to_end, TestServer, WAIT};

use claude_manager::pty::{self, PtyCommand, PtyReader, WindowSize};
use serde_json::Value;

/// Runs the client with `CM_URL`/`CM_TOKEN` from `s` (no stdin): (exit code, stdout, stderr).
async fn client(s: &TestServer, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.args(args).env("CM_URL", &s.base);
    match &s.token {
        Some(t) => cmd.env("CM_TOKEN", t),
        None => cmd.env_remove("CM_TOKEN"),
    };
    run_to_end(&mut cmd).await
}

#[tokio::test]
async fn ls_shows_sessions_as_a_table_and_as_json() {
    let s = TestServer::start().await;
    let session = create(&s, sh(r"printf '\033]2;cli-title\007'; exec sleep 30")).await;
    let id = session["id"].as_str().unwrap();
    // Its name and, once the server's screen has parsed it, the title its program set.
    eventually("the session's title", || async {
        let r = s.get(&format!("/api/terminals/{id}")).await;
        (r.body["title"] == "cli-title").then_some(())
    })
    .await;

    let (code, out, err) = client(&s, &["ls"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID "), "a table with a header: {out}");
    let line = out
        .lines()
        .find(|l| l.contains(id))
        .expect("the session's row");
    assert!(
        line.contains("terminal") && line.contains("running") && line.ends_with(" — cli-title"),
        "{line}"
    );

    let (code, out, err) = client(&s, &["ls", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("ls --json prints JSON");
    assert!(v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == id));
    assert!(v["runs"].is_array());
    s.stop().await;
}

#[tokio::test]
async fn the_client_says_what_to_do_without_a_token_with_a_bad_one_or_no_server() {
    let mut s = TestServer::start().await;
    let token = s.token.take();
    let (code, _, err) = client(&s, &["ls"]).await;
    assert_eq!(code, 2, "no token is a usage error: {err}");
    assert!(
        err.contains("CM_TOKEN") && err.contains("--token-file"),
        "{err}"
    );

    s.token = Some("cmt_not_a_real_token".into());
    let (code, _, err) = client(&s, &["ls"]).await;
    assert_eq!(code, 4, "a refused token: {err}");
    assert!(err.contains("token create"), "{err}");

    // The token may come from a file instead of the environment.
    let file = s.dir.path().join("token");
    std::fs::write(&file, format!("{}\n", token.clone().unwrap())).unwrap();
    s.token = None;
    let (code, _, err) = client(&s, &["ls", "--token-file", file.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");

    s.token = token;
    let (code, _, err) = client(&s, &["attach", "0123456789abcdef0123456789abcdef"]).await;
    assert_eq!(code, 3, "an unknown session: {err}");
    assert!(err.contains("ls"), "{err}");

    let base = s.base.clone();
    s.stop().await;
    let (code, _, err) = run_to_end(
        tokio::process::Command::new(binary())
            .args(["ls", "--url", &base])
            .env("CM_TOKEN", "x"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the server") && err.contains("CM_URL"),
        "{err}"
    );
}

#[tokio::test]
async fn new_starts_a_session_and_logs_prints_its_output() {
    let s = TestServer::start().await;
    let (code, out, err) = client(
        &s,
        &[
            "new",
            "--name",
            "greeter",
            "--",
            "sh",
            "-c",
            "echo hello-from-new",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    let session = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(session.status, 200, "new prints the session id: {out}");
    assert_eq!(session.body["name"], "greeter");
    let exec = session.body["execution_id"].as_i64().unwrap().to_string();
    let text = eventually("the session's output is recorded", || async {
        let (code, out, _) = client(&s, &["logs", &exec]).await;
        (code == 0 && out.contains("hello-from-new")).then_some(out)
    })
    .await;
    assert!(text.contains("hello-from-new"));
    s.stop().await;
}

/// The client running on a PTY of its own, as a person's terminal.
struct Screen {
    reader: PtyReader,
    writer: pty::PtyWriter,
    child: pty::PtyChild,
    seen: Vec<u8>,
}

impl Screen {
    fn start(s: &TestServer, script: &str, size: WindowSize) -> Screen {
        let spawned = pty::spawn(&PtyCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![
                ("CM_URL".into(), s.base.clone()),
                ("CM_TOKEN".into(), s.token.clone().unwrap()),
                ("CM".into(), binary().to_string_lossy().into_owned()),
            ],
            size,
            cgroup: None,
            caps: Default::default(),
        })
        .expect("client on a pty");
        Screen {
            reader: spawned.reader,
            writer: spawned.writer,
            child: spawned.child,
            seen: Vec::new(),
        }
    }

    /// Reads the screen until it shows `needle` (after what was already consumed); returns what
    /// it consumed.
    async fn until(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            let mut buf = [0u8; 4096];
            loop {
                if let Some(i) = find(&self.seen, needle.as_bytes()) {
                    let shown: Vec<u8> = self.seen.drain(..i + needle.len()).collect();
                    return String::from_utf8_lossy(&shown).into_owned();
                }
                let n = self.reader.read(&mut buf).await.unwrap_or(0);
                assert!(
                    n > 0,
                    "the screen ended before {needle:?}: {:?}",
                    String::from_utf8_lossy(&self.seen)
                );
                self.seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no {needle:?} on the screen: {:?}",
                String::from_utf8_lossy(&self.seen)
            )
        })
    }

    async fn type_keys(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).await.expect("typing");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test]
async fn attach_types_follows_the_window_size_detaches_and_restores_the_terminal() {
    let s = TestServer::start().await;
    let session = create(
        &s,
        sh("while read l; do echo \"got:$l size:$(stty size)\"; done"),
    )
    .await;
    let id = session["id"].as_str().unwrap().to_string();

    // After the client returns, the shell shows the terminal's settings: raw mode must be gone.
    let script = format!("\"$CM\" attach {id}; echo \"exit:$?\"; stty -a");
    let mut screen = Screen::start(
        &s,
        &script,
        WindowSize {
            cols: 100,
            rows: 30,
        },
    );

    // The session takes the client's window size at attach.
    screen.type_keys(b"hello\r").await;
    screen.until("got:hello size:30 100").await;

    // A resize of the person's window (SIGWINCH to the client) reaches the session.
    screen
        .writer
        .resize(WindowSize {
            cols: 120,
            rows: 40,
        })
        .expect("resize");
    eventually("the session follows the window size", || async {
        let r = s.get(&format!("/api/terminals/{id}")).await;
        (r.body["cols"] == 120 && r.body["rows"] == 40).then_some(())
    })
    .await;
    screen.type_keys(b"again\r").await;
    screen.until("got:again size:40 120").await;

    // Ctrl-] detaches: the client exits 0 and the session keeps running.
    screen.type_keys(&[0x1d]).await;
    screen.until("[detached from").await;
    screen.until("exit:0").await;
    screen.until(" icanon").await;
    let rest = String::from_utf8_lossy(&screen.seen).into_owned();
    assert!(!rest.contains("-echo "), "echo is back on: {rest}");
    tokio::time::timeout(WAIT, screen.child.wait())
        .await
        .expect("shell ends")
        .unwrap();
    let r = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(
        r.body["status"], "running",
        "detaching leaves the session running"
    );
    s.stop().await;
}

#[tokio::test]
async fn attach_read_only_shows_output_but_sends_nothing() {
    let s = TestServer::start().await;
    let session = create(&s, sh("echo ready; while read l; do echo \"got:$l\"; done")).await;
    let id = session["id"].as_str().unwrap().to_string();
    let script = format!("\"$CM\" attach --ro {id}; echo \"exit:$?\"");
    let mut screen = Screen::start(&s, &script, WindowSize { cols: 90, rows: 20 });
    screen.until("ready").await;
    screen.type_keys(b"typed\r").await;
    // Detaching reads the keys in order: once detached, "typed" would have been sent already.
    screen.type_keys(&[0x1d]).await;
    screen.until("exit:0").await;
    // A read-write viewer's line is answered; nothing before it was.
    let (mut ws, _) = common::term::attach(&s, &id, "?since=0").await;
    common::term::send_input(&mut ws, b"probe\r").await;
    let mut seen = common::term::Seen::default();
    common::term::read_until_output(&mut ws, &mut seen, "got:probe").await;
    assert!(!seen.contains(b"got:typed"), "a read-only viewer typed");
    let r = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(
        r.body["cols"], 80,
        "a read-only viewer leaves the size alone"
    );
    s.stop().await;
}

/// A loopback TCP relay to the server whose open connections the test can cut, as a flaky
/// network would.
struct Relay {
    base: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(server: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(server).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(task.abort_handle());
            }
        });
        Relay { base, conns }
    }

    /// Drops every connection open now (both sides see them end).
    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

#[tokio::test]
async fn attach_resumes_at_the_same_byte_after_the_connection_drops() {
    let mut s = TestServer::start().await;
    let session = create(&s, sh("while read l; do echo \"got:$l\"; done")).await;
    let id = session["id"].as_str().unwrap().to_string();
    let relay = Relay::start(s.addr).await;
    let direct = std::mem::replace(&mut s.base, relay.base.clone());
    let mut screen = Screen::start(
        &s,
        &format!("\"$CM\" attach {id}"),
        WindowSize { cols: 80, rows: 24 },
    );
    s.base = direct;

    screen.type_keys(b"one\r").await;
    screen.until("got:one").await;
    relay.cut();
    screen.until("reconnecting").await;
    screen.type_keys(b"two\r").await;
    let after = screen.until("got:two").await;
    assert!(
        !after.contains("got:one"),
        "the resumed stream repeated output already shown: {after:?}"
    );
    screen.type_keys(&[0x1d]).await;
    screen.until("[detached from").await;
    s.stop().await;
}
