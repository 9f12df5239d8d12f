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

/// A region of the whole screen is the default: the snapshot sets none, so a viewer that
/// draws it at another size (it resized before the snapshot was drawn) scrolls the whole
/// screen, as a terminal does after a resize. vim sets `1;rows` when it starts.
#[test]
fn a_region_of_the_whole_screen_is_not_carried_to_another_size() {
    for whole in [&b"\x1b[1;3r"[..], b"\x1b[1;9r", b"\x1b[r", b"\x1b[1r"] {
        let mut screen = Screen::new(10, 3);
        let mut stream = b"\x1b[?1049h".to_vec();
        stream.extend_from_slice(whole);
        stream.extend_from_slice(b"\x1b[Ha");
        screen.feed(0, &stream);
        let snap = screen.snapshot();
        // At 5 rows, four more lines after the snapshot leave `a` on the top row, not scrolled
        // away inside a 3-row region.
        let mut drawn = snap.bytes.clone();
        drawn.extend_from_slice(b"\r\nb\r\nc\r\nd\r\ne");
        let mut viewer = vt100::Parser::new(5, 10, 0);
        viewer.process(&drawn);
        let rows = viewer.screen().contents();
        assert!(
            rows.starts_with("a\nb\nc"),
            "{}: {rows:?}",
            String::from_utf8_lossy(whole)
        );
    }
}

/// A resize resets the scroll region, as xterm and xterm.js do: a program that set one and
/// redraws after the resize without setting it again (vim) is not scrolled inside the old one.
#[test]
fn a_resize_resets_the_scroll_region_and_keeps_the_cursor() {
    let mut screen = Screen::new(10, 4);
    screen.feed(0, b"\x1b[?1049h\x1b[1;3r\x1b[2;5Hx");
    screen.resize(10, 6);
    let mut after = Screen::new(10, 6);
    after.feed(0, &screen.snapshot().bytes);
    let redraw = b"y\x1b[H\x1b[2Jr1\r\nr2\r\nr3\r\nr4\r\nr5\r\nr6";
    for s in [&mut screen, &mut after] {
        s.feed(s.offset(), redraw);
        let text = s.text();
        assert_eq!(text, "r1\nr2\nr3\nr4\nr5\nr6\n", "{text:?}");
    }
    // The cursor stayed where the program left it: `y` went on after `x`.
    let mut cursor = Screen::new(10, 4);
    cursor.feed(0, b"\x1b[1;3r\x1b[2;5Hx");
    cursor.resize(10, 6);
    cursor.feed(cursor.offset(), b"y");
    assert!(cursor.text().contains("    xy"), "{:?}", cursor.text());
}

