//! The server-side screen (DESIGN "Terminal screen on the server") against a real server, real
//! PTYs and an independent emulator (pyte, installed by scripts/test into its venv): what a fresh
//! terminal shows from a snapshot and the bytes after it equals what it shows from the whole
//! stream, cell by cell with attributes.

mod common;
use common::term::*;
use common::TestServer;
use serde_json::{json, Value};

const COLS: u64 = 40;
const ROWS: u64 = 10;

/// Renders each stream with pyte on a fresh COLS × ROWS terminal.
fn pyte_screens(streams: &[&[u8]]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pyte_screen.py").to_string(),
        COLS.to_string(),
        ROWS.to_string(),
    ];
    for (i, stream) in streams.iter().enumerate() {
        let path = dir.path().join(format!("{i}.bin"));
        std::fs::write(&path, stream).unwrap();
        args.push(path.to_string_lossy().into_owned());
    }
    let out = std::process::Command::new("python3")
        .args(&args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyte failed (scripts/test installs it into target/test-tools/venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A full-screen program: scrollback and a shell line under it, then in the alternate screen
/// colours (16, 256, RGB, bold, reverse), wide characters (CJK, emoji), DEC line drawing, a
/// scrolling region with origin mode. At READY a late viewer attaches (its snapshot is taken in
/// the middle of that, the line-drawing set still designated); after a keypress, more output
/// that draws lines and scrolls inside the region relative to its top, so what follows a snapshot
/// must land where the whole stream puts it; after another, the program leaves the alternate
/// screen (vim's `:q`) and the shell's screen must be back.
const PROGRAM: &str = r#"stty -echo
i=0; while [ $i -lt 30 ]; do printf 'history line %s\n' $i; i=$((i+1)); done
printf '\033[33mshell$\033[0m vim'
printf '\033[?1049h\033[H\033[2J\033[?2004h\033[?1h\033[?1000h\033[?1006h'
printf '\033[1;31mTitle\033[0m \033[38;5;196m256\033[0m \033[38;2;10;200;30mrgb\033[0m 日本語 🎉 wide\n'
printf '\033(0lqqqk\033(B box \033(0x\033(B\n'
printf '\033[10;1H\033[44mstatus bar\033[0m'
printf '\033[3;8r\033[?6h\033[1;1H'
i=0; while [ $i -lt 9 ]; do printf '\033[7mrow %s\033[0m 漢字 %s\n' $i $i; i=$((i+1)); done
printf '\033[3;5H\033(0'
printf READY; read x
printf 'qqq\033(B\033[6;1H'
i=0; while [ $i -lt 4 ]; do printf '\n\033[32mafter %s 表\033[0m' $i; i=$((i+1)); done
printf '\033[?6l\033[2;20HDONE'
read y
printf '\033[?1049l\r\nback at the shell, BYE'
read z"#;

/// A session running `sh -c SCRIPT` at COLS × ROWS.
async fn session(s: &TestServer, script: &str) -> Value {
    create(
        s,
        json!({"command": ["sh", "-c", script], "cols": COLS, "rows": ROWS}),
    )
    .await
}

/// Asserts that pyte shows the same screen, cell by cell, from the whole stream and from the
/// snapshot and what followed it.
fn assert_same_screen(all: &[u8], snap: &[u8], expect: &str) {
    let screens = pyte_screens(&[all, snap]);
    let (want, got) = (&screens[0], &screens[1]);
    assert!(
        want["text"].to_string().contains(expect),
        "the program ran: {}",
        want["text"]
    );
    for row in 0..ROWS as usize {
        assert_eq!(
            got["cells"][row], want["cells"][row],
            "row {row}\nwhole stream: {}\nsnapshot: {}",
            want["text"], got["text"]
        );
    }
    assert_eq!(got["cursor"], want["cursor"]);
}

#[tokio::test]
async fn a_snapshot_and_what_follows_show_what_the_whole_stream_shows() {
    let s = TestServer::start().await;
    let t = session(&s, PROGRAM).await;
    let id = t["id"].as_str().unwrap();
    // The whole stream, byte-exact from 0 (the ring holds it all).
    let (mut whole, hello) = attach(&s, id, "?since=0").await;
    assert_eq!(hello["offset"], 0);
    let mut all = Seen::default();
    read_until_output(&mut whole, &mut all, "READY").await;
    // A first attach without `since` gets the screen as a snapshot, then live bytes.
    let (mut late, hello) = attach(&s, id, "").await;
    let mut snap = Seen::default();
    read_until(&mut late, &mut snap, |s| s.has_json("snapshot")).await;
    let msg = snap.json.iter().find(|v| v["type"] == "snapshot").unwrap();
    assert_eq!(
        (msg["cols"].as_u64(), msg["rows"].as_u64()),
        (Some(COLS), Some(ROWS))
    );
    assert_eq!(msg["offset"], hello["offset"]);
    send_input(&mut whole, b"\n").await;
    read_until_output(&mut whole, &mut all, "DONE").await;
    read_until_output(&mut late, &mut snap, "DONE").await;
    assert_same_screen(&all.bytes, &snap.bytes, "after 3");
    assert!(
        String::from_utf8_lossy(&all.bytes).contains("(0lqqqk"),
        "the program drew with DEC line drawing, which pyte maps"
    );

    // `:q`: the shell's screen under the alternate one comes back on both.
    send_input(&mut whole, b"\n").await;
    read_until_output(&mut whole, &mut all, "BYE").await;
    read_until_output(&mut late, &mut snap, "BYE").await;
    assert_same_screen(&all.bytes, &snap.bytes, "history line 29");
    s.stop().await;
}

#[tokio::test]
async fn a_snapshot_carries_the_scrollback_and_a_since_that_left_the_ring_gets_one() {
    let s = TestServer::start_with(|c| c.scrollback_bytes = 4096).await;
    let script = "stty -echo; seq 1 5000; printf '\\033[1;33mprompt$ \\033[0m'; read x";
    let t = session(&s, script).await;
    let id = t["id"].as_str().unwrap();
    let (mut ws, _) = attach(&s, id, "?since=0").await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "prompt$").await;
    drop(ws);
    // Offset 0 has left the 4 KiB ring: a snapshot instead of a cut stream.
    let (mut ws, hello) = attach(&s, id, "?since=0").await;
    assert_eq!(hello["truncated"], true);
    let mut snap = Seen::default();
    read_until(&mut ws, &mut snap, |s| {
        s.has_json("snapshot") && s.contains(b"prompt$")
    })
    .await;
    // 200 lines of scrollback come along (the ring alone holds ~800 lines of `seq`, but from
    // a line that started before it, 4781 would be the first whole one).
    assert!(
        snap.contains(b"4801\x1b[m\r\n") || snap.contains(b"4801\r\n"),
        "scrollback"
    );
    let screens = pyte_screens(&[&snap.bytes]);
    let text = screens[0]["text"].to_string();
    assert!(text.contains("4992") && text.contains("prompt$"), "{text}");
    assert_eq!(
        screens[0]["cells"][ROWS as usize - 1][0][1],
        "brown",
        "yellow (33) prompt"
    );
    s.stop().await;
}

/// A finished session's saved output is the screen as clean text; its recording is asciicast v2
/// whose output events replay the session.
#[tokio::test]
async fn saved_output_is_clean_text_and_the_recording_is_asciicast() {
    let s = TestServer::start().await;
    let mut ev = events(&s).await;
    let script = "printf '\\033[?2004h\\033[1;32mgreen\\033[0m 日本\\r\\n'; printf 'abc\\rX\\n'; \
                  printf '\\033[31mlast line\\033[0m\\n'";
    let t = session(&s, script).await;
    let id = t["id"].as_str().unwrap();
    wait_exited(&mut ev, id).await;

    let out = s
        .get(&format!("/api/executions/{}/output", t["execution_id"]))
        .await;
    let text = out.body["output"].as_str().unwrap();
    assert_eq!(text, "green 日本\nXbc\nlast line\n", "{}", out.text);

    let cast = s.get(&format!("/api/terminals/{id}/recording.cast")).await;
    assert_eq!(cast.status, 200);
    let mut lines = cast.text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(COLS), Some(ROWS))
    );
    let mut played = String::new();
    let mut last = 0.0;
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap();
        let t = event[0].as_f64().unwrap();
        assert!(t >= last, "times never go back");
        last = t;
        if event[1] == "o" {
            played.push_str(event[2].as_str().unwrap());
        }
    }
    let screens = pyte_screens(&[played.as_bytes()]);
    let shown = screens[0]["text"].to_string();
    assert!(
        shown.contains("green 日本") && shown.contains("Xbc") && shown.contains("last line"),
        "{shown}"
    );
    assert_eq!(
        s.get("/api/terminals/0123456789abcdef0123456789abcdef/recording.cast")
            .await
            .status,
        404
    );
    s.stop().await;
}

