//! `deploy/nginx.conf`, as shipped, on the nginx installed here (Debian 12: 1.22, the oldest
//! form of the config the guide's distributions need), with a self-signed certificate.
//!
//! The test copy of the config differs from the shipped file only in what a deployment changes
//! anyway, each substitution checked to have matched (see [`site_for_test`]): the server name
//! (`localhost`), the certificate paths (a temp dir), the ACME webroot (a temp dir), the
//! listening ports (free high ports on loopback instead of 80/443 on every address) and the
//! upstream port (the server under test instead of 8000).
//!
//! Needs `nginx` (apt-get install nginx-light), `openssl` and `curl` (apt-get install openssl
//! curl): curl is the HTTPS client (it binds distinct loopback source addresses, 127.0.0.2 and
//! 127.0.0.3, so nginx sees two clients), `openssl s_client` carries the WebSocket's TLS.

mod common;
use common::{ServerProcess, WAIT};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Runs `tool ARGS` once to prove it is installed, or fails naming the package to install.
fn require(tool: &str, args: &[&str], package: &str) {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{tool} is needed by this test: apt-get install {package}"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Replaces `from` with `to` in `text`, failing if the shipped config no longer contains it.
fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx.conf no longer contains {from:?}; update this test's substitutions"
    );
    text.replace(from, to)
}

/// The shipped site config with only deployment-specific values changed (module docs).
fn site_for_test(dir: &Path, upstream: u16, http: u16, https: u16) -> String {
    let site = std::fs::read_to_string(repo("deploy/nginx.conf")).expect("deploy/nginx.conf");
    let d = dir.display();
    let site = substitute(
        &site,
        "/etc/letsencrypt/live/cm.example.com/",
        &format!("{d}/"),
    );
    let site = substitute(
        &site,
        "server_name cm.example.com;",
        "server_name localhost;",
    );
    let site = substitute(&site, "root /var/www/html;", &format!("root {d}/www;"));
    let site = substitute(
        &site,
        "server 127.0.0.1:8000;",
        &format!("server 127.0.0.1:{upstream};"),
    );
    let site = substitute(&site, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    let site = substitute(&site, "listen [::]:80;", &format!("listen [::1]:{http};"));
    let site = substitute(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{https} ssl http2;"),
    );
    substitute(
        &site,
        "listen [::]:443 ssl http2;",
        &format!("listen [::1]:{https} ssl http2;"),
    )
}

/// A self-signed certificate for `localhost` at the paths the site config names.
fn self_signed_cert(dir: &Path) {
    require("openssl", &["version"], "openssl");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .arg("ec_paramgen_curve:prime256v1")
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temp nginx prefix: the site config inside a minimal main config (the distribution's
/// nginx.conf does no more than this for a site: `events {}` and `http { include … }`).
fn nginx_prefix(upstream: u16, http: u16, https: u16) -> tempfile::TempDir {
    require("nginx", &["-v"], "nginx-light");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("www")).expect("webroot");
    self_signed_cert(d);
    std::fs::write(d.join("site.conf"), site_for_test(d, upstream, http, https)).expect("site");
    // As root, workers would run as `nobody` and could not enter the 0700 temp dir.
    let user = if nix::unistd::geteuid().is_root() {
        "user root;"
    } else {
        ""
    };
    let main = format!(
        "{user}\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n",
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), main).expect("nginx.conf");
    dir
}

fn nginx_cmd(prefix: &Path) -> Command {
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(prefix.join("nginx.conf"))
        .arg("-e")
        .arg(prefix.join("error.log"));
    cmd
}

#[test]
fn shipped_config_passes_nginx_t_on_the_installed_nginx() {
    let prefix = nginx_prefix(8000, free_port(), free_port());
    let out = nginx_cmd(prefix.path())
        .arg("-t")
        .output()
        .expect("nginx runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t:\n{stderr}");
    assert!(!stderr.contains("[emerg]"), "nginx -t:\n{stderr}");
}

#[test]
fn no_location_sets_its_own_proxy_headers() {
    // A location with any proxy_set_header loses every server-level one (Host, X-Forwarded-*).
    let site = std::fs::read_to_string(repo("deploy/nginx.conf")).expect("deploy/nginx.conf");
    let mut depth_in_location = None;
    let mut depth = 0usize;
    for line in site.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if line.starts_with("location ") {
            depth_in_location = Some(depth);
        }
        assert!(
            depth_in_location.is_none() || !line.starts_with("proxy_set_header"),
            "a location sets {line:?}; set proxy headers at server level only"
        );
        depth += line.matches('{').count();
        depth -= line.matches('}').count();
        if depth_in_location.is_some_and(|d| depth <= d) {
            depth_in_location = None;
        }
    }
}

