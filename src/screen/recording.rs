//! A session's recording as asciicast v2 (the format asciinema's player reads): the output still
//! in the session's ring, timed by a bounded timeline of (time, offset) marks taken as output
//! arrives — one mark per [`MARK_EVERY`] of output at most, [`MAX_MARKS`] at most — and the
//! resizes. So a recording costs the ring (already kept) plus ≤ 24 bytes per mark, and its size
//! is bounded by the ring (`scrollback_bytes`): JSON escaping makes it up to ~6× that at worst
//! (all control bytes), ~1.1× for ordinary output.
//!
//! When the session's beginning has left the ring, the recording says so instead of starting
//! mid-screen: it opens with a reset, a one-line notice and an asciicast marker (`"m"`, which
//! asciinema's player shows on its progress bar), and its output starts at the first line start
//! in the ring (within [`LINE_START_WITHIN`]), not in the middle of an escape sequence.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Output within this long of the previous mark shares its timestamp.
pub const MARK_EVERY: Duration = Duration::from_millis(10);
/// Marks kept at most (the oldest go first; their output has usually left the ring by then).
pub const MAX_MARKS: usize = 16_384;
/// How far into a cut ring the recording looks for a line start to begin at.
pub const LINE_START_WITHIN: usize = 64 * 1024;

/// A terminal size: `(cols, rows)`.
pub type Size = (u16, u16);

#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Milliseconds since the session started.
    at_ms: u64,
    offset: u64,
    /// A resize at this point (cols, rows); `None` for output.
    resize: Option<(u16, u16)>,
}

#[derive(Clone)]
pub struct Timeline {
    started: Instant,
    started_unix: u64,
    marks: VecDeque<Mark>,
    /// The size in force before the oldest mark kept.
    first_size: (u16, u16),
}

impl Timeline {
    pub fn new(cols: u16, rows: u16) -> Timeline {
        Timeline {
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            marks: VecDeque::new(),
            first_size: (cols, rows),
        }
    }

    /// Output starting at `offset` arrived at `now`; output before `ring_start` has left the
    /// ring, so marks for it are dropped (all but the last, which times the ring's start).
    pub fn output(&mut self, offset: u64, now: Instant, ring_start: u64) {
        while self.marks.len() >= 2 && self.marks[1].offset <= ring_start {
            self.pop_oldest();
        }
        let at_ms = now.saturating_duration_since(self.started).as_millis() as u64;
        if let Some(last) = self.marks.back() {
            if last.resize.is_none() && at_ms < last.at_ms + MARK_EVERY.as_millis() as u64 {
                return;
            }
        }
        self.push(Mark {
            at_ms,
            offset,
            resize: None,
        });
    }

    /// The size in force before any resize at `from` or later, and those resizes up to and
    /// including `to`: `(offset, (cols, rows))`, oldest first (as far as the marks kept tell).
    /// A resize at `from` came before the output byte at `from`.
    pub fn sizes(&self, from: u64, to: u64) -> (Size, Vec<(u64, Size)>) {
        let mut at_start = self.first_size;
        let mut after = Vec::new();
        for mark in &self.marks {
            match mark.resize {
                Some(size) if mark.offset < from => at_start = size,
                Some(size) if mark.offset <= to => after.push((mark.offset, size)),
                _ => {}
            }
        }
        (at_start, after)
    }

    /// The PTY was resized when the output had reached `offset`.
    pub fn resize(&mut self, offset: u64, cols: u16, rows: u16) {
        let at_ms = self.started.elapsed().as_millis() as u64;
        self.push(Mark {
            at_ms,
            offset,
            resize: Some((cols, rows)),
        });
    }

    fn push(&mut self, mark: Mark) {
        if self.marks.len() >= MAX_MARKS {
            self.pop_oldest();
        }
        self.marks.push_back(mark);
    }

    fn pop_oldest(&mut self) {
        if let Some(Mark {
            resize: Some(size), ..
        }) = self.marks.pop_front()
        {
            self.first_size = size;
        }
    }

