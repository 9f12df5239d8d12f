//! The terminal WebSocket protocol against a real server, real PTYs and a real WS client:
//! round trips, binary safety, resize, exact resume, replay, many viewers, flow control.

mod common;
use common::term::*;
use common::TestServer;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// `seq 1 n` as the terminal shows it (the tty turns "\n" into "\r\n").
fn seq_output(from: u64, to: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in from..=to {
        out.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    out
}

#[tokio::test]
async fn echo_round_trip() {
    let s = TestServer::start().await;
    let t = create(&s, json!({"command": ["cat"]})).await;
    let id = t["id"].as_str().unwrap();
    assert_eq!(t["ws"], format!("/api/terminals/{id}/ws"));
    let (mut ws, hello) = attach(&s, id, "").await;
    assert_eq!(hello["session"], id);
    assert_eq!(
        (hello["cols"].as_u64(), hello["rows"].as_u64()),
        (Some(80), Some(24))
    );
    send_input(&mut ws, b"hello terminal\n").await;
    let mut seen = Seen::default();
    // Once from the tty's echo, once from cat.
    read_until(&mut ws, &mut seen, |s| {
        s.bytes
            .windows(14)
            .filter(|w| w == b"hello terminal")
            .count()
            == 2
    })
    .await;
    send_json(&mut ws, json!({"type": "ping"})).await;
    read_until(&mut ws, &mut seen, |s| s.has_json("pong")).await;
    s.stop().await;
}

#[tokio::test]
async fn all_byte_values_and_split_utf8_pass_intact() {
    let s = TestServer::start().await;
    let t = create(&s, sh("stty raw -echo; printf READY; exec cat")).await;
    let (mut ws, _) = attach(&s, t["id"].as_str().unwrap(), "").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "READY").await;
    let start = seen.bytes.len();
    let all: Vec<u8> = (0..=255u8).collect();
    send_input(&mut ws, &all).await;
    read_until(&mut ws, &mut seen, |s| s.bytes.len() >= start + 256).await;
    assert_eq!(&seen.bytes[start..], &all[..]);

    // Multi-byte characters sent one byte per frame come back whole.
    let text = "héllo ✓ 🎉 日本語";
    let start = seen.bytes.len();
    for b in text.as_bytes() {
        send_input(&mut ws, &[*b]).await;
    }
    read_until(&mut ws, &mut seen, |s| s.bytes.len() >= start + text.len()).await;
    assert_eq!(std::str::from_utf8(&seen.bytes[start..]).unwrap(), text);
    s.stop().await;
}

#[tokio::test]
async fn resize_reaches_the_pty_and_other_viewers() {
    let s = TestServer::start().await;
    let t = create(&s, sh("printf READY; read x; stty size; exec cat")).await;
    let id = t["id"].as_str().unwrap();
    let (mut a, _) = attach(&s, id, "").await;
    let (mut b, _) = attach(&s, id, "").await;
    let mut seen_a = Seen::default();
    read_until_output(&mut a, &mut seen_a, "READY").await;
    send_json(&mut a, json!({"type": "resize", "cols": 123, "rows": 45})).await;
    // The other viewer hears of it once the PTY has the new size.
    let mut seen_b = Seen::default();
    read_until(&mut b, &mut seen_b, |s| s.has_json("resize")).await;
    let resize = seen_b.json.iter().find(|v| v["type"] == "resize").unwrap();
    assert_eq!(
        (resize["cols"].as_u64(), resize["rows"].as_u64()),
        (Some(123), Some(45))
    );
    send_input(&mut a, b"\n").await;
    read_until_output(&mut a, &mut seen_a, "45 123").await;
    let info = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(
        (info.body["cols"].as_u64(), info.body["rows"].as_u64()),
        (Some(123), Some(45))
    );
    s.stop().await;
}

#[tokio::test]
async fn since_resumes_exactly_across_reconnects_during_a_flood() {
    let s = TestServer::start_with(|c| c.scrollback_bytes = 64 * 1024 * 1024).await;
    let n = 1_000_000;
    let expected = seq_output(1, n);
    let t = create(&s, json!({"command": ["seq", "1", n.to_string()]})).await;
    let id = t["id"].as_str().unwrap();
    let mut got: Vec<u8> = Vec::new();
    for round in 0..20 {
        let (mut ws, hello) = attach(&s, id, &format!("?since={}", got.len())).await;
        assert_eq!(
            hello["offset"].as_u64(),
            Some(got.len() as u64),
            "round {round}"
        );
        assert_eq!(hello["truncated"], false);
        let mut seen = Seen::default();
        let want = got.len() + 1;
        read_until(&mut ws, &mut seen, |s| got.len() + s.bytes.len() >= want).await;
        got.extend_from_slice(&seen.bytes);
        drop(ws);
    }
    let (mut ws, _) = attach(&s, id, &format!("?since={}", got.len())).await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    got.extend_from_slice(&seen.bytes);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "resumed stream differs from seq output");
    s.stop().await;
}