/// A long line that wrapped is one line in the scrollback of the snapshot too (soft wraps), so
/// that a view copies it whole and reflows it when it is resized; only the wrap between the
/// scrollback and the screen is a hard one.
#[test]
fn wrapped_lines_stay_wrapped_in_the_scrollback() {
    // 25 columns, then a wide character that does not fit in the last column of its row.
    let mut stream = format!("{}\r\n{}界x\r\n", "x".repeat(25), "y".repeat(9)).into_bytes();
    for i in 0..6 {
        stream.extend_from_slice(format!("l{i}\r\n").as_bytes());
    }
    let mut screen = Screen::new(10, 3);
    screen.feed(0, &stream);
    let wraps = |bytes: &[u8]| {
        let mut parser = vt100::Parser::new(3, 10, 100);
        parser.process(bytes);
        let screen = parser.screen_mut();
        (1..=9)
            .rev()
            .map(|back| {
                screen.set_scrollback(back);
                (screen.rows(0, 10).next(), screen.row_wrapped(0))
            })
            .collect::<Vec<_>>()
    };
    let whole = wraps(&stream);
    assert_eq!(
        whole[..2],
        [(Some("x".repeat(10)), true), (Some("x".repeat(10)), true)],
        "{whole:?}"
    );
    assert_eq!(wraps(&screen.snapshot().bytes), whole);
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

/// What the screen shows as text after `bytes` (DEC graphics included, which vt100 alone lacks).
fn text_of(chunks: &[&[u8]], cols: u16, rows: u16) -> String {
    let mut screen = Screen::new(cols, rows);
    let mut offset = 0;
    for chunk in chunks {
        screen.feed(offset, chunk);
        offset += chunk.len() as u64;
    }
    screen.text()
}

#[test]
fn the_primary_screen_under_the_alternate_one_comes_back_when_the_program_leaves() {
    let mut screen = Screen::new(12, 4);
    let mut stream = b"old 1\r\nold 2\r\nold 3\r\nold 4\r\nshell$ vim".to_vec();
    stream.extend_from_slice(b"\x1b[?1049h\x1b[H\x1b[2J\x1b[7m~ file\x1b[m\x1b[3;3H");
    screen.feed(0, &stream);
    let snap = screen.snapshot();
    // While vim runs, both show vim.
    assert_eq!(shown(&snap.bytes, 12, 4), shown(&stream, 12, 4));
    // `:q`: the shell's screen and cursor are back, as on the terminal that saw it all.
    let quit = b"\x1b[?1049l\r\nshell$ ";
    let mut a = snap.bytes.clone();
    a.extend_from_slice(quit);
    stream.extend_from_slice(quit);
    assert_eq!(shown(&a, 12, 4), shown(&stream, 12, 4));
    assert!(String::from_utf8_lossy(&a).contains("shell$ vim"));
    // The scrollback above it came along too.
    let mut restored = Screen::new(12, 4);
    restored.feed(0, &a);
    assert!(
        restored.text().starts_with("old 1\n"),
        "{}",
        restored.text()
    );
}

#[test]
fn dec_line_drawing_is_shown_as_the_box_it_draws_even_split_across_reads() {
    let whole = text_of(
        &[b"\x1b(0lqqk\x1b(B ok\r\n\x1b)0\x0ex\x0fx\x0e\x1b[31mx\x0f"],
        20,
        3,
    );
    assert_eq!(whole, "┌──┐ ok\n│x│\n");
    let split = text_of(
        &[
            b"\x1b(",
            b"0lq",
            b"qk\x1b(B ok\r\n\x1b",
            b")0\x0e",
            b"x\x0fx\x0e\x1b[3",
            b"1mx\x0f",
        ],
        20,
        3,
    );
    assert_eq!(split, whole);
}

#[test]
fn a_charset_in_use_at_the_snapshot_goes_on_after_it() {
    let mut screen = Screen::new(20, 3);
    screen.feed(0, b"\x1b(0lq");
    let snap = screen.snapshot();
    let mut again = Screen::new(20, 3);
    again.feed(0, &snap.bytes);
    again.feed(snap.bytes.len() as u64, b"qk\x1b(B ok");
    assert_eq!(again.text(), "┌──┐ ok\n");
}

#[test]
fn origin_mode_and_the_other_tracked_modes_are_reproduced() {
    let mut screen = Screen::new(10, 6);
    let stream = b"top\x1b[2;5r\x1b[?6h\x1b[2;4Hx\x1b[4h\x1b[?7l\x1b[?1004h";
    screen.feed(0, stream);
    let snap = screen.snapshot();
    let text = String::from_utf8_lossy(&snap.bytes);
    for mode in [
        "\x1b[2;5r",
        "\x1b[?6h",
        "\x1b[4h",
        "\x1b[?7l",
        "\x1b[?1004h",
    ] {
        assert!(text.contains(mode), "{mode:?} in {text:?}");
    }
    // A cursor move after the snapshot counts from the region's top on both.
    let more = b"\x1b[1;1Hy\x1b[10;1Hz";
    let mut a = snap.bytes.clone();
    a.extend_from_slice(more);
    let mut b = stream.to_vec();
    b.extend_from_slice(more);
    assert_eq!(shown(&a, 10, 6), shown(&b, 10, 6));
    // A reset forgets them all.
    screen.feed(stream.len() as u64, b"\x1bc");
    let text = String::from_utf8_lossy(&screen.snapshot().bytes).into_owned();
    for mode in [
        "\x1b[2;5r",
        "\x1b[?6h",
        "\x1b[4h",
        "\x1b[?7l",
        "\x1b[?1004h",
    ] {
        assert!(!text.contains(mode), "{mode:?} in {text:?}");
    }
}

/// The window title a program sets (OSC 0 or 2, ended by BEL or ST) is the screen's title,
/// cleaned for a label; it survives a reset, a freeze and a snapshot drawn on a fresh screen.
#[test]
fn the_title_a_program_sets_is_kept_cleaned_and_carried_by_the_snapshot() {
    let mut screen = Screen::new(20, 5);
    assert_eq!(screen.title(), None);
    screen.feed(0, b"\x1b]0;root@vm: ~\x07$ ");
    assert_eq!(screen.title().map(|t| &**t), Some("root@vm: ~"));
    // OSC 2 ended by ST, with a `;` inside and a control character; the icon name (OSC 1) is
    // not the title.
    let stream = b"\x1b]2;vim; a.txt\x08 \x1b\\\x1b]1;icon\x07";
    screen.feed(screen.offset(), stream);
    assert_eq!(screen.title().map(|t| &**t), Some("vim; a.txt"));
    // A reset keeps it, as xterm.js does.
    screen.feed(screen.offset(), b"\x1bc");
    assert_eq!(screen.title().map(|t| &**t), Some("vim; a.txt"));
    // A frozen screen still has it, and its snapshot sets it on a fresh screen.
    screen.freeze();
    assert_eq!(screen.title().map(|t| &**t), Some("vim; a.txt"));
    let snap = screen.snapshot();
    let mut fresh = Screen::new(20, 5);
    fresh.feed(0, &snap.bytes);
    assert_eq!(fresh.title().map(|t| &**t), Some("vim; a.txt"));
    // An empty title clears it; the snapshot then sets none.
    screen.feed(screen.offset(), b"\x1b]2;\x07");
    assert_eq!(screen.title(), None);
    assert!(!screen.snapshot().bytes.windows(3).any(|w| w == b"\x1b]2"));
}

/// A title is cut to `TITLE_MAX_CHARS` characters (not bytes: a cut never splits one), and
/// bytes that are not UTF-8 become replacement characters, never a panic.
#[test]
fn a_long_or_binary_title_is_cut_and_replaced_not_refused() {
    let mut screen = Screen::new(20, 5);
    let mut stream = b"\x1b]2;".to_vec();
    stream.extend(std::iter::repeat_n("界".as_bytes(), 300).flatten());
    stream.push(0x07);
    screen.feed(0, &stream);
    let title = screen.title().map(|t| t.to_string()).unwrap_or_default();
    assert_eq!(title.chars().count(), TITLE_MAX_CHARS);
    assert!(title.chars().all(|c| c == '界'));
    screen.feed(screen.offset(), b"\x1b]2;a\xff\xfeb\x07");
    assert_eq!(screen.title().map(|t| &**t), Some("a\u{fffd}\u{fffd}b"));
}

/// A title restored into a new screen (a reload handed the session over) is its title, is in
/// its snapshot while it is still frozen, and goes when the program clears it.
#[test]
fn a_restored_title_is_in_the_snapshot_until_the_program_clears_it() {
    let mut screen = Screen::new(20, 5);
    screen.restore_title("before the reload".into());
    assert!(screen.is_frozen(), "an idle screen keeps no grid");
    assert_eq!(screen.title().map(|t| &**t), Some("before the reload"));
    let snap = screen.snapshot();
    assert_eq!(snap.offset, 0);
    let mut fresh = Screen::new(20, 5);
    fresh.feed(0, &snap.bytes);
    assert_eq!(fresh.title().map(|t| &**t), Some("before the reload"));
    screen.feed(0, b"$ \x1b]2;\x07");
    assert_eq!(screen.title(), None);
}