/// A viewer that attaches while a session floods output gets a snapshot that the ring's bytes
/// go on from. The screen rests between the flood's batches, and with a small ring the output
/// moves on by more than the ring meanwhile: the attach must not pair an older screen with
/// ring bytes from later (output in between lost, `truncated` set on a first attach).
#[tokio::test]
async fn an_attach_during_a_flood_gets_a_snapshot_the_ring_goes_on_from() {
    let s = TestServer::start_with(|c| c.scrollback_bytes = 64 * 1024).await;
    let script = "stty -echo; seq 1 3000000; printf 'END'; read x";
    let t = session(&s, script).await;
    let id = t["id"].as_str().unwrap();
    let (mut first, _) = attach(&s, id, "?since=0").await;
    let mut seen = Seen::default();
    read_until(&mut first, &mut seen, |s| s.bytes.len() > 600_000).await;
    // Gone, so that nothing paces the flood.
    drop(first);
    // Viewers come and go until the flood is half done, so some attach while the screen rests.
    let mut attaches = 0;
    let mut end = 0;
    while end < 10_000_000 {
        attaches += 1;
        assert!(attaches < 10_000, "the flood went on for too long");
        let (mut late, hello) = attach(&s, id, "").await;
        end = hello["end"].as_u64().unwrap();
        let mut snap = Seen::default();
        read_until(&mut late, &mut snap, |s| s.has_json("snapshot")).await;
        let msg = snap.json.iter().find(|v| v["type"] == "snapshot").unwrap();
        assert_eq!(
            (&msg["offset"], &hello["truncated"]),
            (&hello["offset"], &json!(false)),
            "the snapshot stands where the bytes after it start: {hello} {msg}"
        );
    }
    // The last viewer reads on: every line after its snapshot, none missing.
    let (mut late, hello) = attach(&s, id, "").await;
    let mut rest = Seen::default();
    // Only the tail is looked at: scanning all that was read for each message would make this
    // viewer too slow to count as reading, and a viewer that is not reading gets a snapshot.
    read_until(&mut late, &mut rest, |s| s.bytes.ends_with(b"END")).await;
    assert_eq!(hello["truncated"], false, "{hello}");
    let snapshots = rest.json.iter().filter(|v| v["type"] == "snapshot").count();
    assert_eq!(
        snapshots, 1,
        "a reading viewer misses nothing: {:?}",
        rest.json
    );
    let text = String::from_utf8_lossy(&rest.bytes);
    let after_snapshot = text.rsplit_once("\x1b[").map_or(&*text, |(_, t)| t);
    let numbers: Vec<u64> = after_snapshot
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1) && numbers.last() == Some(&3000000),
        "consecutive lines to the end after the snapshot"
    );
    s.stop().await;
}

