//! A session's screen on the server: a terminal emulator (`vt100`, chosen by measuring parse
//! speed and memory, docs/benchmarks.md "Server-side screen") fed with the session's output, so
//! a viewer that attaches, reloads or falls behind gets the screen as it is now instead of a
//! replay of raw bytes that starts mid-screen (DESIGN "Terminal screen on the server").
//!
//! The interface is narrow on purpose: [`Screen::feed`] bytes at their absolute offset,
//! [`Screen::resize`], [`Screen::snapshot`] (bytes that reproduce the screen on a fresh terminal
//! of its size, and the offset they stand for), [`Screen::text`] (clean rendered text) and
//! [`Screen::freeze`] (an idle screen kept as its snapshot bytes only), and [`Screen::title`] (the
//! window title the program set, which the viewers' tabs show). `feeder` runs it off the
//! session actor's hot path; `recording` times the output for an asciicast recording.
//!
//! What `vt100` does not keep or expose is tracked beside it by [`extra::Extra`] (the scroll
//! region, origin, insert and autowrap modes, focus reporting, character sets).

mod extra;
pub mod feeder;
pub mod recording;

use std::sync::Arc;

use extra::Extra;
pub use extra::{clean_title, TITLE_MAX_CHARS};

/// Lines of scrollback the screen keeps (each line costs `cols` × 32 bytes while the screen is
/// live); a snapshot carries them, so a reattached viewer can scroll back this far.
pub const SCROLLBACK_LINES: usize = 200;

/// The screen as bytes: written to a fresh terminal of `cols` × `rows`, they reproduce the
/// screen, cursor, modes and scrollback as they were after the output byte `offset - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub offset: u64,
    pub cols: u16,
    pub rows: u16,
}

enum State {
    /// Boxed: a frozen screen costs a pointer-sized tag, not the parsers' inline buffers.
    Live(Box<(vt100::Parser, Extra)>),
    /// An idle screen kept as its snapshot bytes after the reset and the title (far smaller
    /// than the grid); fed again into a fresh emulator when output arrives.
    Frozen(Vec<u8>),
}

pub struct Screen {
    state: State,
    cols: u16,
    rows: u16,
    /// Absolute offset of the next output byte the screen expects.
    offset: u64,
    /// The window title the program last set (OSC 0 or 2): the one the snapshots set. The
    /// emulator's `Extra` tells when the program changes it.
    title: Option<Arc<str>>,
}

impl Screen {
    /// A blank screen of `cols` × `rows` (clamped to at least 1 × 1) at output offset 0.
    pub fn new(cols: u16, rows: u16) -> Screen {
        let (cols, rows) = (cols.max(1), rows.max(1));
        Screen {
            state: State::Frozen(Vec::new()),
            cols,
            rows,
            offset: 0,
            title: None,
        }
    }

    /// Absolute offset of the next byte the screen expects (what a snapshot stands for).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    /// Starts the screen with a title the program set before it existed (a reload handed the
    /// session over). The emulator starts with it too (`live`), so the program clearing it
    /// clears it.
    pub fn restore_title(&mut self, title: Arc<str>) {
        if let State::Live(live) = &mut self.state {
            live.1.seed_title(Some(title.clone()));
        }
        self.title = Some(title);
    }

    /// The window title the program last set (OSC 0 or 2), cleaned for a label: no control
    /// characters, at most [`TITLE_MAX_CHARS`]; `None` until one is set or after it is cleared.
    pub fn title(&self) -> Option<&Arc<str>> {
        self.title.as_ref()
    }

