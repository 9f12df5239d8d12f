//! A client that breaks the WebSocket protocol is told why, with the RFC 6455 close code:
//! 1009 too big, 1002 protocol error, 1007 invalid UTF-8 — on the event stream and on a
//! terminal viewer alike. Frames are written byte for byte, as a hostile client would.

mod common;
use common::{term, TestServer, WAIT};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

/// A client frame with the given first byte (FIN, RSV, opcode), masked unless told otherwise.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first, if masked { 0x80 } else { 0 } | payload.len() as u8];
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// The header of a masked binary frame announcing `len` bytes (none of which are sent).
fn huge_frame_header(len: u64) -> Vec<u8> {
    let mut out = vec![0x82, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MASK);
    out
}

/// Opens `path` as a WebSocket by hand and returns the socket after the 101.
async fn handshake(s: &TestServer, path: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        s.addr,
        s.token.as_deref().unwrap()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(WAIT, tcp.read_exact(&mut byte))
            .await
            .expect("handshake in time")
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// Reads server frames until a close frame; returns its code (0 when it carries none).
async fn close_code(tcp: &mut TcpStream) -> u16 {
    tokio::time::timeout(WAIT, async {
        loop {
            let mut h = [0u8; 2];
            tcp.read_exact(&mut h)
                .await
                .expect("a close frame before EOF");
            let len = match h[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    tcp.read_exact(&mut b).await.unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    tcp.read_exact(&mut b).await.unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; len];
            tcp.read_exact(&mut payload).await.unwrap();
            if h[0] & 0x0f == 0x8 {
                return if len >= 2 {
                    u16::from_be_bytes([payload[0], payload[1]])
                } else {
                    0
                };
            }
        }
    })
    .await
    .expect("close frame in time")
}

async fn code_after(s: &TestServer, path: &str, bytes: Vec<u8>) -> u16 {
    let mut tcp = handshake(s, path).await;
    tcp.write_all(&bytes).await.unwrap();
    close_code(&mut tcp).await
}

#[tokio::test]
async fn protocol_errors_close_the_event_stream_with_rfc_6455_codes() {
    let s = TestServer::start().await;
    let cases = [
        (frame(0x81, b"hi", false), 1002, "unmasked frame"),
        (frame(0xC1, b"hi", true), 1002, "RSV1 without an extension"),
        (frame(0x83, b"hi", true), 1002, "reserved opcode"),
        (
            frame(0x81, &[0xff, 0xfe, 0xfd], true),
            1007,
            "invalid UTF-8 text",
        ),
        (huge_frame_header(10_000_000), 1009, "frame over the cap"),
    ];
    for (bytes, want, what) in cases {
        assert_eq!(code_after(&s, "/api/events", bytes).await, want, "{what}");
    }
    s.stop().await;
}

#[tokio::test]
async fn protocol_errors_close_a_terminal_viewer_with_rfc_6455_codes() {
    let s = TestServer::start().await;
    let t = term::create(&s, term::sh("sleep 60")).await;
    let path = format!("/api/terminals/{}/ws", t["id"].as_str().unwrap());
    let cases = [
        (frame(0x81, &[0xc3, 0x28], true), 1007, "invalid UTF-8 text"),
        (huge_frame_header(100_000_000), 1009, "frame over the cap"),
        (frame(0x82, b"x", false), 1002, "unmasked frame"),
    ];
    for (bytes, want, what) in cases {
        assert_eq!(code_after(&s, &path, bytes).await, want, "{what}");
    }
    s.stop().await;
}
