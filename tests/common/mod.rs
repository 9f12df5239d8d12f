//! The shared test harness: real servers on 127.0.0.1:0 with temp data dirs, real HTTP and
//! WebSocket clients. Tests stay short and read as behaviour.
//!
//! Two ways to run a server:
//! - [`TestServer`]: in-process (`claude_manager::app::Server`), for most tests; gives access to
//!   the server's state (DB handle, metrics) for setting up rows.
//! - [`ServerProcess`]: the real binary as a child process, for signals, exit codes, crash tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use claude_manager::app::Server;
use claude_manager::config::Config;

pub mod browser;
pub mod git;
pub mod resume;
pub mod runs;
pub mod term;

/// The generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `f` until it returns `Some`, within [`WAIT`] (state the server reaches on its own tick).
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer` on every request when set.
    pub token: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The error code of a JSON error reply ("" if none).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose config `tweak` may change (pool size, limits, ...).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_data_dir(dir.path());
        tweak(&mut config);
        Self::start_config(config, dir).await
    }

    pub async fn start_config(mut config: Config, dir: tempfile::TempDir) -> TestServer {
        // Agents' hooks run `claude-manager hook …`: the built binary, not this test binary.
        config.hook_program = binary();
        let log = test_logger(&config.log_dir);
        let server = Server::start(config, log, Default::default())
            .await
            .expect("server starts");
        let addr = server.addr;
        let mut s = TestServer {
            addr,
            base: format!("http://{addr}"),
            dir,
            http: reqwest::Client::builder()
                .timeout(WAIT)
                .build()
                .expect("client"),
            token: server.first_admin_token.clone(),
            server: Some(server),
        };
        // A data dir that already had tokens (a restart) prints none: make one for the harness.
        if s.token.is_none() && !s.state().config.insecure_no_auth {
            s.token = Some(s.create_token("admin").await);
        }
        s
    }

    /// Creates a token of `scope` ("admin" | "monitor") in the running server's DB.
    pub async fn create_token(&self, scope: &str) -> String {
        let scope = claude_manager::auth::Scope::parse(scope).expect("scope");
        self.state()
            .db
            .write(move |c| claude_manager::auth::issue_token(c, scope, "test"))
            .await
            .expect("token created")
            .secret
    }

    /// The log directory of this server.
    pub fn log_dir(&self) -> PathBuf {
        self.state().config.log_dir.clone()
    }

    pub fn state(&self) -> &claude_manager::state::AppState {
        &self.server.as_ref().expect("running").state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        rb
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Reply {
        let resp = rb.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.req(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.req(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    /// Opens a WebSocket with the harness's credentials.
    pub async fn ws(&self, path: &str) -> Ws {
        self.try_ws(path).await.expect("websocket connects")
    }

    pub async fn try_ws(&self, path: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        self.try_ws_as(path, None).await
    }

    /// Opens a WebSocket from a device: `user_agent` is sent as its `User-Agent`.
    pub async fn ws_as(&self, path: &str, user_agent: &str) -> Ws {
        self.try_ws_as(path, Some(user_agent))
            .await
            .expect("websocket connects")
    }

    async fn try_ws_as(
        &self,
        path: &str,
        user_agent: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = self.ws_url(path).into_client_request()?;
        if let Some(agent) = user_agent {
            req.headers_mut()
                .insert("user-agent", agent.parse().expect("header value"));
        }
        if let Some(t) = &self.token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header value"),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("websocket connect in time")?;
        Ok(ws)
    }

    pub async fn stop(self) {
        self.stop_keep_dir().await;
    }

    /// Stops the server and hands back its data dir (otherwise deleted with the server).
    pub async fn stop_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        self.dir
    }
}

/// A JSON-lines logger writing to `<dir>/claude-manager.log` like the real binary.
fn test_logger(dir: &Path) -> slog::Logger {
    use claude_manager::logging::{init, LogSettings};
    let handle = init(&LogSettings {
        level: slog::Level::Info,
        dir: dir.to_path_buf(),
        max_bytes: 10_000_000,
        backups: 2,
        stderr: false,
    })
    .expect("log init");
    let logger = handle.logger.clone();
    // The writer thread lives as long as the test process.
    std::mem::forget(handle);
    logger
}

/// Reads WebSocket messages until `pred` accepts one (returned), within [`WAIT`].
pub async fn ws_until(ws: &mut Ws, mut pred: impl FnMut(&Message) -> bool) -> Message {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("expected websocket message in time")
            .expect("websocket open")
            .expect("websocket message");
        if pred(&msg) {
            return msg;
        }
    }
}

/// The next JSON text message of the given `type`.
pub async fn ws_json_of_type(ws: &mut Ws, kind: &str) -> Value {
    let msg = ws_until(ws, |m| {
        m.to_text()
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .is_some_and(|v| v["type"] == kind)
    })
    .await;
    serde_json::from_str(msg.to_text().expect("text")).expect("json")
}

pub async fn ws_send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("ws send");
}

/// The binary built by cargo for integration tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_claude-manager"))
}

/// The real binary running as a child process.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub addr: std::net::SocketAddr,
    pub base: String,
    pub stdout_lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// An admin token created with `claude-manager token create` before the start.
    pub token: String,
}

/// Runs `claude-manager ARGS...` to completion: (exit code, stdout, stderr).
pub async fn run_cli(args: &[&str]) -> (i32, String, String) {
    run_to_end(tokio::process::Command::new(binary()).args(args)).await
}

/// Runs `cmd` with no stdin to completion, within [`WAIT`]: (exit code, stdout, stderr).
pub async fn run_to_end(cmd: &mut tokio::process::Command) -> (i32, String, String) {
    // kill_on_drop: a command that overruns (a server that should have refused to start) is
    // not left running when the timeout drops it.
    let out = tokio::time::timeout(WAIT, cmd.stdin(Stdio::null()).kill_on_drop(true).output())
        .await
        .expect("command finishes in time")
        .expect("command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a token of `scope` in `data_dir` with the CLI and returns its secret; creates the
/// database first (`migrate --create`) if the data dir has none.
pub async fn cli_token(data_dir: &Path, scope: &str) -> String {
    let dir = data_dir.to_str().expect("utf-8 path");
    if !data_dir.join("claude-manager.db").exists() {
        let (code, _, err) = run_cli(&["migrate", "--create", "--data-dir", dir]).await;
        assert_eq!(code, 0, "migrate --create failed: {err}");
    }
    let (code, out, err) = run_cli(&[
        "token",
        "create",
        "--scope",
        scope,
        "--name",
        "test",
        "--data-dir",
        dir,
    ])
    .await;
    assert_eq!(code, 0, "token create failed: {err}");
    out.trim().to_string()
}

impl ServerProcess {
    /// Starts `claude-manager serve --data-dir DIR --bind BIND EXTRA...` and waits for its
    /// "listening on" line.
    pub async fn start(data_dir: &Path, bind: &str, extra: &[&str]) -> ServerProcess {
        Self::start_env(data_dir, bind, extra, &[]).await
    }

    /// As [`ServerProcess::start`], with extra environment variables.
    pub async fn start_env(
        data_dir: &Path,
        bind: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_limited(data_dir, bind, extra, env, None).await
    }

    /// As [`ServerProcess::start_env`], with the server's open-file limit (soft and hard) set
    /// to `nofile` when given, as `prlimit` or `LimitNOFILE=` would.
    pub async fn start_limited(
        data_dir: &Path,
        bind: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> ServerProcess {
        Self::start_full(&binary(), data_dir, bind, extra, env, nofile, |_| {}).await
    }

    /// As [`ServerProcess::start_env`], running the binary at `bin` (a copy, for reload tests
    /// that replace the file).
    pub async fn start_from(
        bin: &Path,
        data_dir: &Path,
        bind: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_full(bin, data_dir, bind, extra, env, None, |_| {}).await
    }

    /// As [`ServerProcess::start_from`], with `prepare` run on the command before the `serve`
    /// arguments are added (a wrapper's arguments, a `pre_exec` hook: tests that play systemd).
    pub async fn start_prepared(
        bin: &Path,
        data_dir: &Path,
        bind: &str,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut tokio::process::Command),
    ) -> ServerProcess {
        Self::start_full(bin, data_dir, bind, &[], env, None, prepare).await
    }

    async fn start_full(
        bin: &Path,
        data_dir: &Path,
        bind: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
        prepare: impl FnOnce(&mut tokio::process::Command),
    ) -> ServerProcess {
        let token = cli_token(data_dir, "admin").await;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.envs(env.iter().copied());
        prepare(&mut cmd);
        if let Some(limit) = nofile {
            // SAFETY: one async-signal-safe system call between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rl = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--bind")
            .arg(bind)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let addr = tokio::time::timeout(WAIT, async {
            while let Some(line) = rx.recv().await {
                if let Some(rest) = line.strip_prefix("claude-manager listening on http://") {
                    return rest.trim().parse().expect("address");
                }
            }
            panic!("server exited before listening");
        })
        .await
        .expect("server listening in time");
        ServerProcess {
            child,
            addr,
            base: format!("http://{addr}"),
            stdout_lines: rx,
            token,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    /// A WebSocket to `path` with the admin token.
    pub async fn ws(&self, path: &str) -> Ws {
        let mut req = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("ws request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token)
                .parse()
                .expect("header value"),
        );
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("websocket connect in time")
            .expect("websocket connects");
        ws
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal server");
    }

    /// Waits for the process to exit, within [`WAIT`].
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("server exits in time")
            .expect("wait")
    }
}

/// Holds one pooled connection inside a write transaction until dropped or released, so a
/// test can exhaust a small pool without sleeping.
pub struct DbHold {
    release: std::sync::mpsc::Sender<()>,
    holder: tokio::task::JoinHandle<Result<(), claude_manager::db::DbError>>,
}

impl DbHold {
    /// Returns once the connection is held.
    pub async fn take(s: &TestServer) -> DbHold {
        use claude_manager::db::DbError;
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let db = s.state().db.clone();
        let holder = tokio::spawn(async move {
            db.write(move |c| {
                c.execute_batch("BEGIN IMMEDIATE").map_err(DbError::from)?;
                let _ = held_tx.send(());
                let _ = release_rx.recv_timeout(WAIT);
                c.execute_batch("COMMIT").map_err(DbError::from)
            })
            .await
        });
        tokio::time::timeout(WAIT, held_rx)
            .await
            .expect("connection held in time")
            .expect("holder running");
        DbHold { release, holder }
    }

    /// Lets go of the connection and waits until the transaction committed.
    pub async fn release(self) {
        let _ = self.release.send(());
        self.holder
            .await
            .expect("holder task")
            .expect("held transaction commits");
    }
}