    /// Feeds output that starts at absolute offset `offset`; bytes the screen already has are
    /// skipped, so feeding is idempotent. An `offset` past the screen's skips output (a flood
    /// the screen did not keep up with: the feeder resumes at a line start).
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset + bytes.len() as u64;
        if end <= self.offset {
            return;
        }
        let skip = self.offset.saturating_sub(offset) as usize;
        let (parser, extra) = self.live();
        parser.process(&extra.feed(&bytes[skip..]));
        if let Some(title) = extra.title_change() {
            self.title = title;
        }
        self.offset = end;
    }

    /// After output the screen skipped (a flood it did not keep up with), where the next byte
    /// starts a line (the feeder resumes after a newline): a cursor left inside a line moves to
    /// the start of the next one, as the skipped newline moved it. Without that, the resumed
    /// line would go on from the middle of an older one.
    pub fn to_line_start(&mut self) {
        let (parser, extra) = self.live();
        if parser.screen().cursor_position().1 != 0 {
            parser.process(&extra.feed(b"\r\n"));
        }
    }

    /// The session's PTY was resized (between the bytes fed so far and the next).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = (cols.max(1), rows.max(1));
        if (cols, rows) == (self.cols, self.rows) {
            return;
        }
        let old_rows = self.rows;
        let (parser, extra) = self.live();
        parser.screen_mut().set_size(rows, cols);
        if extra.scroll_region(old_rows).is_some() {
            // A terminal resets the scroll region when it is resized (xterm, and xterm.js that
            // the viewers draw with); `vt100` keeps one that does not end on the last row, and
            // a program's redraw would then scroll inside it. DECSTBM homes the cursor: put it
            // back.
            let (row, col) = parser.screen().cursor_position();
            let reset = format!("\x1b[r\x1b[{};{}H", row + 1, col + 1);
            parser.process(&extra.feed(reset.as_bytes()));
        }
        extra.resized();
        self.cols = cols;
        self.rows = rows;
    }

    /// Drops the emulator and keeps only the snapshot bytes (an idle session's memory).
    pub fn freeze(&mut self) {
        if let State::Live(live) = &mut self.state {
            let (parser, extra) = &mut **live;
            let bytes = render_snapshot(parser.screen_mut(), extra);
            self.state = State::Frozen(bytes);
        }
    }

    pub fn is_frozen(&self) -> bool {
        matches!(self.state, State::Frozen(_))
    }

    /// Bytes that reproduce this screen on a fresh terminal of its size, in this order: a reset,
    /// the window title, the scrollback as lines pushed up above the primary screen, the primary
    /// screen with its cursor, the alternate screen if it is on (so the primary one is there
    /// when the program leaves it), the scroll region and origin mode, and the modes
    /// (application cursor keys and keypad, bracketed paste, mouse reporting and its encoding,
    /// insert, autowrap, focus reporting, character sets).
    pub fn snapshot(&mut self) -> Snapshot {
        let (offset, cols, rows) = (self.offset, self.cols, self.rows);
        // RIS: the snapshot is self-contained even on a terminal that was showing something else.
        let mut bytes = b"\x1bc".to_vec();
        if let Some(title) = &self.title {
            // Clean (no control character can end the sequence early): OSC 2, ended by BEL.
            bytes.extend_from_slice(b"\x1b]2;");
            bytes.extend_from_slice(title.as_bytes());
            bytes.push(0x07);
        }
        match &mut self.state {
            State::Frozen(frozen) => bytes.extend_from_slice(frozen),
            State::Live(live) => {
                let (parser, extra) = &mut **live;
                bytes.extend(render_snapshot(parser.screen_mut(), extra));
            }
        }
        Snapshot {
            bytes,
            offset,
            cols,
            rows,
        }
    }

    /// The scrollback and the screen as plain text (no escape codes), trailing blank lines and
    /// trailing spaces trimmed: what a finished session's saved output shows.
    pub fn text(&mut self) -> String {
        let (parser, _) = self.live();
        let screen = parser.screen_mut();
        let (_, cols) = screen.size();
        let mut lines = Vec::new();
        if !screen.alternate_screen() {
            for back in (1..=scrollback_len(screen)).rev() {
                screen.set_scrollback(back);
                lines.extend(screen.rows(0, cols).next());
            }
            screen.set_scrollback(0);
        }
        lines.extend(screen.rows(0, cols));
        let mut text = String::new();
        for line in &lines {
            text.push_str(line.trim_end());
            text.push('\n');
        }
        let kept = text.trim_end_matches('\n').len();
        text.truncate(kept);
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }

    /// Whether the scrollback is full, so older lines are no longer held.
    pub fn scrollback_full(&mut self) -> bool {
        let (parser, _) = self.live();
        scrollback_len(parser.screen_mut()) >= SCROLLBACK_LINES
    }

    /// The emulator, brought back from its snapshot if the screen was frozen.
    fn live(&mut self) -> (&mut vt100::Parser, &mut Extra) {
        if let State::Frozen(bytes) = &self.state {
            let mut parser = vt100::Parser::new(self.rows, self.cols, SCROLLBACK_LINES);
            let mut extra = Extra::new();
            extra.seed_title(self.title.clone());
            parser.process(&extra.feed(bytes));
            self.state = State::Live(Box::new((parser, extra)));
        }
        match &mut self.state {
            State::Live(live) => {
                let (parser, extra) = &mut **live;
                (parser, extra)
            }
            State::Frozen(_) => unreachable!("thawed just above"),
        }
    }
}

