//! `attach ID`: this terminal becomes a viewer of a session, over the terminal WebSocket
//! protocol (docs/terminals.md).
//!
//! Raw mode for the whole attachment (restored on every way out); the window size sent at
//! attach and on every SIGWINCH; `Ctrl-]` detaches. The client counts the output bytes it has
//! written, so after a dropped connection it reconnects with `since=<that offset>` and the
//! screen continues with no gap and no repeat.

use crate::protocol::{
    ClientMsg, CLOSE_NORMAL, CLOSE_NOT_FOUND, CLOSE_SESSION_GONE, CLOSE_TOO_MANY_VIEWERS,
};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::api::{Api, ClientError, Ws};
use super::term::{window_size, RawMode};

/// `Ctrl-]`, the detach key (telnet's escape): never sent to the session.
pub const DETACH_KEY: u8 = 0x1d;
/// Reconnection attempts after a dropped connection, 0.25 s doubling to 4 s (≈ 30 s in all).
const RECONNECT_ATTEMPTS: u32 = 10;

/// How an attachment ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// The user pressed the detach key, closed stdin, or a signal asked us to stop.
    Detached,
    /// The session's process ended; its exit code, if it had one.
    Exited(Option<i64>),
}

/// Attaches to session `id` (terminal or agent session) until detached or the session ends.
pub async fn attach(api: &Api, id: &str, ro: bool) -> Result<Ended, ClientError> {
    let ws_path = session_ws_path(api, id).await?;
    let mode = if ro { "ro" } else { "rw" };
    let mut signals = Signals::new()?;
    let mut stdin = tokio::io::stdin();
    let raw = RawMode::enter()?;
    let mut offset: Option<u64> = None;
    let mut input = vec![0u8; 4096];
    let result = loop {
        let since = offset.map(|o| format!("&since={o}")).unwrap_or_default();
        let path = format!("{ws_path}?mode={mode}{since}");
        let mut ws = match connect(api, &path, offset.is_some(), raw.is_some()).await {
            Ok(ws) => ws,
            Err(e) => break Err(e),
        };
        if !ro {
            send_size(&mut ws).await;
        }
        let step = view(
            &mut ws,
            &mut offset,
            &mut signals,
            &mut stdin,
            &mut input,
            ro,
        )
        .await;
        match step {
            Step::Reconnect(why) => notice(&format!("connection lost ({why}); reconnecting")),
            Step::Done(r) => {
                let _ = ws.close(None).await;
                break r;
            }
        }
    };
    drop(raw);
    match &result {
        Ok(Ended::Detached) => {
            eprintln!("[detached from {id}; `claude-manager attach {id}` resumes]")
        }
        Ok(Ended::Exited(code)) => match code {
            Some(c) => eprintln!("[session {id} exited with code {c}]"),
            None => eprintln!("[session {id} ended]"),
        },
        Err(_) => {}
    }
    result
}

/// The session's WebSocket path, from its record (terminal first, then agent session).
async fn session_ws_path(api: &Api, id: &str) -> Result<String, ClientError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ClientError::Usage(format!(
            "{id:?} is not a session id (`claude-manager ls` lists them)"
        )));
    }
    let info = match api.get(&format!("/api/terminals/{id}")).await {
        Err(ClientError::Api { status: 404, .. }) => {
            api.get(&format!("/api/agent-sessions/{id}")).await?
        }
        other => other?,
    };
    info["ws"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ClientError::Protocol(format!("session {id} has no `ws` path")))
}