/// A `since` that left the ring gets the screen (a snapshot), not a stream cut mid-screen.
#[tokio::test]
async fn replay_after_the_ring_wrapped_is_truncated() {
    let s = TestServer::start_with(|c| c.scrollback_bytes = 4096).await;
    let mut ev = events(&s).await;
    let t = create(&s, json!({"command": ["seq", "1", "20000"]})).await;
    let id = t["id"].as_str().unwrap();
    wait_exited(&mut ev, id).await;
    let (mut ws, hello) = attach(&s, id, "?since=0").await;
    assert_eq!(hello["truncated"], true);
    let end = hello["end"].as_u64().unwrap();
    assert_eq!(end, seq_output(1, 20000).len() as u64);
    assert_eq!(
        hello["offset"].as_u64(),
        Some(end),
        "the screen has parsed it all"
    );
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    let snapshot = seen.json.iter().find(|v| v["type"] == "snapshot").unwrap();
    assert_eq!(snapshot["offset"].as_u64(), Some(end));
    assert!(seen.contains(b"19999") && seen.contains(b"20000"));
    // Without `since` as well: the screen, then live output from its offset.
    let (mut ws, hello) = attach(&s, id, "").await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    assert_eq!(hello["truncated"], false);
    assert!(seen.has_json("snapshot") && seen.contains(b"20000"));
    s.stop().await;
}

/// 20 MB, 20 times the default ring. (The 50 MB takes ~10 s here, bound by the kernel's
/// own output processing of "y\n" in the tty layer, which would crowd the 20 s wait in CI.)
#[tokio::test]
async fn detached_flood_finishes_and_its_tail_is_replayed() {
    let s = TestServer::start().await;
    let mut ev = events(&s).await;
    let t = create(&s, sh("yes | head -c 20000000; echo; echo FLOOD-DONE")).await;
    let id = t["id"].as_str().unwrap();
    let exited = wait_exited(&mut ev, id).await;
    assert_eq!(exited["status"], "succeeded");
    let (mut ws, hello) = attach(&s, id, "").await;
    assert!(hello["end"].as_u64().unwrap() > 20_000_000);
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    assert!(seen.contains(b"FLOOD-DONE"));
    let exec = s
        .get(&format!("/api/executions/{}", t["execution_id"]))
        .await;
    assert!(
        exec.body["bytes_out"].as_i64().unwrap() > 20_000_000,
        "{}",
        exec.text
    );
    s.stop().await;
}

#[tokio::test]
async fn two_writers_and_a_read_only_viewer_share_the_session() {
    let s = TestServer::start().await;
    let t = create(&s, sh("stty -echo; printf READY; exec cat")).await;
    let id = t["id"].as_str().unwrap();
    let (mut a, _) = attach(&s, id, "?mode=rw").await;
    let (mut b, _) = attach(&s, id, "").await;
    let (mut ro, _) = attach(&s, id, "?mode=ro").await;
    let mut seen_a = Seen::default();
    read_until_output(&mut a, &mut seen_a, "READY").await;
    send_input(&mut a, b"from-a\n").await;
    send_input(&mut b, b"from-b\n").await;
    send_input(&mut ro, b"from-ro\n").await;
    send_json(&mut ro, json!({"type": "resize", "cols": 10, "rows": 10})).await;
    for ws in [&mut a, &mut b] {
        let mut seen = Seen::default();
        read_until(ws, &mut seen, |s| {
            s.contains(b"from-a") && s.contains(b"from-b")
        })
        .await;
    }
    let mut seen_ro = Seen::default();
    read_until(&mut ro, &mut seen_ro, |s| {
        s.contains(b"from-a")
            && s.contains(b"from-b")
            && s.json.iter().filter(|v| v["type"] == "error").count() == 2
    })
    .await;
    assert!(seen_ro
        .json
        .iter()
        .all(|v| v["type"] != "error" || v["code"] == "read_only"));
    // ro input never reached the PTY (a later marker proves the earlier input was processed).
    send_input(&mut a, b"marker\n").await;
    read_until_output(&mut a, &mut seen_a, "marker").await;
    assert!(!seen_a.contains(b"from-ro"));
    let info = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(info.body["viewers"], 3);
    assert_eq!(info.body["cols"], 80);
    s.stop().await;
}