/// How many scrollback lines the screen holds (vt100 clamps the view offset to it).
fn scrollback_len(screen: &mut vt100::Screen) -> usize {
    screen.set_scrollback(usize::MAX);
    let held = screen.scrollback();
    screen.set_scrollback(0);
    held
}

/// The snapshot after its reset and title (`Screen::snapshot`), as drawn on a fresh terminal.
fn render_snapshot(screen: &mut vt100::Screen, extra: &Extra) -> Vec<u8> {
    let mut out = Vec::new();
    if screen.alternate_screen() {
        // vt100 keeps the primary screen under the alternate one but does not show it: a copy
        // of the screen, switched back without the cursor restore, shows it as it is.
        let (rows, cols) = screen.size();
        let mut primary = vt100::Parser::new(rows, cols, SCROLLBACK_LINES);
        *primary.screen_mut() = screen.clone();
        primary.process(b"\x1b[?47l");
        render_primary(primary.screen_mut(), &mut out);
        // Saves the primary cursor, which the program's own `?1049l` restores.
        out.extend_from_slice(b"\x1b[?1049h");
        out.extend_from_slice(&screen.contents_formatted());
    } else {
        render_primary(screen, &mut out);
    }
    let (rows, _) = screen.size();
    if let Some(region) = extra.scroll_region_formatted(rows) {
        out.extend_from_slice(region.as_bytes());
    }
    if extra.origin_mode() {
        // DECOM homes the cursor and makes its row count from the region's top.
        let top = extra.scroll_region(rows).map_or(1, |(top, _)| top);
        let (row, col) = screen.cursor_position();
        let row = (row + 1).saturating_sub(top - 1).max(1);
        out.extend_from_slice(format!("\x1b[?6h\x1b[{row};{}H", col + 1).as_bytes());
        out.extend_from_slice(&screen.attributes_formatted());
    } else if extra.scroll_region(rows).is_some() {
        // DECSTBM homes the cursor: put it back, then the pen (cursor moves may redraw a cell).
        out.extend_from_slice(&screen.cursor_state_formatted());
        out.extend_from_slice(&screen.attributes_formatted());
    }
    out.extend_from_slice(&screen.input_mode_formatted());
    out.extend_from_slice(&extra.modes_formatted());
    out
}

/// The scrollback, pushed up above the screen, then the screen with its cursor.
fn render_primary(screen: &mut vt100::Screen, out: &mut Vec<u8>) {
    let (rows, cols) = screen.size();
    let held = scrollback_len(screen);
    for back in (1..=held).rev() {
        screen.set_scrollback(back);
        out.extend(screen.rows_formatted(0, cols).next().unwrap_or_default());
        // A row the line wrapped out of (`vt100` marks only a full one) ends without a line
        // break: the next row's first character wraps onto it, so the view has one long line
        // (copied whole, reflowed on a resize). The last scrollback row always breaks: the
        // line feeds below count on it.
        if back > 1 && screen.row_wrapped(0) {
            out.extend_from_slice(b"\x1b[m");
        } else {
            out.extend_from_slice(b"\x1b[m\r\n");
        }
    }
    screen.set_scrollback(0);
    if held > 0 {
        // The last scrollback line is on the bottom row's line above now; `rows - 1` more
        // line feeds push every scrollback line above the screen.
        out.extend(std::iter::repeat_n(b'\n', usize::from(rows) - 1));
    }
    out.extend_from_slice(&screen.contents_formatted());
}

#[cfg(test)]
mod tests;