/// nginx in the foreground; stopped (SIGTERM to the master, which stops its workers) and reaped
/// when dropped.
struct Nginx {
    child: std::process::Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + WAIT;
        while matches!(self.child.try_wait(), Ok(None)) {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

async fn start_nginx(prefix: &Path, https: u16) -> Nginx {
    let child = nginx_cmd(prefix)
        .stdin(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let mut nginx = Nginx { child };
    let error_log = prefix.join("error.log");
    common::eventually("nginx accepts connections", || {
        let exited = nginx.child.try_wait().ok().flatten();
        let log = error_log.clone();
        async move {
            if let Some(status) = exited {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("nginx exited ({status}):\n{log}");
            }
            tokio::net::TcpStream::connect(("127.0.0.1", https))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    nginx
}

/// One HTTPS request through nginx with curl from the loopback address `from`:
/// (status, HTTP version, response headers).
async fn curl(
    from: &str,
    https: u16,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-sk", "--http2", "--interface", from, "-X", method])
        .arg("--resolve")
        .arg(format!("localhost:{https}:127.0.0.1"))
        .args([
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "%{http_code} %{http_version}",
        ]);
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    if !body.is_empty() {
        cmd.args([
            "-H",
            "content-type: application/json",
            "--data-binary",
            body,
        ]);
    }
    cmd.arg(format!("https://localhost:{https}{path}"));
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("curl finishes in time")
        .expect("curl runs (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut parts = last.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = parts.next().unwrap_or("").to_string();
    (status, version, head.to_string())
}

/// A WebSocket whose TLS is done by an `openssl s_client` child (killed when dropped).
struct TlsWs {
    ws: tokio_tungstenite::WebSocketStream<
        tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
    >,
    _tls: tokio::process::Child,
}

/// Opens `path` as a WebSocket through nginx over TLS (openssl s_client carries the bytes)
/// with a browser's `Origin` and the session cookie.
async fn browser_ws(https: u16, path: &str, cookie: &str) -> TlsWs {
    let mut tls = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-nocommands", "-verify_quiet"])
        .args(["-servername", "localhost", "-connect"])
        .arg(format!("127.0.0.1:{https}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_client runs");
    let stream = tokio::io::join(
        tls.stdout.take().expect("stdout"),
        tls.stdin.take().expect("stdin"),
    );
    let mut req = format!("wss://localhost{path}")
        .into_client_request()
        .expect("request");
    let h = req.headers_mut();
    h.insert("origin", "https://localhost".parse().expect("origin"));
    h.insert("cookie", cookie.parse().expect("cookie"));
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("websocket handshake in time")
        .expect("websocket upgraded through nginx");
    assert_eq!(resp.status().as_u16(), 101);
    TlsWs { ws, _tls: tls }
}

#[tokio::test]
async fn behind_nginx_login_websocket_and_login_limit_see_each_client() {
    require("curl", &["--version"], "curl");
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProcess::start(
        data.path(),
        "127.0.0.1:0",
        &["--trusted-proxies", "127.0.0.1"],
    )
    .await;
    let https = free_port();
    let prefix = nginx_prefix(server.addr.port(), free_port(), https);
    let nginx = start_nginx(prefix.path(), https).await;

    // Five wrong logins from 127.0.0.2 lock out 127.0.0.2, even with the right token ...
    let wrong = r#"{"token":"cmt_wrong"}"#;
    for _ in 0..5 {
        let (status, _, _) = curl("127.0.0.2", https, "POST", "/api/auth/login", &[], wrong).await;
        assert_eq!(status, 401);
    }
    let right = format!(r#"{{"token":"{}"}}"#, server.token);
    let (status, _, _) = curl("127.0.0.2", https, "POST", "/api/auth/login", &[], &right).await;
    assert_eq!(status, 429, "the sixth login from 127.0.0.2 is limited");

    // ... but not 127.0.0.3: the server counts the forwarded address, not nginx's.
    let (status, version, head) =
        curl("127.0.0.3", https, "POST", "/api/auth/login", &[], &right).await;
    assert_eq!(status, 200, "127.0.0.3 shares 127.0.0.2's limit:\n{head}");
    assert_eq!(version, "2", "HTTP/2 is on");
    let set_cookie = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("set-cookie: cm_session=")
        })
        .unwrap_or_else(|| panic!("no session cookie:\n{head}"));
    assert!(
        set_cookie.to_ascii_lowercase().contains("; secure"),
        "X-Forwarded-Proto https reached the server: {set_cookie}"
    );
    let request_id = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-request-id: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    let request_id = request_id.trim();
    assert!(
        request_id.len() == 32 && request_id.chars().all(|c| c.is_ascii_hexdigit()),
        "nginx's $request_id reached the server: {request_id:?}"
    );
    let cookie = set_cookie["set-cookie: ".len()..]
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();

    // A browser's WebSocket (Origin https://localhost, cookie) upgrades through nginx — the
    // Origin check passes only if Host reached the server — and carries live events.
    let mut events = browser_ws(https, "/api/events", &cookie).await;
    let auth = format!("authorization: Bearer {}", server.token);
    let (status, _, _) = curl(
        "127.0.0.3",
        https,
        "POST",
        "/api/tasks",
        &[&auth],
        r#"{"title":"through nginx"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let created = tokio::time::timeout(WAIT, async {
        while let Some(msg) = events.ws.next().await {
            let text = msg.expect("frame").into_text().unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["type"] == "task.created" {
                return v;
            }
        }
        panic!("events socket closed");
    })
    .await
    .expect("task.created through nginx in time");
    assert_eq!(created["data"]["title"], "through nginx");

    drop(events);
    drop(nginx);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait().await.success());
}