/// The window title a program sets is the session's `title` in the API (what the web UI's tabs
/// show), a viewer that attaches later gets it in its snapshot, and it follows the program's
/// next one.
#[tokio::test]
async fn the_title_a_program_sets_is_the_sessions_title_and_in_a_late_snapshot() {
    let s = TestServer::start().await;
    let t = session(
        &s,
        r"printf '\033]0;build: step 3\007ready\r\n'; stty raw -echo; exec cat",
    )
    .await;
    let id = t["id"].as_str().unwrap();
    let path = format!("/api/terminals/{id}");
    let title_is = |want: &'static str| {
        let path = path.clone();
        let s = &s;
        async move {
            common::eventually(&format!("the title {want:?}"), || async {
                (s.get(&path).await.body["title"] == want).then_some(())
            })
            .await
        }
    };
    title_is("build: step 3").await;
    let (mut ws, _) = attach(&s, id, "").await;
    let mut seen = Seen::default();
    read_until(&mut ws, &mut seen, |s| {
        s.has_json("snapshot") && s.contains(b"ready")
    })
    .await;
    assert!(
        seen.contains(b"\x1b]2;build: step 3\x07"),
        "the snapshot sets the title: {:?}",
        String::from_utf8_lossy(&seen.bytes)
    );
    // `cat` prints what it reads: the program sets another title, then clears it.
    send_input(&mut ws, b"\x1b]2;tests \xe2\x9c\x93\x07").await;
    title_is("tests \u{2713}").await;
    send_input(&mut ws, b"\x1b]2;\x07").await;
    common::eventually("the title cleared", || async {
        s.get(&path).await.body["title"].is_null().then_some(())
    })
    .await;
    s.stop().await;
}
