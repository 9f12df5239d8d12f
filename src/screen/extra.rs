//! Terminal state `vt100` does not keep or does not expose, tracked from the same bytes with its
//! own parser (`vte`, which `vt100` is built on): the scroll region (DECSTBM), origin mode,
//! insert mode, autowrap off, focus reporting, the character sets, and the window title (OSC 0
//! and 2). Reset as a terminal resets them: on RIS and DECSTR (but the title, which xterm.js
//! keeps); the scroll region also on a switch of screen and on resize.
//!
//! `vt100` ignores character sets, so a box drawn in DEC special graphics (`ESC ( 0`, `lqqk`)
//! would be letters on the server's screen: [`Extra::feed`] hands it the bytes with those
//! characters replaced by the Unicode ones they stand for, and the snapshot designates the sets
//! again at its end. While no graphics set is designated (almost always) the bytes pass as they
//! are; while one is, they are parsed one at a time to tell text from escape sequences.

use std::borrow::Cow;
use std::sync::Arc;

use vte::{Params, Parser, Perform};

/// A title longer than this many characters is cut: it labels a tab, and a program cannot make
/// the server hold more than this for it.
pub const TITLE_MAX_CHARS: usize = 200;

pub struct Extra {
    parser: Parser,
    modes: Modes,
}

#[derive(Default)]
struct Modes {
    /// `top;bottom` (1-based; bottom 0: the last line) as the program last set it, unless it is
    /// the whole screen.
    region: Option<(u16, u16)>,
    origin: bool,
    insert: bool,
    no_autowrap: bool,
    focus_events: bool,
    /// G0 / G1 designated as DEC special graphics, and whether G1 is shifted in (SO).
    g0_graphics: bool,
    g1_graphics: bool,
    shifted: bool,
    /// The character the last byte printed (the graphics translation reads it).
    printed: Option<char>,
    /// The window title the program last set, and whether it changed since it was last taken.
    title: Option<Arc<str>>,
    title_changed: bool,
}

impl Extra {
    pub fn new() -> Extra {
        Extra {
            parser: Parser::new(),
            modes: Modes::default(),
        }
    }

    /// Tracks `bytes` and returns them as the emulator should see them: DEC special graphics
    /// characters replaced by their Unicode equivalents.
    pub fn feed<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut done = 0;
        let mut out: Option<Vec<u8>> = None;
        while done < bytes.len() {
            if !self.modes.graphics_designated() {
                // `terminated` stops the parser right after a graphics set is designated.
                let start = done;
                done += self
                    .parser
                    .advance_until_terminated(&mut self.modes, &bytes[done..]);
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(&bytes[start..done]);
                }
                continue;
            }
            let out = out.get_or_insert_with(|| bytes[..done].to_vec());
            let byte = bytes[done];
            self.modes.printed = None;
            self.parser.advance(&mut self.modes, &[byte]);
            match self
                .modes
                .printed
                .take()
                .and_then(|c| self.modes.graphic(c))
            {
                Some(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                None => out.push(byte),
            }
            done += 1;
        }
        match out {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(bytes),
        }
    }

    /// Starts with `title` (one set before this parser saw any byte), as if the program had
    /// set it and it had been taken.
    pub fn seed_title(&mut self, title: Option<Arc<str>>) {
        self.modes.title = title;
    }

    /// The window title the program set since the last call, if it changed it (`Some(None)`:
    /// it cleared it). Cleaned: no control characters, at most [`TITLE_MAX_CHARS`].
    pub fn title_change(&mut self) -> Option<Option<Arc<str>>> {
        std::mem::take(&mut self.modes.title_changed).then(|| self.modes.title.clone())
    }

    pub fn resized(&mut self) {
        self.modes.region = None;
    }

    /// The scroll region, unless it is the whole screen of `rows` (a program that sets `1;rows`
    /// has the default, which a terminal of another size must not keep: it resets the region
    /// when it is resized, and a snapshot may be drawn before a resize or after it).
    pub fn scroll_region(&self, rows: u16) -> Option<(u16, u16)> {
        self.modes
            .region
            .filter(|&(top, bottom)| !(top == 1 && (bottom == 0 || bottom >= rows)))
    }

    pub fn origin_mode(&self) -> bool {
        self.modes.origin
    }

    /// The DECSTBM sequence that restores the scroll region, if one other than the whole
    /// screen of `rows` is set.
    pub fn scroll_region_formatted(&self, rows: u16) -> Option<String> {
        self.scroll_region(rows).map(|(top, bottom)| match bottom {
            0 => format!("\x1b[{top}r"),
            _ => format!("\x1b[{top};{bottom}r"),
        })
    }

    /// The sequences that set the modes tracked here (but origin mode, which moves the cursor)
    /// as they are, on a terminal just reset.
    pub fn modes_formatted(&self) -> Vec<u8> {
        let m = &self.modes;
        let mut out = Vec::new();
        for (on, seq) in [
            (m.insert, &b"\x1b[4h"[..]),
            (m.no_autowrap, b"\x1b[?7l"),
            (m.focus_events, b"\x1b[?1004h"),
            (m.g0_graphics, b"\x1b(0"),
            (m.g1_graphics, b"\x1b)0"),
            (m.shifted, b"\x0e"),
        ] {
            if on {
                out.extend_from_slice(seq);
            }
        }
        out
    }
}

