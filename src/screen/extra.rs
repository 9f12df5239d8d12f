//! Terminal state `vt100` keeps but does not expose, tracked from the same bytes with its own
//! parser (`vte`, which `vt100` is built on): the scroll region (DECSTBM). Reset as a terminal
//! resets it: on RIS, on a switch between the primary and alternate screens, and on resize.

use vte::{Params, Parser, Perform};

pub struct Extra {
    parser: Parser,
    region: Region,
}

#[derive(Default)]
struct Region {
    /// `top;bottom` (1-based; bottom 0: the last line) as the program last set it, unless it is
    /// the whole screen.
    set: Option<(u16, u16)>,
}

impl Extra {
    pub fn new() -> Extra {
        Extra {
            parser: Parser::new(),
            region: Region::default(),
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.region, bytes);
    }

    pub fn resized(&mut self) {
        self.region.set = None;
    }

    /// The DECSTBM sequence that restores the scroll region, if one is set.
    pub fn scroll_region(&self) -> Option<String> {
        self.region.set.map(|(top, bottom)| match bottom {
            0 => format!("\x1b[{top}r"),
            _ => format!("\x1b[{top};{bottom}r"),
        })
    }
}

impl Perform for Region {
    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        if ignore {
            return;
        }
        let mut values = params.iter().map(|p| p.first().copied().unwrap_or(0));
        match (intermediates, action) {
            ([], 'r') => {
                let top = values.next().unwrap_or(0).max(1);
                let bottom = values.next().unwrap_or(0);
                // `CSI r` means the whole screen; bottom 0 is "the last line". Replayed as it was
                // sent, so the terminal that replays it clamps it as the one that saw it did.
                self.set = match bottom {
                    0 if top == 1 => None,
                    0 => Some((top, 0)),
                    b if top < b => Some((top, b)),
                    _ => self.set,
                };
            }
            ([b'?'], 'h' | 'l') if values.any(|mode| matches!(mode, 47 | 1047 | 1049)) => {
                self.set = None;
            }
            _ => {}
        }
    }

    fn esc_dispatch(&mut self, intermediates: &[u8], ignore: bool, byte: u8) {
        if !ignore && intermediates.is_empty() && byte == b'c' {
            self.set = None;
        }
    }
}