/// Lines of the flood in [`stalled_flood`]: ~6.9 MB, a hundred times a viewer's 64 KiB queue.
const FLOOD_LINES: u64 = 1_000_000;

/// A session that printed `seq 1 FLOOD_LINES` and `END` once a line was typed (then waits), on a
/// server whose ring holds the whole flood, with two viewers: one that has not read anything
/// (its small queue overflowed for certain) and one that typed the line and read to `END`; its
/// bytes are `seen`, the flood's from `start`.
struct StalledFlood {
    s: TestServer,
    stalled: common::Ws,
    good: common::Ws,
    seen: Seen,
    start: usize,
}

async fn stalled_flood() -> StalledFlood {
    // The ring holds the whole flood, so a reader that is merely slower than `seq` for a moment
    // catches up from it; the stalled viewer overflows its small queue for certain.
    let s = TestServer::start_with(|c| {
        c.scrollback_bytes = 64 * 1024 * 1024;
        c.viewer_queue_bytes = 64 * 1024;
    })
    .await;
    let script = format!("stty -echo; printf READY; read x; seq 1 {FLOOD_LINES}; echo END; read y");
    let t = create(&s, sh(&script)).await;
    let id = t["id"].as_str().unwrap();
    let (stalled, _) = attach(&s, id, "").await;
    let (mut good, _) = attach(&s, id, "").await;
    let mut seen = Seen::default();
    read_until_output(&mut good, &mut seen, "READY").await;
    let start = seen.bytes.len();
    send_input(&mut good, b"\n").await;
    read_until(&mut good, &mut seen, |s| s.bytes.ends_with(b"END\r\n")).await;
    StalledFlood {
        s,
        stalled,
        good,
        seen,
        start,
    }
}

#[tokio::test]
async fn a_stalled_viewer_never_slows_the_others() {
    let mut f = stalled_flood().await;
    let mut expected = seq_output(1, FLOOD_LINES);
    expected.extend_from_slice(b"END\r\n");
    assert_eq!(f.seen.close, None);
    assert!(
        f.seen.bytes[f.start..] == expected[..],
        "the reading viewer lost or repeated bytes"
    );
    // The stalled one, once it reads, catches up from the ring and is not cut.
    let mut slow = Seen::default();
    read_until(&mut f.stalled, &mut slow, |s| {
        s.has_json("resync") || s.close.is_some()
    })
    .await;
    assert!(slow.has_json("resync"), "{:?}", slow.json);
    assert_eq!(slow.close, None);
    f.s.stop().await;
}

/// A viewer that reads holds the session back instead of losing bytes (flow control): a flood
/// forty times the ring and far larger than its queue reaches it whole, as raw bytes, without
/// falling out of the ring (no snapshot after the first attach's).
#[tokio::test]
async fn a_reading_viewer_gets_every_byte_of_a_flood_larger_than_the_ring() {
    let s = TestServer::start_with(|c| {
        c.scrollback_bytes = 64 * 1024;
        c.viewer_queue_bytes = 16 * 1024;
    })
    .await;
    let n = 400_000; // ~2.7 MB
    let t = create(
        &s,
        sh(&format!(
            "stty -echo; printf READY; read x; seq 1 {n}; echo END"
        )),
    )
    .await;
    let (mut ws, _) = attach(&s, t["id"].as_str().unwrap(), "").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "READY").await;
    let start = seen.bytes.len();
    send_input(&mut ws, b"\n").await;
    read_until(&mut ws, &mut seen, |s| s.bytes.ends_with(b"END\r\n")).await;
    let mut expected = seq_output(1, n);
    expected.extend_from_slice(b"END\r\n");
    // One snapshot, the first attach's; a resync from the ring (raw bytes) may happen when a
    // read overshoots the small queue, but the viewer never falls out of the ring.
    let snapshots = seen.json.iter().filter(|v| v["type"] == "snapshot").count();
    assert_eq!(
        snapshots, 1,
        "the reading viewer lost its place: {:?}",
        seen.json
    );
    assert!(
        seen.bytes[start..] == expected[..],
        "the reading viewer lost or repeated bytes"
    );
    s.stop().await;
}

