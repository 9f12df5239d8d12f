//! `ReplayBuffer`: a session's scrollback, a byte ring addressed by absolute offset.
//!
//! Every byte a PTY ever produced has an absolute offset (0 for the first byte, counting up for
//! the life of the session). The buffer keeps the newest `capacity` of them. Offsets, not
//! positions in the ring, are what viewers hold, so a viewer can say "I have everything before
//! `since`" and resume with no byte sent twice and none skipped unless it left the ring.
//!
//! The bytes live in a memfd mapping (`mapping.rs`) whose pages are only backed once written, so
//! memory grows with use and a thousand idle shells do not cost a thousand full rings; once the
//! ring is kept in systemd's fd store, the mapping's header mirrors the offsets, so it survives a
//! crash. Full-screen clears are tracked as bytes are pushed,
//! so finding a safe replay start at attach time is O(1) in the common case; the state machine
//! lives across pushes so a sequence split over two PTY reads is still seen.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

mod mapping;
#[cfg(test)]
mod tests;

pub use mapping::META_MAX;
use mapping::{Mapping, W_CAPACITY, W_CLEAR_END, W_END, W_FLAGS, W_START};

const ESC: u8 = 0x1b;

/// A window of the session output, as returned by [`ReplayBuffer::read_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Absolute offset of `bytes[0]`.
    pub start: u64,
    /// Absolute offset one past the last byte of `bytes` (the buffer's `end()` at read time).
    pub end: u64,
    /// True iff the requested offset had already left the ring (bytes were lost for this reader).
    pub truncated: bool,
    pub bytes: Vec<u8>,
}

/// Progress through one of the full-screen clear sequences (`ESC [ 2 J`, `ESC [ 3 J`, `ESC c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClearMatch {
    None,
    Esc,
    EscBracket,
    EscBracketDigit,
}

impl ClearMatch {
    fn to_bits(self) -> u64 {
        match self {
            ClearMatch::None => 0,
            ClearMatch::Esc => 1,
            ClearMatch::EscBracket => 2,
            ClearMatch::EscBracketDigit => 3,
        }
    }

    fn from_bits(bits: u64) -> ClearMatch {
        match bits & 3 {
            1 => ClearMatch::Esc,
            2 => ClearMatch::EscBracket,
            3 => ClearMatch::EscBracketDigit,
            _ => ClearMatch::None,
        }
    }
}

/// The newest `capacity` bytes of a session's output, addressed by absolute offset.
#[derive(Debug)]
pub struct ReplayBuffer {
    /// The bytes (at absolute offset modulo `capacity`) and a header mirroring the fields below.
    map: Mapping,
    capacity: usize,
    /// Absolute offset of the oldest byte held.
    start: u64,
    /// Absolute offset one past the newest byte.
    end: u64,
    /// Absolute offset just after the newest full-screen clear ever pushed.
    last_clear_end: Option<u64>,
    clear_match: ClearMatch,
    /// Whether the byte just before `start` (already evicted) was a newline, so `start` is
    /// itself a line start.
    start_is_line_start: bool,
    /// Whether the mapping's header mirrors the fields above: from [`set_meta`](Self::set_meta)
    /// on (the ring is kept in the fd store), never before, so an unkept ring never backs the
    /// header's page.
    durable: bool,
}

impl ReplayBuffer {
    /// A buffer that holds at most `capacity_bytes` bytes, in a memfd mapping whose pages are
    /// only backed once written. Panics only if no mapping at all can be made (out of memory).
    pub fn new(capacity_bytes: usize) -> Self {
        match Mapping::create(capacity_bytes) {
            Ok(map) => ReplayBuffer::around(map, capacity_bytes),
            Err(e) => panic!("cannot map a scrollback ring of {capacity_bytes} bytes: {e}"),
        }
    }

    fn around(map: Mapping, capacity: usize) -> Self {
        ReplayBuffer {
            map,
            capacity,
            start: 0,
            end: 0,
            last_clear_end: None,
            clear_match: ClearMatch::None,
            start_is_line_start: true,
            durable: false,
        }
    }

    /// A buffer that continues one handed over by a reload: `bytes` were held from absolute
    /// offset `start`, so offsets go on from `start + bytes.len()` (never back to 0).
    pub fn resume(capacity_bytes: usize, start: u64, bytes: &[u8]) -> Self {
        let mut ring = ReplayBuffer::new(capacity_bytes);
        ring.start = start;
        ring.end = start;
        // Unknown: the byte before `start` left the ring in the previous image.
        ring.start_is_line_start = start == 0;
        ring.push(bytes);
        ring
    }

    /// The ring a crashed process left in `fd` (kept in systemd's fd store): same bytes, same
    /// offsets, same clear tracking. Its capacity is the one it was made with.
    pub fn from_memfd(fd: OwnedFd) -> std::io::Result<Self> {
        let map = Mapping::open(fd)?;
        let word = |i| map.word(i).load(Ordering::Acquire);
        let capacity = word(W_CAPACITY) as usize;
        let end = word(W_END);
        // `start` is written before `end`: a crash between the two can leave it past `end`.
        let start = word(W_START)
            .min(end)
            .max(end.saturating_sub(capacity as u64));
        let clear_end = word(W_CLEAR_END);
        let flags = word(W_FLAGS);
        let mut ring = ReplayBuffer::around(map, capacity);
        ring.start = start;
        ring.end = end;
        ring.last_clear_end = (clear_end != u64::MAX).then_some(clear_end);
        ring.clear_match = ClearMatch::from_bits(flags);
        ring.start_is_line_start = flags & 4 != 0;
        ring.durable = true;
        ring.sync_header();
        Ok(ring)
    }

