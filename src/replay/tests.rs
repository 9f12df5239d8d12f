//! Unit tests of the ring (`ReplayBuffer`).

use std::os::fd::FromRawFd;

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

/// Bytes of the memfd actually backed by memory.
fn backed_bytes(ring: &ReplayBuffer) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let fd = ring
        .memfd()
        .expect("a memfd ring")
        .try_clone_to_owned()
        .unwrap();
    std::fs::File::from(fd).metadata().unwrap().blocks() * 512
}

#[test]
fn memory_grows_with_use_not_up_front() {
    let mut ring = ReplayBuffer::new(1 << 20);
    // Nothing at all: the header is only written once the ring is kept.
    assert_eq!(backed_bytes(&ring), 0);
    ring.push(b"hello");
    // The one page the bytes are in.
    assert!(backed_bytes(&ring) <= 4096, "{}", backed_bytes(&ring));
    assert!(ring.set_meta(b"{}"));
    // And now the header's.
    assert!(backed_bytes(&ring) <= 8192, "{}", backed_bytes(&ring));
    for _ in 0..10_000 {
        ring.push(&[b'x'; 1000]);
    }
    assert!(backed_bytes(&ring) <= (1 << 20) + (64 << 10));
    assert_eq!(ring.len(), 1 << 20);
}

#[test]
fn a_ring_reopened_from_its_memfd_continues_byte_exact() {
    let mut ring = ReplayBuffer::new(16);
    ring.push(b"one\n\x1b[2Jtwo\nthree four five\x1b");
    assert!(ring.set_meta(b"{\"id\":\"t1\"}"));
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    let (start, end, safe) = (ring.start(), ring.end(), ring.safe_start());
    let held = ring.read_from(0).bytes;
    drop(ring); // the process that wrote it is gone; the fd store kept the fd
    let mut again = ReplayBuffer::from_memfd(fd).unwrap();
    assert_eq!(
        (again.start(), again.end(), again.safe_start()),
        (start, end, safe)
    );
    assert_eq!(again.read_from(0).bytes, held);
    assert_eq!(again.meta(), Some(&b"{\"id\":\"t1\"}"[..]));
    // The clear matcher's state came back too: the ESC pushed before goes on into `ESC c`.
    again.push(b"c!");
    assert_eq!(again.safe_start(), end + 1);
    assert_eq!(again.read_from(end).bytes, b"c!");
}

#[test]
fn a_ring_never_kept_cannot_be_reopened() {
    let mut ring = ReplayBuffer::new(16);
    ring.push(b"hello");
    let fd = ring.memfd().unwrap().try_clone_to_owned().unwrap();
    drop(ring);
    assert!(ReplayBuffer::from_memfd(fd).is_err());
}

#[test]
fn a_memfd_that_is_not_a_ring_is_refused() {
    // SAFETY: a fresh memfd.
    let raw = unsafe { libc::memfd_create(c"x".as_ptr(), libc::MFD_CLOEXEC) };
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    assert!(ReplayBuffer::from_memfd(fd).is_err());
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
        ring.start() % 8 != 0,
        "the test must exercise a wrapped ring"
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
