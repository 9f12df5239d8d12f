//! Terminal helpers for tests: create sessions, attach viewers, read output until a condition,
//! wait for events. Every wait is bounded by [`WAIT`]; none is a sleep.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use super::{TestServer, Ws, WAIT};

/// `POST /api/terminals` that must succeed; returns the session.
pub async fn create(s: &TestServer, body: Value) -> Value {
    let r = s.post("/api/terminals", body).await;
    assert_eq!(r.status, 201, "create terminal: {}", r.text);
    r.body
}

/// A command run through `sh -c`.
pub fn sh(script: &str) -> Value {
    json!({"command": ["sh", "-c", script]})
}

/// A viewer and its `attached` message.
pub async fn attach(s: &TestServer, id: &str, query: &str) -> (Ws, Value) {
    let ws = s.ws(&format!("/api/terminals/{id}/ws{query}")).await;
    attached(ws).await
}

/// [`attach`] from a device (`user_agent`).
pub async fn attach_as(s: &TestServer, id: &str, user_agent: &str) -> (Ws, Value) {
    let ws = s
        .ws_as(&format!("/api/terminals/{id}/ws"), user_agent)
        .await;
    attached(ws).await
}

async fn attached(mut ws: Ws) -> (Ws, Value) {
    let msg = next(&mut ws).await;
    let v: Value = serde_json::from_str(msg.to_text().expect("attached is text")).expect("json");
    assert_eq!(v["type"], "attached", "first message: {v}");
    (ws, v)
}

/// The next message, within [`WAIT`].
pub async fn next(ws: &mut Ws) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("websocket message in time")
        .expect("websocket open")
        .expect("websocket message")
}

/// What a viewer has seen: output bytes and JSON messages, in arrival order.
#[derive(Default)]
pub struct Seen {
    pub bytes: Vec<u8>,
    pub json: Vec<Value>,
    pub close: Option<u16>,
}

impl Seen {
    pub fn has_json(&self, kind: &str) -> bool {
        self.json.iter().any(|v| v["type"] == kind)
    }
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.bytes.windows(needle.len()).any(|w| w == needle)
    }
    /// How many times `needle` occurs in the output (overlaps counted).
    pub fn count(&self, needle: &[u8]) -> usize {
        self.bytes
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }
}

/// Reads until `done` accepts what was seen (or the socket closes), within [`WAIT`].
pub async fn read_until(ws: &mut Ws, seen: &mut Seen, mut done: impl FnMut(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(seen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "condition not met in time; seen {} bytes, json {:?}, tail {:?}",
                    seen.bytes.len(),
                    seen.json,
                    String::from_utf8_lossy(&seen.bytes[seen.bytes.len().saturating_sub(200)..])
                )
            });
        match msg {
            Some(Ok(Message::Binary(b))) => seen.bytes.extend_from_slice(&b),
            Some(Ok(Message::Text(t))) => seen
                .json
                .push(serde_json::from_str(t.as_str()).expect("json text")),
            Some(Ok(Message::Close(frame))) => {
                seen.close = Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}

/// Reads until the output contains `needle`.
pub async fn read_until_output(ws: &mut Ws, seen: &mut Seen, needle: &str) {
    read_until(ws, seen, |s| s.contains(needle.as_bytes())).await;
    assert!(seen.contains(needle.as_bytes()), "never saw {needle:?}");
}

pub async fn send_input(ws: &mut Ws, bytes: &[u8]) {
    ws.send(Message::binary(bytes.to_vec()))
        .await
        .expect("send input");
}

pub async fn send_json(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string()))
        .await
        .expect("send json");
}

/// Waits for the socket to close and returns its close code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    let mut seen = Seen::default();
    read_until(ws, &mut seen, |s| s.close.is_some()).await;
    seen.close.expect("closed")
}

pub fn code(c: CloseCode) -> u16 {
    u16::from(c)
}

/// A subscription to `/api/events`; take it before the thing you wait for can happen.
pub async fn events(s: &TestServer) -> Ws {
    s.ws("/api/events").await
}

/// The next event of `kind` whose data matches `pred`.
pub async fn wait_event(ws: &mut Ws, kind: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .expect("events open")
            .expect("events message");
        let Ok(text) = msg.to_text() else { continue };
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if v["type"] == kind && pred(&v["data"]) {
            return v["data"].clone();
        }
    }
}

/// Waits for `session.exited` of `id`.
pub async fn wait_exited(ev: &mut Ws, id: &str) -> Value {
    wait_event(ev, "session.exited", |d| d["id"] == id).await
}

/// Creates the agent `def` (which must succeed), runs its session to a clean exit (0), and
/// returns the output tail its execution recorded: for CLIs asked only to print something.
pub async fn agent_session_output(s: &TestServer, def: Value) -> String {
    let r = s.post("/api/agents", def).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut ev = events(s).await;
    let session = s
        .post(&format!("/api/agents/{}/session", r.body["id"]), json!({}))
        .await;
    assert_eq!(session.status, 201, "{}", session.text);
    let exited = wait_exited(&mut ev, session.body["id"].as_str().unwrap()).await;
    assert_eq!(exited["code"], 0, "{exited}");
    let exec = s
        .get(&format!("/api/executions/{}", session.body["execution_id"]))
        .await;
    exec.body["output_tail"].as_str().unwrap_or("").to_string()
}