    /// The memfd the ring lives in (`None` for the anonymous fallback).
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        self.map.fd()
    }

    /// Stores what the ring belongs to (at most [`META_MAX`] bytes); false (and nothing
    /// written) if it does not fit. From then on the mapping's header mirrors the offsets, so
    /// the ring can be reopened from its memfd ([`from_memfd`](Self::from_memfd)).
    pub fn set_meta(&mut self, meta: &[u8]) -> bool {
        if !self.map.set_meta(meta) {
            return false;
        }
        if !self.durable {
            self.map.init_header();
            self.durable = true;
            self.sync_header();
        }
        true
    }

    /// What [`set_meta`](Self::set_meta) stored, if anything.
    pub fn meta(&self) -> Option<&[u8]> {
        self.map.meta()
    }

    /// The most bytes this buffer will hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes currently held (`end() - start()`).
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Absolute offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Absolute offset one past the newest byte: the total number of bytes ever pushed.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends output; the oldest bytes leave once the buffer is over capacity.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.track_clears(data);
        let cap = self.capacity as u64;
        // Only the newest `capacity` bytes of `data` can survive; skip the rest outright.
        let kept = &data[data.len().saturating_sub(self.capacity)..];
        let new_end = self.end + data.len() as u64;
        let new_start = new_end.saturating_sub(cap).max(self.start);
        if new_start > self.start {
            let before = new_start - 1;
            self.start_is_line_start = if before >= self.end {
                data[(before - self.end) as usize] == b'\n'
            } else {
                self.byte_at(before) == b'\n'
            };
            self.start = new_start;
            // Before the evicted bytes are overwritten (see `mapping`).
            if self.durable {
                self.map.word(W_START).store(new_start, Ordering::Release);
            }
        }
        if !kept.is_empty() {
            let pos = ((new_end - kept.len() as u64) % cap) as usize;
            let first = kept.len().min(self.capacity - pos);
            let ring = self.map.data_mut();
            ring[pos..pos + first].copy_from_slice(&kept[..first]);
            ring[..kept.len() - first].copy_from_slice(&kept[first..]);
        }
        self.end = new_end;
        self.sync_header();
    }

    /// Mirrors the fields into the mapping's header, `end` last (once the ring is durable).
    fn sync_header(&self) {
        if !self.durable {
            return;
        }
        let w = |i: usize, v: u64| self.map.word(i).store(v, Ordering::Release);
        w(W_START, self.start);
        w(W_CLEAR_END, self.last_clear_end.unwrap_or(u64::MAX));
        w(
            W_FLAGS,
            self.clear_match.to_bits() | if self.start_is_line_start { 4 } else { 0 },
        );
        w(W_END, self.end);
    }

    fn byte_at(&self, offset: u64) -> u8 {
        self.map.data()[(offset % self.capacity as u64) as usize]
    }

    /// The held bytes from absolute `from` (inside the ring) to `end()`, as two slices.
    fn slices_from(&self, from: u64) -> (&[u8], &[u8]) {
        let len = (self.end - from) as usize;
        if len == 0 {
            return (&[], &[]);
        }
        let pos = (from % self.capacity as u64) as usize;
        let data = self.map.data();
        let first = len.min(self.capacity - pos);
        (&data[pos..pos + first], &data[..len - first])
    }

    /// The held bytes from `offset` on. An `offset` before `start()` yields everything held with
    /// `truncated: true`; an `offset` past `end()` is clamped to `end()` (an empty replay), since
    /// a client cannot have seen bytes that were never produced.
    pub fn read_from(&self, offset: u64) -> Replay {
        let end = self.end;
        let from = offset.clamp(self.start, end);
        let (front, back) = self.slices_from(from);
        let mut bytes = Vec::with_capacity(front.len() + back.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        Replay {
            start: from,
            end,
            truncated: offset < self.start,
            bytes,
        }
    }

    /// Where a replay without `since` should begin so the viewer does not start mid-screen: just
    /// after the newest full-screen clear still (at least partly) inside the ring; else the first
    /// line start inside the ring; else `start()`.
    pub fn safe_start(&self) -> u64 {
        if let Some(clear_end) = self.last_clear_end {
            if clear_end >= self.start {
                return clear_end;
            }
        }
        if self.start_is_line_start {
            return self.start;
        }
        let (front, back) = self.slices_from(self.start);
        let newline = match front.iter().position(|&b| b == b'\n') {
            Some(i) => Some(i),
            None => back
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| front.len() + i),
        };
        match newline {
            Some(i) => self.start + i as u64 + 1,
            None => self.start,
        }
    }

    /// Advances the clear-sequence matcher over `data`, which is about to be appended at `end()`.
    fn track_clears(&mut self, data: &[u8]) {
        let base = self.end;
        let mut i = 0;
        while i < data.len() {
            if self.clear_match == ClearMatch::None {
                // Most output has no ESC at all: jump straight to the next one.
                match memchr::memchr(ESC, &data[i..]) {
                    Some(skip) => i += skip,
                    None => return,
                }
            }
            let b = data[i];
            self.clear_match = match (self.clear_match, b) {
                (_, ESC) => ClearMatch::Esc,
                (ClearMatch::Esc, b'[') => ClearMatch::EscBracket,
                (ClearMatch::Esc, b'c') | (ClearMatch::EscBracketDigit, b'J') => {
                    self.last_clear_end = Some(base + i as u64 + 1);
                    ClearMatch::None
                }
                (ClearMatch::EscBracket, b'2' | b'3') => ClearMatch::EscBracketDigit,
                _ => ClearMatch::None,
            };
            i += 1;
        }
    }
}