impl Modes {
    fn graphics_designated(&self) -> bool {
        self.g0_graphics || self.g1_graphics
    }

    /// What `c` shows as when the set in use is DEC special graphics.
    fn graphic(&self, c: char) -> Option<char> {
        let graphics = if self.shifted {
            self.g1_graphics
        } else {
            self.g0_graphics
        };
        if !graphics || !('_'..='~').contains(&c) {
            return None;
        }
        // xterm's table for 0x5f..=0x7e (VT100 User Guide, table 3-9).
        const TABLE: [char; 32] = [
            '\u{a0}', '◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼',
            '⎺', '⎻', '─', '⎼', '⎽', '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
        ];
        TABLE.get(c as usize - 0x5f).copied()
    }

    /// A reset, as a terminal's, but the title stays: xterm.js, which draws the viewers, keeps it.
    fn reset(&mut self) {
        let title = self.title.take();
        let title_changed = self.title_changed;
        *self = Modes::default();
        self.title = title;
        self.title_changed = title_changed;
    }
}

/// What a tab can show of a title a program set: control characters dropped, the rest trimmed
/// and cut to [`TITLE_MAX_CHARS`]; `None` for an empty one (the program cleared it).
pub fn clean_title(parts: &[&[u8]]) -> Option<Arc<str>> {
    let joined = parts.join(&b';');
    let text = String::from_utf8_lossy(&joined);
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(TITLE_MAX_CHARS)
        .collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| Arc::from(kept))
}

impl Perform for Modes {
    fn print(&mut self, c: char) {
        self.printed = Some(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            0x0e => self.shifted = true,
            0x0f => self.shifted = false,
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if ignore {
            return;
        }
        let values = || params.iter().map(|p| p.first().copied().unwrap_or(0));
        match (intermediates, action) {
            ([], 'r') => {
                let mut values = values();
                let top = values.next().unwrap_or(0).max(1);
                let bottom = values.next().unwrap_or(0);
                // `CSI r` means the whole screen; bottom 0 is "the last line". Replayed as it was
                // sent, so the terminal that replays it clamps it as the one that saw it did.
                self.region = match bottom {
                    0 if top == 1 => None,
                    0 => Some((top, 0)),
                    b if top < b => Some((top, b)),
                    _ => self.region,
                };
            }
            ([], 'h' | 'l') if values().any(|mode| mode == 4) => self.insert = action == 'h',
            ([b'?'], 'h' | 'l') => {
                let on = action == 'h';
                for mode in values() {
                    match mode {
                        6 => self.origin = on,
                        7 => self.no_autowrap = !on,
                        1004 => self.focus_events = on,
                        47 | 1047 | 1049 => self.region = None,
                        _ => {}
                    }
                }
            }
            // DECSTR, the soft reset.
            ([b'!'], 'p') => {
                let focus_events = self.focus_events;
                self.reset();
                self.focus_events = focus_events;
            }
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], ignore: bool, byte: u8) {
        if ignore {
            return;
        }
        match (intermediates, byte) {
            ([], b'c') => self.reset(),
            ([b'('], _) => self.g0_graphics = byte == b'0',
            ([b')'], _) => self.g1_graphics = byte == b'0',
            _ => {}
        }
    }

    /// OSC 0 (icon name and title) and OSC 2 (title); `;` inside the title splits it into more
    /// parameters, joined back here.
    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        if let [b"0" | b"2", title @ ..] = params {
            let title = clean_title(title);
            if title != self.title {
                self.title = title;
                self.title_changed = true;
            }
        }
    }

    fn terminated(&self) -> bool {
        self.graphics_designated()
    }
}
