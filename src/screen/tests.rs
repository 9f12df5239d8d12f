use super::*;

/// What a terminal shows: every visible cell with its attributes, the cursor and the modes, as
/// vt100 reports them after parsing `bytes` on a fresh 'cols × rows' terminal.
fn shown(bytes: &[u8], cols: u16, rows: u16) -> Vec<u8> {
    let mut parser = vt100::Parser::new(rows, cols, 0);
    parser.process(bytes);
    let screen = parser.screen();
    let mut shown = screen.state_formatted();
    shown.extend_from_slice(format!("{}", screen.alternate_screen()).as_bytes());
    shown
}

const PROGRAM: &[u8] = b"line one\r\n\x1b[31mred\x1b[m \xe7\x95\x8c wide\r\n\x1b[?2004h\x1b[?1h\x1b[?1000h\x1b[?1006h$ ";

#[test]
fn a_snapshot_shows_what_the_whole_stream_shows() {
    let mut screen = Screen::new(20, 5);
    screen.feed(0, PROGRAM);
    let snap = screen.snapshot();
    assert_eq!(snap.offset, PROGRAM.len() as u64);
    assert_eq!((snap.cols, snap.rows), (20, 5));
    assert_eq!(shown(&snap.bytes, 20, 5), shown(PROGRAM, 20, 5));
}

#[test]
fn scrollback_comes_before_the_screen_and_the_region_is_kept() {
    let mut screen = Screen::new(10, 3);
    let mut stream = Vec::new();
    for i in 0..8 {
        stream.extend_from_slice(format!("l{i}\r\n").as_bytes());
    }
    stream.extend_from_slice(b"\x1b[2;3r\x1b[3;1H");
    screen.feed(0, &stream);
    let snap = screen.snapshot();
    let text = String::from_utf8_lossy(&snap.bytes);
    assert!(
        text.contains("l0") && text.find("l0") < text.find("l6"),
        "{text:?}"
    );
    assert!(text.contains("\x1b[2;3r"));
    // Output after the snapshot scrolls the same region on both.
    let more = b"\nx\ny";
    let mut a = snap.bytes.clone();
    a.extend_from_slice(more);
    stream.extend_from_slice(more);
    assert_eq!(shown(&a, 10, 3), shown(&stream, 10, 3));
}

#[test]
fn alternate_screen_is_restored() {
    let mut screen = Screen::new(10, 3);
    let stream = b"shell$ \x1b[?1049h\x1b[H\x1b[2Jvim\x1b[2;2H";
    screen.feed(0, stream);
    let snap = screen.snapshot();
    assert_eq!(shown(&snap.bytes, 10, 3), shown(stream, 10, 3));
}

#[test]
fn feeding_twice_is_idempotent_and_text_is_clean() {
    let mut screen = Screen::new(20, 5);
    screen.feed(0, PROGRAM);
    screen.feed(3, &PROGRAM[3..]);
    assert_eq!(screen.offset(), PROGRAM.len() as u64);
    assert_eq!(screen.text(), "line one\nred 界 wide\n$\n");
}

#[test]
fn a_frozen_screen_thaws_into_the_same_screen() {
    let mut screen = Screen::new(20, 5);
    screen.feed(0, PROGRAM);
    let before = screen.snapshot();
    screen.freeze();
    assert!(screen.is_frozen());
    assert_eq!(screen.snapshot(), before);
    screen.feed(before.offset, b"ls");
    assert!(!screen.is_frozen());
    let mut stream = PROGRAM.to_vec();
    stream.extend_from_slice(b"ls");
    assert_eq!(
        shown(&screen.snapshot().bytes, 20, 5),
        shown(&stream, 20, 5)
    );
}

#[test]
fn resize_changes_the_snapshot_size() {
    let mut screen = Screen::new(20, 5);
    screen.feed(0, b"abc");
    screen.resize(30, 7);
    let snap = screen.snapshot();
    assert_eq!((snap.cols, snap.rows), (30, 7));
}

#[test]
fn a_frozen_prompt_costs_hundreds_of_bytes_not_a_grid() {
    let mut screen = Screen::new(80, 24);
    screen.feed(
        0,
        b"\x1b[?2004h\x1b]0;user@host: ~\x07\x1b[01;32muser@host\x1b[00m:\x1b[01;34m~\x1b[00m$ ",
    );
    screen.freeze();
    let State::Frozen(bytes) = &screen.state else {
        panic!("frozen");
    };
    assert!(bytes.len() < 512, "{} bytes", bytes.len());
}

#[test]
fn output_past_the_screen_skips_ahead() {
    let mut screen = Screen::new(10, 3);
    screen.feed(0, b"one\r\n");
    screen.feed(100, b"two");
    assert_eq!(screen.offset(), 103);
    assert_eq!(screen.text(), "one\ntwo\n");
}