/// Opens the socket; a reconnection retries with backoff while the server is unreachable.
async fn connect(api: &Api, path: &str, retry: bool, raw: bool) -> Result<Ws, ClientError> {
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        match api.websocket(path).await {
            Ok(ws) => return Ok(ws),
            Err(e @ ClientError::Unreachable { .. }) if retry && attempt < RECONNECT_ATTEMPTS => {
                attempt += 1;
                if raw && attempt == 1 {
                    notice(&format!("{e}; retrying"));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
            Err(e) => return Err(e),
        }
    }
}

enum Step {
    Reconnect(String),
    Done(Result<Ended, ClientError>),
}

struct Signals {
    winch: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            winch: signal(SignalKind::window_change())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// One connection's life: output to stdout, keys to the session, resizes, until it drops.
async fn view(
    ws: &mut Ws,
    offset: &mut Option<u64>,
    signals: &mut Signals,
    stdin: &mut tokio::io::Stdin,
    buf: &mut [u8],
    ro: bool,
) -> Step {
    let mut stdout = tokio::io::stdout();
    // Set by `snapshot`: the next binary frame is the screen (it begins with a reset), not
    // output, so it moves no offset.
    let mut screen_frame = false;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(bytes))) => {
                    if let Err(e) = write_out(&mut stdout, &bytes).await {
                        return Step::Done(Err(e.into()));
                    }
                    if !std::mem::take(&mut screen_frame) {
                        *offset = Some(offset.unwrap_or(0) + bytes.len() as u64);
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    screen_frame |= text.contains("\"type\":\"snapshot\"");
                    if let Some(done) = on_control(&text, offset) {
                        return Step::Done(done);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| f.code);
                    return on_close(code);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Step::Reconnect(e.to_string()),
                None => return Step::Reconnect("closed".into()),
            },
            n = stdin.read(buf) => match n {
                Ok(0) | Err(_) => return Step::Done(Ok(Ended::Detached)),
                Ok(n) => {
                    let keys = &buf[..n];
                    let detach = keys.iter().position(|&b| b == DETACH_KEY);
                    let send = &keys[..detach.unwrap_or(n)];
                    if !ro && !send.is_empty() {
                        let frame = Message::Binary(send.to_vec().into());
                        if let Err(e) = ws.send(frame).await {
                            return Step::Reconnect(e.to_string());
                        }
                    }
                    if detach.is_some() {
                        return Step::Done(Ok(Ended::Detached));
                    }
                }
            },
            _ = signals.winch.recv() => {
                if !ro {
                    send_size(ws).await;
                }
            }
            _ = signals.term.recv() => return Step::Done(Ok(Ended::Detached)),
            _ = signals.hup.recv() => return Step::Done(Ok(Ended::Detached)),
            _ = signals.int.recv() => return Step::Done(Ok(Ended::Detached)),
        }
    }
}

async fn write_out(stdout: &mut tokio::io::Stdout, bytes: &[u8]) -> std::io::Result<()> {
    stdout.write_all(bytes).await?;
    stdout.flush().await
}

/// Handles a JSON control message; `Some` ends the attachment.
fn on_control(text: &str, offset: &mut Option<u64>) -> Option<Result<Ended, ClientError>> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v["type"].as_str()? {
        // The replay (or the resync's bytes, or the output after a snapshot) starts here.
        "attached" | "resync" | "snapshot" => {
            if let Some(o) = v["offset"].as_u64() {
                *offset = Some(o);
            }
            None
        }
        "exit" => Some(Ok(Ended::Exited(v["code"].as_i64()))),
        "error" => {
            let message = v["message"].as_str().unwrap_or("");
            notice(&format!("server: {message}"));
            None
        }
        _ => None,
    }
}

fn on_close(code: Option<CloseCode>) -> Step {
    let Some(code) = code else {
        return Step::Reconnect("closed without a code".into());
    };
    match u16::from(code) {
        CLOSE_NORMAL => Step::Done(Ok(Ended::Exited(None))),
        CLOSE_NOT_FOUND => Step::Done(Err(ClientError::Api {
            status: 404,
            code: "not_found".into(),
            message: "the session is gone".into(),
            hint: "; `claude-manager ls` lists what exists",
        })),
        CLOSE_TOO_MANY_VIEWERS => Step::Done(Err(ClientError::Failed(
            "the session has too many viewers; detach one and try again".into(),
        ))),
        CLOSE_SESSION_GONE => Step::Done(Err(ClientError::Failed(
            "the session failed on the server (see the server log)".into(),
        ))),
        // 1001 (server restarting), 4008 (we fell behind), anything else: resume.
        other => Step::Reconnect(format!("close code {other}")),
    }
}

async fn send_size(ws: &mut Ws) {
    if let Some((cols, rows)) = window_size() {
        let msg = ClientMsg::Resize {
            take: true,
            cols: cols.into(),
            rows: rows.into(),
        }
        .to_text();
        let _ = ws.send(Message::Text(msg.into())).await;
    }
}

/// A line for the person at the terminal, readable in raw mode too.
fn notice(text: &str) {
    eprint!("\r\n[{text}]\r\n");
}
