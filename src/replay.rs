//! `ReplayBuffer`: a session's scrollback, a byte ring addressed by absolute offset.
//!
//! Every byte a PTY ever produced has an absolute offset (0 for the first byte, counting up for
//! the life of the session). The buffer keeps the newest `capacity` of them. Offsets, not
//! positions in the ring, are what viewers hold, so a viewer can say "I have everything before
//! `since`" and resume with no byte sent twice and none skipped unless it left the ring.
//!
//! Memory grows with use (a `VecDeque` that is never grown past the capacity), so a thousand idle
//! shells do not cost a thousand full rings. Full-screen clears are tracked as bytes are pushed,
//! so finding a safe replay start at attach time is O(1) in the common case; the state machine
//! lives across pushes so a sequence split over two PTY reads is still seen.

use std::collections::VecDeque;

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

/// The newest `capacity` bytes of a session's output, addressed by absolute offset.
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    bytes: VecDeque<u8>,
    capacity: usize,
    /// Absolute offset of `bytes[0]`.
    start: u64,
    /// Absolute offset just after the newest full-screen clear ever pushed.
    last_clear_end: Option<u64>,
    clear_match: ClearMatch,
    /// Whether the byte just before `start` (already evicted) was a newline, so `start` is
    /// itself a line start.
    start_is_line_start: bool,
}

impl ReplayBuffer {
    /// A buffer that holds at most `capacity_bytes` bytes. Nothing is allocated up front.
    pub fn new(capacity_bytes: usize) -> Self {
        ReplayBuffer {
            bytes: VecDeque::new(),
            capacity: capacity_bytes,
            start: 0,
            last_clear_end: None,
            clear_match: ClearMatch::None,
            start_is_line_start: true,
        }
    }

    /// A buffer that continues one handed over by a reload: `bytes` were held from absolute
    /// offset `start`, so offsets go on from `start + bytes.len()` (never back to 0).
    pub fn resume(capacity_bytes: usize, start: u64, bytes: &[u8]) -> Self {
        let mut ring = ReplayBuffer::new(capacity_bytes);
        ring.start = start;
        // Unknown: the byte before `start` left the ring in the previous image.
        ring.start_is_line_start = start == 0;
        ring.push(bytes);
        ring
    }

    /// The most bytes this buffer will hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes currently held (`end() - start()`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Absolute offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Absolute offset one past the newest byte: the total number of bytes ever pushed.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Appends output; the oldest bytes leave once the buffer is over capacity.
    pub fn push(&mut self, data: &[u8]) {
        self.track_clears(data);

        // Only the newest `capacity` bytes of `data` can survive; skip the rest outright.
        let kept = &data[data.len().saturating_sub(self.capacity)..];
        let skipped_from_data = data.len() - kept.len();
        let evicted = (self.bytes.len() + data.len()).saturating_sub(self.capacity);
        let evicted_from_held = evicted - skipped_from_data;
        if skipped_from_data > 0 {
            self.start_is_line_start = data[skipped_from_data - 1] == b'\n';
        } else if evicted_from_held > 0 {
            self.start_is_line_start = self.bytes[evicted_from_held - 1] == b'\n';
        }
        self.bytes.drain(..evicted_from_held);
        self.start += evicted as u64;
        self.grow_for(kept.len());
        self.bytes.extend(kept);
    }