/// Input the terminal does not take at once is queued and written in order after what went
/// straight through: a paste far larger than the tty's input buffer, sent in many frames,
/// comes back byte for byte.
#[tokio::test]
async fn a_large_paste_arrives_whole_and_in_order() {
    let s = TestServer::start().await;
    let t = create(&s, sh("stty raw -echo; printf READY; exec cat")).await;
    let (mut ws, _) = attach(&s, t["id"].as_str().unwrap(), "").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "READY").await;
    let start = seen.bytes.len();
    // Numbered lines: a chunk out of place shows.
    let paste: Vec<u8> = (0..32 * 1024)
        .flat_map(|i| format!("{i:07}\n").into_bytes())
        .collect();
    for chunk in paste.chunks(8 * 1024) {
        send_input(&mut ws, chunk).await;
    }
    read_until(&mut ws, &mut seen, |s| s.bytes.len() >= start + paste.len()).await;
    assert!(
        seen.bytes[start..] == paste[..],
        "the paste came back altered or out of order"
    );
    s.stop().await;
}

#[tokio::test]
async fn viewers_see_exit_and_can_still_read() {
    let s = TestServer::start().await;
    let t = create(&s, sh("printf READY; read x; echo bye; exit 7")).await;
    let id = t["id"].as_str().unwrap();
    let (mut ws, _) = attach(&s, id, "").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "READY").await;
    send_input(&mut ws, b"\n").await;
    read_until(&mut ws, &mut seen, |s| s.has_json("exit")).await;
    assert!(seen.contains(b"bye"));
    let exit = seen.json.iter().find(|v| v["type"] == "exit").unwrap();
    assert_eq!(exit["code"], 7);
    assert!(exit["signal"].is_null());
    // Still attached; a new viewer gets the replay and the exit too.
    let (mut late, _) = attach(&s, id, "?since=0").await;
    let mut seen_late = Seen::default();
    read_until(&mut late, &mut seen_late, |s| s.has_json("exit")).await;
    assert!(seen_late.contains(b"READY") && seen_late.contains(b"bye"));
    s.stop().await;
}

/// A viewer that fell behind by more than the ring is not closed: it gets the screen (a
/// snapshot) and goes on from there (only a viewer that stops reading for good is cut, 4008).
#[tokio::test]
async fn a_stalled_viewer_whose_offset_left_the_ring_gets_a_snapshot() {
    let s = TestServer::start_with(|c| {
        c.scrollback_bytes = 64 * 1024;
        c.viewer_queue_bytes = 16 * 1024;
    })
    .await;
    let mut ev = events(&s).await;
    let t = create(&s, sh("stty -echo; printf READY; read x; seq 1 3000000")).await;
    let id = t["id"].as_str().unwrap();
    let (mut stalled, _) = attach(&s, id, "").await;
    let (mut starter, _) = attach(&s, id, "?since=0").await;
    let mut seen = Seen::default();
    read_until_output(&mut starter, &mut seen, "READY").await;
    drop(starter);
    // Typed through a second socket so the stalled one never reads before the flood is over.
    let (mut typer, _) = attach(&s, id, "?mode=rw").await;
    send_input(&mut typer, b"\n").await;
    drop(typer);
    wait_exited(&mut ev, id).await;
    let mut slow = Seen::default();
    read_until(&mut stalled, &mut slow, |s| s.has_json("exit")).await;
    assert!(slow.has_json("snapshot"), "{:?}", slow.json);
    assert!(slow.contains(b"3000000"));
    assert_eq!(slow.close, None);
    s.stop().await;
}

