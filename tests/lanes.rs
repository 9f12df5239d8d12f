//! Session lanes (`src/actors/lanes.rs`): a session's byte path runs on a thread of its own, and
//! a viewer's socket moves there after it attaches. What a user relies on: typing and output
//! work the same on a lane and without lanes, and nothing a client sent is lost in the move.

mod common;
use common::term::*;
use common::{TestServer, Ws};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::MaybeTlsStream;

const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Types `text` and waits for `cat` to send it back: once from the tty's echo, once from cat.
async fn round_trip(ws: &mut Ws, seen: &mut Seen, text: &str) {
    send_input(ws, format!("{text}\n").as_bytes()).await;
    read_until(ws, seen, |s| {
        s.bytes
            .windows(text.len())
            .filter(|w| *w == text.as_bytes())
            .count()
            >= 2
    })
    .await;
}

#[tokio::test]
async fn sessions_on_lanes_and_without_lanes_echo_alike() {
    for threads in [0, 1, 2] {
        let s = TestServer::start_with(|c| c.session_threads = threads).await;
        // More sessions than lanes: some share one.
        let mut viewers = Vec::new();
        for n in 0..3 {
            let t = create(&s, json!({"command": ["cat"]})).await;
            let (ws, _) = attach(&s, t["id"].as_str().unwrap(), "").await;
            viewers.push((n, ws, Seen::default()));
        }
        for (n, ws, seen) in &mut viewers {
            round_trip(ws, seen, &format!("lane check {threads} {n}")).await;
        }
        s.stop().await;
    }
}

/// A client that sends its first frame right behind the upgrade request, without waiting for
/// the 101: hyper has read those bytes already when the socket moves to the session's lane, and
/// they must still arrive.
#[tokio::test]
async fn input_sent_before_the_upgrade_is_answered_is_not_lost() {
    let s = TestServer::start().await;
    let t = create(&s, json!({"command": ["cat"]})).await;
    let id = t["id"].as_str().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let auth = match &s.token {
        Some(t) => format!("Authorization: Bearer {t}\r\n"),
        None => String::new(),
    };
    let mut request = format!(
        "GET /api/terminals/{id}/ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n",
        s.addr
    )
    .into_bytes();
    // One masked binary frame (RFC 6455 §5.2), in the same write as the request.
    let typed = b"typed before the answer\n";
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    request.extend_from_slice(&[0x82, 0x80 | typed.len() as u8]);
    request.extend_from_slice(&mask);
    request.extend(typed.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&request).await.unwrap();

    // The 101's head, then whatever came after it is the WebSocket's.
    let mut head = Vec::new();
    let rest = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "the server closed before answering");
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                return head.split_off(end + 4);
            }
        }
    })
    .await
    .expect("the 101 in time");
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut ws = tokio_tungstenite::WebSocketStream::from_partially_read(
        MaybeTlsStream::Plain(tcp),
        rest,
        Role::Client,
        None,
    )
    .await;
    // Once from the tty's echo, once from cat.
    let line = &typed[..typed.len() - 1];
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.count(line) >= 2).await;
    // And the socket works on from there.
    round_trip(&mut ws, &mut seen, "typed after the answer").await;
    s.stop().await;
}