    /// The held bytes from `offset` on. An `offset` before `start()` yields everything held with
    /// `truncated: true`; an `offset` past `end()` is clamped to `end()` (an empty replay), since
    /// a client cannot have seen bytes that were never produced.
    pub fn read_from(&self, offset: u64) -> Replay {
        let end = self.end();
        let from = offset.clamp(self.start, end);
        let skip = (from - self.start) as usize;
        let (front, back) = self.bytes.as_slices();
        let mut bytes = Vec::with_capacity(self.bytes.len() - skip);
        if skip < front.len() {
            bytes.extend_from_slice(&front[skip..]);
            bytes.extend_from_slice(back);
        } else {
            bytes.extend_from_slice(&back[skip - front.len()..]);
        }
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
        let (front, back) = self.bytes.as_slices();
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
        let base = self.end();
        let mut i = 0;
        while i < data.len() {
            if self.clear_match == ClearMatch::None {
                // Most output has no ESC at all: jump straight to the next one.
                match data[i..].iter().position(|&b| b == ESC) {
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

    /// Reserves room for `additional` bytes, doubling as a `Vec` would but never past capacity.
    fn grow_for(&mut self, additional: usize) {
        let needed = self.bytes.len() + additional;
        let allocated = self.bytes.capacity();
        if needed > allocated {
            let target = allocated.saturating_mul(2).max(needed).min(self.capacity);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLEAR_2J: &[u8] = b"\x1b[2J";

    #[test]
    fn empty_buffer_starts_and_ends_at_zero() {
        let ring = ReplayBuffer::new(16);
        assert_eq!((ring.start(), ring.end(), ring.len()), (0, 0, 0));
        assert!(ring.is_empty());
        assert_eq!(ring.safe_start(), 0);
        let replay = ring.read_from(0);
        assert_eq!((replay.start, replay.end, replay.truncated), (0, 0, false));
        assert!(replay.bytes.is_empty());
    }

    #[test]
    fn memory_grows_with_use_not_up_front() {
        let mut ring = ReplayBuffer::new(1 << 20);
        assert_eq!(ring.bytes.capacity(), 0);
        ring.push(b"hello");
        assert!(ring.bytes.capacity() < 1024);
        for _ in 0..10_000 {
            ring.push(&[b'x'; 1000]);
        }
        assert!(ring.bytes.capacity() <= 1 << 20);
        assert_eq!(ring.len(), 1 << 20);
    }

    #[test]
    fn oldest_bytes_leave_when_over_capacity() {
        let mut ring = ReplayBuffer::new(8);
        ring.push(b"abcdef");
        ring.push(b"ghij");
        assert_eq!((ring.start(), ring.end(), ring.len()), (2, 10, 8));
        assert_eq!(ring.read_from(2).bytes, b"cdefghij");
    }

    #[test]
    fn push_larger_than_capacity_keeps_its_tail() {
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"ab");
        ring.push(b"0123456789");
        assert_eq!((ring.start(), ring.end()), (8, 12));
        assert_eq!(ring.read_from(0).bytes, b"6789");
    }

    #[test]
    fn read_from_an_exact_offset_resumes_without_gap_or_repeat() {
        let mut ring = ReplayBuffer::new(8);
        ring.push(b"abcdefgh");
        ring.push(b"ijk");
        let replay = ring.read_from(5);
        assert_eq!((replay.start, replay.end, replay.truncated), (5, 11, false));
        assert_eq!(replay.bytes, b"fghijk");
        assert!(ring.read_from(11).bytes.is_empty());
    }

    #[test]
    fn read_from_before_start_is_truncated() {
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"abcdef");
        let replay = ring.read_from(1);
        assert!(replay.truncated);
        assert_eq!((replay.start, replay.bytes.as_slice()), (2, &b"cdef"[..]));
        assert!(!ring.read_from(2).truncated);
    }

    #[test]
    fn read_from_past_end_is_clamped_to_end() {
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"abc");
        let replay = ring.read_from(99);
        assert_eq!((replay.start, replay.end, replay.truncated), (3, 3, false));
        assert!(replay.bytes.is_empty());
    }

    #[test]
    fn zero_capacity_counts_offsets_but_holds_nothing() {
        let mut ring = ReplayBuffer::new(0);
        ring.push(b"abc");
        assert_eq!((ring.start(), ring.end(), ring.len()), (3, 3, 0));
        assert!(ring.read_from(0).truncated);
    }

    #[test]
    fn read_across_the_wrap_point_is_contiguous() {
        let mut ring = ReplayBuffer::new(8);
        for chunk in [&b"012345"[..], b"6789", b"ab", b"cdefg"] {
            ring.push(chunk);
        }
        assert!(
            !ring.bytes.as_slices().1.is_empty(),
            "the test must exercise a wrapped deque"
        );
        assert_eq!(ring.read_from(0).bytes, b"9abcdefg");
        assert_eq!(ring.read_from(12).bytes, b"cdefg");
    }

    #[test]
    fn safe_start_is_just_after_the_last_clear() {
        let mut ring = ReplayBuffer::new(64);
        ring.push(b"one\r\n\x1b[2Jtwo\r\n\x1bcthree");
        assert_eq!(ring.safe_start(), 16);
        ring.push(b"\x1b[3J");
        assert_eq!(ring.safe_start(), ring.end());
    }

    #[test]
    fn safe_start_sees_a_clear_split_across_pushes() {
        for split in 1..CLEAR_2J.len() {
            let mut ring = ReplayBuffer::new(64);
            ring.push(b"junk\n");
            ring.push(&CLEAR_2J[..split]);
            ring.push(&CLEAR_2J[split..]);
            ring.push(b"screen");
            assert_eq!(ring.safe_start(), 9, "split at {split}");
        }
        let mut ring = ReplayBuffer::new(64);
        ring.push(b"x\x1b");
        ring.push(b"c");
        assert_eq!(ring.safe_start(), 3);
    }

    #[test]
    fn safe_start_ignores_near_misses() {
        let mut ring = ReplayBuffer::new(64);
        ring.push(b"\x1b[2K\x1b[1J\x1b[2\x1bJ\x1b[c\x1b[22J");
        assert_eq!(ring.safe_start(), 0);
    }

    #[test]
    fn a_clear_that_left_the_ring_is_forgotten() {
        let mut ring = ReplayBuffer::new(8);
        ring.push(b"\x1b[2Jabc");
        ring.push(b"def\nghij");
        // The clear ended at 4, now before start (7): fall back to the first line start.
        assert_eq!(ring.start(), 7);
        assert_eq!(ring.safe_start(), 11);
    }

    #[test]
    fn a_clear_straddling_start_still_counts() {
        let mut ring = ReplayBuffer::new(6);
        ring.push(b"ab\x1b[2Jcd");
        assert_eq!(ring.start(), 2);
        assert_eq!(ring.safe_start(), 6);
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"ab\x1b[2Jcd");
        // Start (4) is inside the sequence; its end (6) is still held.
        assert_eq!(ring.safe_start(), 6);
    }

    #[test]
    fn safe_start_without_clear_is_the_first_line_start() {
        let mut ring = ReplayBuffer::new(8);
        ring.push(b"abcdef");
        assert_eq!(ring.safe_start(), 0, "offset 0 is a line start");
        ring.push(b"gh\nijk");
        assert_eq!(ring.start(), 4);
        assert_eq!(ring.safe_start(), 9);
    }

    #[test]
    fn start_after_an_evicted_newline_is_a_line_start() {
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"ab\ncdef");
        assert_eq!(ring.start(), 3);
        assert_eq!(ring.safe_start(), 3);
        ring.push(b"g");
        assert_eq!(ring.safe_start(), 4);
    }

    #[test]
    fn safe_start_without_clear_or_newline_is_start() {
        let mut ring = ReplayBuffer::new(4);
        ring.push(b"abcdefgh");
        assert_eq!(ring.safe_start(), 4);
    }

    /// The whole history kept in a `Vec`: obviously right, and what the ring must agree with.
    struct NaiveModel {
        history: Vec<u8>,
        capacity: usize,
    }

    impl NaiveModel {
        fn start(&self) -> u64 {
            self.history.len().saturating_sub(self.capacity) as u64
        }

        fn safe_start(&self) -> u64 {
            let start = self.start() as usize;
            let mut last_clear_end = None;
            for i in 0..self.history.len() {
                let rest = &self.history[i..];
                for pattern in [&b"\x1b[2J"[..], b"\x1b[3J", b"\x1bc"] {
                    if rest.starts_with(pattern) {
                        last_clear_end = Some(i + pattern.len());
                    }
                }
            }
            if let Some(end) = last_clear_end.filter(|&end| end >= start) {
                return end as u64;
            }
            if start == 0 || self.history[start - 1] == b'\n' {
                return start as u64;
            }
            match self.history[start..].iter().position(|&b| b == b'\n') {
                Some(i) => (start + i + 1) as u64,
                None => start as u64,
            }
        }
    }

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn agrees_with_a_naive_model_on_random_pushes() {
        // Few distinct bytes, so clears, near misses and newlines are all common.
        const ALPHABET: &[u8] = b"\x1b\x1b[23Jc\na";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..300 {
            let capacity = rng.below(40);
            let mut ring = ReplayBuffer::new(capacity);
            let mut model = NaiveModel {
                history: Vec::new(),
                capacity,
            };
            for _ in 0..rng.below(60) {
                let chunk: Vec<u8> = (0..rng.below(2 * capacity + 3))
                    .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                    .collect();
                ring.push(&chunk);
                model.history.extend_from_slice(&chunk);

                let end = model.history.len() as u64;
                assert_eq!(ring.end(), end, "round {round}");
                assert_eq!(ring.start(), model.start(), "round {round}");
                assert_eq!(ring.safe_start(), model.safe_start(), "round {round}");
                let offset = rng.below(model.history.len() + 3) as u64;
                let replay = ring.read_from(offset);
                let from = offset.clamp(model.start(), end);
                assert_eq!(replay.start, from, "round {round}");
                assert_eq!(replay.truncated, offset < model.start(), "round {round}");
                assert_eq!(
                    replay.bytes,
                    &model.history[from as usize..],
                    "round {round}"
                );
            }
        }
    }
}