#[tokio::test]
async fn shutdown_closes_viewers_with_1001_and_oversized_frames_are_refused() {
    let s = TestServer::start().await;
    let t = create(&s, json!({"command": ["cat"]})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let (mut big, _) = attach(&s, &id, "").await;
    // Client frames are capped at 64 KiB: the server drops the connection.
    let _ = futures_util::SinkExt::send(
        &mut big,
        tokio_tungstenite::tungstenite::Message::binary(vec![b'a'; 65 * 1024]),
    )
    .await;
    let mut seen = Seen::default();
    read_until(&mut big, &mut seen, |_| false).await;
    assert!(
        !seen.contains(&[b'a'; 1024]),
        "the oversized frame reached the PTY"
    );

    let (mut ws, _) = attach(&s, &id, "").await;
    let stop = tokio::spawn(s.stop());
    assert_eq!(close_code(&mut ws).await, 1001);
    stop.await.unwrap();
}

/// Prints `READY`, then the PTY's size (`size ROWS COLS`) for each line typed.
const SAYS_ITS_SIZE: &str =
    "stty -echo; printf READY; while read l; do echo \"size $(stty size)\"; done";

/// A server and a session that says its size ([`SAYS_ITS_SIZE`]).
async fn size_session() -> (TestServer, String) {
    let s = TestServer::start().await;
    let t = create(&s, sh(SAYS_ITS_SIZE)).await;
    let id = t["id"].as_str().unwrap().to_string();
    (s, id)
}

/// One size per session: it follows the read-write viewer that last typed or resized; a viewer
/// that only tells its size (`take: false`, as a second browser does on attach) changes nothing
/// until it types. Every viewer is told the new size and whose it is.
#[tokio::test]
async fn the_size_follows_the_last_viewer_to_type_or_resize() {
    let (s, id) = size_session().await;
    let id = id.as_str();
    let (mut desk, hello_desk) = attach(&s, id, "").await;
    let desk_id = hello_desk["viewer"].as_u64().unwrap();
    let mut seen_desk = Seen::default();
    read_until_output(&mut desk, &mut seen_desk, "READY").await;
    send_json(
        &mut desk,
        json!({"type": "resize", "cols": 120, "rows": 40}),
    )
    .await;
    read_until(&mut desk, &mut seen_desk, |s| s.has_json("resize")).await;

    let (mut phone, hello_phone) = attach(&s, id, "").await;
    let phone_id = hello_phone["viewer"].as_u64().unwrap();
    assert_eq!(hello_phone["size_by"].as_u64(), Some(desk_id));
    // The holder's device, from its User-Agent (this client sends none).
    assert_eq!(hello_phone["size_by_client"], "another client");
    assert_eq!(
        (hello_phone["cols"].as_u64(), hello_phone["rows"].as_u64()),
        (Some(120), Some(40))
    );
    // The phone tells its size without taking it: the desktop keeps 120×40.
    send_json(
        &mut phone,
        json!({"type": "resize", "cols": 49, "rows": 30, "take": false}),
    )
    .await;
    send_input(&mut desk, b"\n").await;
    read_until_output(&mut desk, &mut seen_desk, "size 40 120").await;

    // The phone types: the session takes its size, and both are told whose it is.
    send_input(&mut phone, b"\n").await;
    let mut seen_phone = Seen::default();
    read_until_output(&mut phone, &mut seen_phone, "size 30 49").await;
    let by_phone = |s: &Seen| {
        s.json.iter().any(|v| {
            v["type"] == "resize"
                && v["by"].as_u64() == Some(phone_id)
                && v["by_client"] == "another client"
                && v["cols"] == 49
        })
    };
    read_until(&mut desk, &mut seen_desk, by_phone).await;
    assert!(by_phone(&seen_desk));

    // The desktop types again: back to its size (the one it last asked for). The desktop saw
    // this line once already, before the phone typed: wait for the second one.
    send_input(&mut desk, b"\n").await;
    let twice = |s: &Seen| s.count(b"size 40 120") >= 2;
    read_until(&mut desk, &mut seen_desk, twice).await;
    assert!(twice(&seen_desk), "the desktop's size again");
    let info = s.get(&format!("/api/terminals/{id}")).await;
    assert_eq!(
        (info.body["cols"].as_u64(), info.body["rows"].as_u64()),
        (Some(120), Some(40))
    );
    s.stop().await;
}

const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

/// The size holder's page reloads (its socket closes, a new one attaches): a phone attaching in
/// between does not take the size by attaching — it is told whose it is — and the holder's
/// device holds it again when it comes back.
#[tokio::test]
async fn a_holder_that_left_keeps_the_size_from_a_phone_that_only_attaches() {
    let (s, id) = size_session().await;
    let id = id.as_str();
    let viewers_gone = || async {
        let info = s.get(&format!("/api/terminals/{id}")).await;
        (info.body["viewers"] == 0).then_some(info.body)
    };
    let (mut desk, _) = attach_as(&s, id, DESKTOP).await;
    let mut seen = Seen::default();
    read_until_output(&mut desk, &mut seen, "READY").await;
    send_json(
        &mut desk,
        json!({"type": "resize", "cols": 120, "rows": 40, "take": true}),
    )
    .await;
    read_until(&mut desk, &mut seen, |s| s.has_json("resize")).await;
    drop(desk);
    common::eventually("the desktop's viewer gone", viewers_gone).await;

    // A phone attaches and tells its size, as the web UI does when another device holds it.
    let (mut phone, hello) = attach_as(&s, id, PHONE).await;
    assert_eq!(hello["size_by"], serde_json::Value::Null, "{hello}");
    assert_eq!(hello["size_by_client"], "Chrome on Linux", "{hello}");
    send_json(
        &mut phone,
        json!({"type": "resize", "cols": 49, "rows": 30, "take": false}),
    )
    .await;
    // Its resize is handled before its detach (one socket's messages reach the session in order).
    drop(phone);
    let info = common::eventually("the phone's viewer gone", viewers_gone).await;
    assert_eq!(
        (&info["cols"], &info["rows"]),
        (&json!(120), &json!(40)),
        "{info}"
    );

    // The desktop's page is back: it holds the size again.
    let (mut desk, hello) = attach_as(&s, id, DESKTOP).await;
    assert_eq!(hello["size_by"], hello["viewer"], "{hello}");
    assert_eq!(hello["size_by_client"], "Chrome on Linux", "{hello}");
    send_input(&mut desk, b"\n").await;
    let mut seen = Seen::default();
    read_until_output(&mut desk, &mut seen, "size 40 120").await;
    s.stop().await;
}

/// A viewer that lagged while the size changed is told the session's size once it has caught
/// up: the `resize` it missed is not lost with the bytes it was not queued.
#[tokio::test]
async fn a_viewer_that_lagged_through_a_resize_is_told_the_size_after_catching_up() {
    let mut f = stalled_flood().await;
    send_json(
        &mut f.good,
        json!({"type": "resize", "cols": 100, "rows": 30, "take": true}),
    )
    .await;
    read_until(&mut f.good, &mut f.seen, |s| s.has_json("resize")).await;

    let told = |s: &Seen| {
        s.json
            .iter()
            .any(|v| v["type"] == "resize" && v["cols"] == 100 && v["rows"] == 30)
    };
    let mut slow = Seen::default();
    read_until(&mut f.stalled, &mut slow, |s| told(s) || s.close.is_some()).await;
    assert!(slow.has_json("resync"), "it lagged: {:?}", slow.json);
    assert!(told(&slow), "{:?}", slow.json);
    assert!(slow.contains(b"END\r\n"));
    f.s.stop().await;
}

/// A reattach with `since` replays raw bytes printed at more than one size: each `resize` is
/// told among them where it happened, so a view draws every byte at the size it was printed at.
#[tokio::test]
async fn a_replay_tells_each_resize_where_it_happened() {
    let (s, id) = size_session().await;
    let id = id.as_str();
    let (mut away, _) = attach(&s, id, "?since=0").await;
    let mut seen = Seen::default();
    read_until_output(&mut away, &mut seen, "READY").await;
    let since = seen.bytes.len();
    drop(away);

    // Meanwhile another viewer prints a line at 80×24, resizes, and prints one at 100×30.
    let (mut other, _) = attach(&s, id, "?since=0").await;
    let mut seen = Seen::default();
    send_input(&mut other, b"\n").await;
    read_until_output(&mut other, &mut seen, "size 24 80").await;
    send_json(
        &mut other,
        json!({"type": "resize", "cols": 100, "rows": 30, "take": true}),
    )
    .await;
    // Typing took the size first (told as 80×24): wait for the new one.
    let resized = |s: &Seen| {
        s.json
            .iter()
            .any(|v| v["type"] == "resize" && v["cols"] == 100)
    };
    read_until(&mut other, &mut seen, resized).await;
    send_input(&mut other, b"\n").await;
    read_until_output(&mut other, &mut seen, "size 30 100").await;

    // Back: the frames in order, text as its type and size, output as its text.
    let (mut back, hello) = attach(&s, id, &format!("?since={since}")).await;
    assert_eq!((&hello["cols"], &hello["rows"]), (&json!(100), &json!(30)));
    let mut order = Vec::new();
    while !order.iter().any(|f: &String| f.contains("size 30 100")) {
        match next(&mut back).await {
            Message::Text(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                order.push(format!("{} {}x{}", v["type"], v["cols"], v["rows"]));
            }
            Message::Binary(bytes) => order.push(String::from_utf8_lossy(&bytes).into_owned()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let at = |needle: &str| order.iter().position(|f| f.contains(needle));
    let (first, old, second, new) = (
        at("\"resize\" 80x24"),
        at("size 24 80"),
        at("\"resize\" 100x30"),
        at("size 30 100"),
    );
    assert!(
        first < old && old < second && second < new && first.is_some(),
        "{order:?}"
    );
    s.stop().await;
}