    /// The recording of `bytes`, the output from absolute offset `start` on (the ring), as
    /// asciicast v2: a header line, then one `[time, "o", text]` or `[time, "r", "COLSxROWS"]`
    /// event per line. Times count from the first event.
    pub fn cast(&self, start: u64, bytes: &[u8]) -> String {
        let cut = start > 0;
        let (start, bytes) = match cut {
            true => from_line_start(start, bytes),
            false => (start, bytes),
        };
        let end = start + bytes.len() as u64;
        // The size in force at `start`, and the marks from `start` on.
        let mut size = self.first_size;
        let mut t0 = None;
        let mut kept: Vec<Mark> = Vec::new();
        for mark in &self.marks {
            if mark.offset < start || (mark.offset == start && mark.resize.is_some()) {
                if let Some(s) = mark.resize {
                    size = s;
                }
                t0 = Some(mark.at_ms);
                continue;
            }
            kept.push(*mark);
        }
        let t0 = t0.or(kept.first().map(|m| m.at_ms)).unwrap_or(0);
        let header = serde_json::json!({
            "version": 2,
            "width": size.0,
            "height": size.1,
            "timestamp": self.started_unix,
            "env": {"TERM": "xterm-256color"},
        });
        let mut out = header.to_string();
        out.push('\n');
        if cut {
            let notice = format!(
                "\x1bc\x1b[2m[recording starts {start} bytes into the session: older output has \
                 left the server's scrollback]\x1b[m\r\n"
            );
            let _ = writeln!(out, "[0.000, \"o\", {}]", serde_json::Value::String(notice));
            let _ = writeln!(out, "[0.000, \"m\", \"older output dropped\"]");
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut emit = |out: &mut String, at_ms: u64, from: u64, to: u64| {
            let (from, to) = (from.clamp(start, end), to.clamp(start, end));
            pending.extend_from_slice(&bytes[(from - start) as usize..(to - start) as usize]);
            let text = take_text(&mut pending);
            if !text.is_empty() {
                let secs = at_ms.saturating_sub(t0) as f64 / 1000.0;
                let data = serde_json::Value::String(text);
                let _ = writeln!(out, "[{secs:.3}, \"o\", {data}]");
            }
        };
        let first = kept.first().map_or(end, |m| m.offset);
        emit(&mut out, t0, start, first);
        for (i, mark) in kept.iter().enumerate() {
            if let Some((cols, rows)) = mark.resize {
                let secs = mark.at_ms.saturating_sub(t0) as f64 / 1000.0;
                let _ = writeln!(out, "[{secs:.3}, \"r\", \"{cols}x{rows}\"]");
            }
            let next = kept.get(i + 1).map_or(end, |m| m.offset);
            emit(&mut out, mark.at_ms, mark.offset, next);
        }
        out
    }
}

/// `bytes` (output from `start` on) from just after its first line feed, if there is one within
/// [`LINE_START_WITHIN`].
fn from_line_start(start: u64, bytes: &[u8]) -> (u64, &[u8]) {
    let within = &bytes[..bytes.len().min(LINE_START_WITHIN)];
    match within.iter().position(|&b| b == b'\n') {
        Some(at) => (start + at as u64 + 1, &bytes[at + 1..]),
        None => (start, bytes),
    }
}

/// The longest prefix of `pending` that is text: invalid bytes become U+FFFD, and a character
/// split at the end stays in `pending` for the next event.
fn take_text(pending: &mut Vec<u8>) -> String {
    let mut text = String::new();
    let mut rest: &[u8] = pending;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                rest = &[];
                break;
            }
            Err(e) => {
                let (ok, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(ok).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        text.push('\u{fffd}');
                        rest = &after[n..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let keep = rest.to_vec();
    *pending = keep;
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cast_has_a_header_and_timed_events_with_split_characters_whole() {
        let mut t = Timeline::new(80, 24);
        let now = t.started;
        t.output(0, now, 0);
        t.output(3, now + Duration::from_millis(500), 0);
        t.resize(5, 100, 30);
        t.output(5, now + Duration::from_millis(900), 0);
        let out = b"ab\xe6\x97\xa5\x1b[m!";
        let cast = t.cast(0, out);
        let lines: Vec<serde_json::Value> = cast
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(
            (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
            (Some(80), Some(24))
        );
        assert_eq!(lines[1], serde_json::json!([0.0, "o", "ab"]));
        assert_eq!(lines[2], serde_json::json!([0.5, "o", "日"]));
        assert_eq!(lines[3][1], "r");
        assert_eq!(lines[3][2], "100x30");
        assert_eq!(lines[4][2], "\u{1b}[m!");
        // From a later start, the size in force there heads the cast, and the cast says that
        // it does not begin with the session.
        let cast = t.cast(5, &out[5..]);
        assert!(
            cast.starts_with(r#"{"env":{"TERM":"xterm-256color"},"height":30,"#),
            "{cast}"
        );
        let lines: Vec<serde_json::Value> = cast
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines[1][2]
            .as_str()
            .unwrap()
            .contains("recording starts 5 bytes into"));
        assert_eq!(
            lines[2],
            serde_json::json!([0.0, "m", "older output dropped"])
        );
        assert_eq!(lines[3][2], "\u{1b}[m!");
    }

    #[test]
    fn a_cut_recording_starts_at_a_line_start() {
        let t = Timeline::new(80, 24);
        let cast = t.cast(100, b"31m half a line\r\nwhole line\r\n");
        let events: Vec<serde_json::Value> = cast
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let played: String = events
            .iter()
            .filter(|e| e[1] == "o")
            .map(|e| e[2].as_str().unwrap())
            .collect();
        assert!(
            played.ends_with("]\u{1b}[m\r\nwhole line\r\n"),
            "{played:?}"
        );
        assert!(
            played.contains("recording starts 117 bytes into"),
            "{played:?}"
        );
    }

    #[test]
    fn marks_are_bounded() {
        let mut t = Timeline::new(80, 24);
        let now = t.started;
        for i in 0..(MAX_MARKS as u64 + 10) {
            t.output(i, now + MARK_EVERY * i as u32, 0);
        }
        assert_eq!(t.marks.len(), MAX_MARKS);
        // Marks for output that left the ring go (but one, which times the ring's start).
        t.output(
            MAX_MARKS as u64 + 10,
            now + MARK_EVERY * (MAX_MARKS as u32 + 10),
            16_000,
        );
        assert_eq!(t.marks.front().map(|m| m.offset), Some(16_000));
    }
}
