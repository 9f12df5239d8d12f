//! Runs a session's [`Screen`] beside its actor, off the byte path to the viewers.
//!
//! The actor hands each PTY read over (a shared `Bytes`, no copy) after it has queued it for the
//! viewers; what is queued is parsed in batches, small ones ([`INLINE_BATCH`]) on the runtime
//! (after the viewers' tasks had their turn), larger ones on the blocking pool. The screen never
//! holds back the reader or a viewer, and it costs a flood little: the queue keeps the newest
//! [`PARSE_BUDGET`] bytes (older queued output is dropped), and once it has parsed
//! [`FLOOD_BYTES`] bytes within [`FLOOD_PAUSE`] (a flood, however small its reads: [`Pace`]) the
//! parser pauses for [`FLOOD_PAUSE`], so a flood is parsed at most [`PARSE_BUDGET`] per pause,
//! resuming at a line start after what it dropped — and of a batch that starts after dropped
//! output, only its last lines, as many as can still be on the screen or in its scrollback (with
//! room for a progress line that moves the cursor up). For scrolling output the screen is the
//! same; a full-screen program's screen is exact again at its next redraw. The newest output is
//! never dropped, so the screen always ends where the output ends. After [`FREEZE_AFTER`] without
//! output the screen is frozen to its snapshot bytes, so an idle session does not keep a grid.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Screen, Snapshot};

/// The most output bytes queued for the screen; older queued output is dropped (module doc).
pub const PARSE_BUDGET: usize = 64 * 1024;
/// The most ring bytes a snapshot parses when the screen has fallen behind the ring (they end
/// where the output ends, and only their last lines are parsed: `parse`).
pub const CATCH_UP_BYTES: usize = 4 * PARSE_BUDGET;
/// This many bytes parsed within [`FLOOD_PAUSE`] are followed by [`FLOOD_PAUSE`] ([`Pace`]).
pub const FLOOD_BYTES: usize = 16 * 1024;
/// A batch smaller than this (an echo, a prompt) is parsed on the session's runtime; a larger
/// one on the blocking pool, so that the session's thread goes on reading and sending while it
/// is parsed. Parsing a flood's reads on the session's thread made its output stop and start,
/// and that weighed on the echo of other sessions and other servers on the machine
/// (`docs/benchmarks.md`, "Reading on while output flows").
pub const INLINE_BATCH: usize = 1024;
/// How long the parser rests in a flood: a flood costs at most one budget per pause.
pub const FLOOD_PAUSE: Duration = Duration::from_millis(50);
/// An idle screen is frozen to its snapshot bytes after this long without output.
pub const FREEZE_AFTER: Duration = Duration::from_secs(10);

struct Feed {
    offset: u64,
    bytes: Bytes,
    cols: u16,
    rows: u16,
}

/// Output waiting for the screen, bounded by [`PARSE_BUDGET`] bytes.
#[derive(Default)]
struct Pending {
    feeds: VecDeque<Feed>,
    bytes: usize,
    closed: bool,
}

struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
    /// The screen's window title as of the last parse, for the session's info: read without
    /// waiting for a parse that holds the screen.
    title: Mutex<Option<Arc<str>>>,
}

impl Queue {
    fn set_title(&self, title: Option<Arc<str>>) {
        if let Ok(mut slot) = self.title.lock() {
            *slot = title;
        }
    }
}

/// The actor's handle on its screen.
pub struct ScreenFeed {
    queue: Arc<Queue>,
    screen: Arc<Mutex<Screen>>,
    /// The screen's offset after each parsed batch.
    parsed: watch::Receiver<u64>,
    /// The parser task, started with the first output: a session that prints nothing holds
    /// no task for its screen (memory per idle session). Until then, its end of `parsed`.
    task: Result<JoinHandle<()>, watch::Sender<u64>>,
}

impl ScreenFeed {
    pub fn start(cols: u16, rows: u16) -> ScreenFeed {
        let screen = Arc::new(Mutex::new(Screen::new(cols, rows)));
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            title: Mutex::new(None),
        });
        let (parsed_tx, parsed) = watch::channel(0);
        ScreenFeed {
            queue,
            screen,
            parsed,
            task: Err(parsed_tx),
        }
    }

    /// Output that starts at `offset`, produced while the PTY was `cols` × `rows`.
    pub fn feed(&mut self, offset: u64, bytes: Bytes, (cols, rows): (u16, u16)) {
        if let Err(parsed_tx) = &self.task {
            let parsed_tx = parsed_tx.clone();
            let task = tokio::spawn(run(self.queue.clone(), self.screen.clone(), parsed_tx));
            self.task = Ok(task);
        }
        if let Ok(mut pending) = self.queue.pending.lock() {
            pending.bytes += bytes.len();
            pending.feeds.push_back(Feed {
                offset,
                bytes,
                cols,
                rows,
            });
            // The newest chunk always stays: the screen ends where the output ends.
            while pending.bytes > PARSE_BUDGET && pending.feeds.len() > 1 {
                if let Some(old) = pending.feeds.pop_front() {
                    pending.bytes -= old.bytes.len();
                }
            }
        }
        self.queue.wake.notify_one();
    }
    /// The screen as a snapshot that the session's ring goes on from: its `offset` is at or
    /// after `ring_start`. The screen may not have parsed that far: it rests during a flood
    /// ([`FLOOD_PAUSE`]), and a flood can move the ring on by more than its size meanwhile. Then
    /// the ring's newest bytes (`tail`: at most [`CATCH_UP_BYTES`], ending where the output
    /// ends) are parsed first, here, as the parser resumes after dropped output (`parse`):
    /// only the lines that can still be on the screen or in its scrollback. Without that, the
    /// viewer would get an older screen and then bytes from later, the output between lost.
    pub fn snapshot_from(
        &mut self,
        ring_start: u64,
        tail: impl FnOnce(usize) -> (u64, Bytes),
        size: (u16, u16),
    ) -> Option<Snapshot> {
        let mut screen = self.screen.lock().ok()?;
        if screen.offset() < ring_start {
            let (offset, bytes) = tail(CATCH_UP_BYTES);
            let end = offset + bytes.len() as u64;
            let feed = Feed {
                offset,
                bytes,
                cols: size.0,
                rows: size.1,
            };
            parse_into(&mut screen, std::slice::from_ref(&feed));
            let snapshot = screen.snapshot();
            self.queue.set_title(screen.title().cloned());
            drop(screen);
            // An empty feed at the end: the parser then tells `caught_up` where the screen is.
            self.feed(end, Bytes::new(), size);
            return Some(snapshot);
        }
        Some(screen.snapshot())
    }

    /// The screen rendered as plain text, and whether older lines have left its scrollback,
    /// once it has parsed everything up to `end`; `None` if it has not (the caller falls back
    /// to the raw bytes).
    pub fn text_at(&self, end: u64) -> Option<(String, bool)> {
        let mut screen = self.screen.lock().ok()?;
        (screen.offset() == end).then(|| (screen.text(), screen.scrollback_full()))
    }

    /// A title the program had set before this screen existed (a session handed over by a
    /// reload): the screen has it until the program sets another. Cleaned again, as if the
    /// program had set it: it goes into snapshots.
    pub fn restore_title(&self, title: &str) {
        let Some(title) = super::clean_title(&[title.as_bytes()]) else {
            return;
        };
        if let Ok(mut screen) = self.screen.lock() {
            screen.restore_title(title.clone());
        }
        self.queue.set_title(Some(title));
    }

    /// The window title the program last set, as of the last parse (`Screen::title`).
    pub fn title(&self) -> Option<Arc<str>> {
        self.queue.title.lock().ok()?.clone()
    }

    /// Waits (bounded) until the screen has parsed everything up to `end`.
    pub async fn caught_up(&self, end: u64, within: Duration) -> bool {
        let mut parsed = self.parsed.clone();
        let reached = tokio::time::timeout(within, parsed.wait_for(|at| *at >= end)).await;
        matches!(reached, Ok(Ok(_)))
    }
}

impl Drop for ScreenFeed {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.queue.pending.lock() {
            pending.closed = true;
        }
        if let Ok(task) = &self.task {
            task.abort();
        }
    }
}

/// Takes what is queued: `None` once the feed is dropped.
fn take(queue: &Queue) -> Option<Vec<Feed>> {
    let mut pending = queue.pending.lock().ok()?;
    if pending.closed {
        return None;
    }
    pending.bytes = 0;
    Some(pending.feeds.drain(..).collect())
}

async fn run(queue: Arc<Queue>, screen: Arc<Mutex<Screen>>, parsed: watch::Sender<u64>) {
    let mut frozen = false;
    let mut last_fed = Instant::now();
    let mut pace = Pace::default();
    // One timer, moved on only when it fires early: a timer set anew for each batch makes the
    // runtime wake its own reactor (a write to its eventfd) on every keystroke's echo.
    let freeze = tokio::time::sleep(FREEZE_AFTER);
    tokio::pin!(freeze);
    loop {
        if frozen {
            queue.wake.notified().await;
            freeze.as_mut().reset(Instant::now() + FREEZE_AFTER);
        } else {
            tokio::select! {
                () = queue.wake.notified() => {}
                () = &mut freeze => {
                    let due = last_fed + FREEZE_AFTER;
                    if Instant::now() < due {
                        freeze.as_mut().reset(due);
                    } else {
                        if let Ok(mut s) = screen.lock() {
                            s.freeze();
                        }
                        frozen = true;
                    }
                    continue;
                }
            }
        }
        // The viewers' tasks, woken by the same output, go first: the screen is never in the
        // way of an echo.
        tokio::task::yield_now().await;
        let Some(batch) = take(&queue) else { return };
        if batch.is_empty() {
            continue;
        }
        frozen = false;
        last_fed = Instant::now();
        let total: usize = batch.iter().map(|f| f.bytes.len()).sum();
        let parsed_to = if total < INLINE_BATCH {
            parse(&screen, &batch)
        } else {
            let screen = screen.clone();
            // A parse that panicked ends the feed, as a poisoned screen does.
            tokio::task::spawn_blocking(move || parse(&screen, &batch))
                .await
                .unwrap_or(None)
        };
        let Some((offset, title)) = parsed_to else {
            return;
        };
        queue.set_title(title);
        parsed.send_replace(offset);
        if pace.flooding(total, Instant::now()) {
            tokio::time::sleep(FLOOD_PAUSE).await;
        }
    }
}

/// Tells a flood from ordinary output by the bytes parsed in the last [`FLOOD_PAUSE`]: a
/// flood arrives as many small reads, each parsed as soon as it is queued, so the size of one
/// batch does not show it, the rate does.
#[derive(Default)]
struct Pace {
    since: Option<Instant>,
    bytes: usize,
}

impl Pace {
    /// Counts a parsed batch of `bytes`; whether [`FLOOD_BYTES`] bytes or more have been
    /// parsed within [`FLOOD_PAUSE`], so that the parser should rest (it then starts counting
    /// anew).
    fn flooding(&mut self, bytes: usize, now: Instant) -> bool {
        match self.since {
            Some(since) if now.duration_since(since) < FLOOD_PAUSE => self.bytes += bytes,
            _ => {
                self.since = Some(now);
                self.bytes = bytes;
            }
        }
        let flooding = self.bytes >= FLOOD_BYTES;
        if flooding {
            *self = Pace::default();
        }
        flooding
    }
}

/// Feeds a batch to the screen; after dropped output (a gap before a feed) it resumes at the
/// next line start, so the dropped bytes leave no half line, unless the output is one long
/// line ([`resume_point`]; the screen always ends where the output ends). When the batch
/// itself starts after a gap, it starts at the last [`kept_lines`] line starts instead
/// ([`line_cut`]): the lines before them would scroll past the screen and its scrollback
/// anyway. Returns the screen's offset and its title.
fn parse(screen: &Mutex<Screen>, batch: &[Feed]) -> Option<(u64, Option<Arc<str>>)> {
    let mut s = screen.lock().ok()?;
    parse_into(&mut s, batch);
    Some((s.offset(), s.title().cloned()))
}

/// [`parse`] on a screen already locked.
fn parse_into(s: &mut Screen, batch: &[Feed]) {
    let cut = match batch.first() {
        Some(feed) if feed.offset > s.offset() => {
            let rows = batch.iter().map(|f| f.rows).max().unwrap_or(feed.rows);
            line_cut(batch, kept_lines(rows))
        }
        _ => None,
    };
    let first = cut.map_or(0, |(feed, _)| feed);
    // Where parsing resumes after a gap met inside the batch: a later feed, and the position in it.
    let mut skip_to = None;
    for (i, feed) in batch.iter().enumerate().skip(first) {
        s.resize(feed.cols, feed.rows);
        let from = if let Some((_, from)) = cut.filter(|_| i == first) {
            s.to_line_start();
            from
        } else if let Some((at, from)) = skip_to {
            if i < at {
                continue;
            }
            skip_to = None;
            s.to_line_start();
            from
        } else if feed.offset > s.offset() {
            match resume_point(&batch[i..], s.size().0) {
                Some((0, from)) => {
                    s.to_line_start();
                    from
                }
                Some((later, from)) => {
                    skip_to = Some((i + later, from));
                    continue;
                }
                None => 0,
            }
        } else {
            0
        };
        s.feed(feed.offset + from as u64, &feed.bytes[from..]);
    }
}

/// Where output resumes after a gap before `feeds`: after the first newline (the feed's index
/// and the position after it), so that the dropped bytes leave no half line. `None` when the
/// output goes on from the gap itself: there is no newline left, or the part of a line before
/// it fills a row of `cols` or more — one long line (a minified file, `base64 -w 0`), whose
/// rows are on a real terminal's screen too, and whose end (`…DONE`) must not be dropped.
fn resume_point(feeds: &[Feed], cols: u16) -> Option<(usize, usize)> {
    let mut before = 0;
    for (i, feed) in feeds.iter().enumerate() {
        match feed.bytes.iter().position(|&b| b == b'\n') {
            Some(at) if before + at < usize::from(cols) => return Some((i, at + 1)),
            Some(_) => return None,
            None => before += feed.bytes.len(),
        }
    }
    None
}

/// How many of a batch's last lines are parsed after a gap: the screen's rows and scrollback,
/// and the screen's rows once more for output that moves the cursor up (a progress line).
fn kept_lines(rows: u16) -> usize {
    2 * usize::from(rows) + super::SCROLLBACK_LINES
}

/// Where the last `lines` lines of a batch start: the feed's index and the position after the
/// newline in it; `None` if the batch has fewer lines.
fn line_cut(batch: &[Feed], lines: usize) -> Option<(usize, usize)> {
    let newlines = batch.iter().enumerate().rev().flat_map(|(i, feed)| {
        let at = feed.bytes.iter().enumerate().rev();
        at.filter(|(_, b)| **b == b'\n')
            .map(move |(at, _)| (i, at + 1))
    });
    newlines.take(lines + 1).nth(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: u16 = 80;
    const ROWS: u16 = 24;

    /// `count` numbered lines, cut into feeds of 4000 bytes (not at line ends) from `offset`.
    fn feeds(offset: u64, count: usize) -> (Vec<u8>, Vec<Feed>) {
        let stream: Vec<u8> = (0..count)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let mut at = offset;
        let batch = stream
            .chunks(4000)
            .map(|chunk| {
                let feed = Feed {
                    offset: at,
                    bytes: Bytes::copy_from_slice(chunk),
                    cols: COLS,
                    rows: ROWS,
                };
                at += chunk.len() as u64;
                feed
            })
            .collect();
        (stream, batch)
    }

    fn text_after_gap(count: usize) -> (String, String) {
        let screen = Mutex::new(Screen::new(COLS, ROWS));
        if let Ok(mut s) = screen.lock() {
            s.feed(0, b"before the gap\r\n");
        }
        let (stream, batch) = feeds(100_000, count);
        let end = parse(&screen, &batch).map(|(end, _)| end);
        assert_eq!(end, Some(100_000 + stream.len() as u64));
        let mut whole = Screen::new(COLS, ROWS);
        whole.feed(0, &stream);
        let text = screen.lock().map(|mut s| s.text()).unwrap_or_default();
        (text, whole.text())
    }

    #[test]
    fn after_a_gap_only_the_lines_that_stay_are_parsed_and_the_screen_is_the_same() {
        let count = 5000;
        let (stream, batch) = feeds(0, count);
        let kept = kept_lines(ROWS);
        let (feed, at) = line_cut(&batch, kept).expect("more lines than are kept");
        let start = batch[feed].offset as usize + at;
        assert_eq!(
            &stream[start..start + 10],
            format!("line {}\r", count - kept).as_bytes()
        );

        let (text, whole) = text_after_gap(count);
        assert_eq!(text, whole);
        // The scrollback and the screen, whose last row is the empty line after the last one.
        let shown = crate::screen::SCROLLBACK_LINES + usize::from(ROWS) - 1;
        assert!(text.starts_with(&format!("line {}\n", count - shown)));
    }

    #[test]
    fn a_short_batch_after_a_gap_resumes_at_its_first_line_start() {
        let (_, batch) = feeds(0, 50);
        assert!(line_cut(&batch, kept_lines(ROWS)).is_none());
        let (text, _) = text_after_gap(50);
        // After a gap the batch might begin mid-line: the screen resumes after its first
        // newline, so "line 0" is skipped.
        assert!(text.starts_with("before the gap\nline 1\n"), "{text}");
        assert!(text.ends_with("line 49\n"), "{text}");
    }

    /// A snapshot asked for while the screen is behind the ring's start stands for the ring's
    /// end: the ring's tail is parsed first (only its last lines after the gap), and the parser
    /// then says the screen has caught up, as the end of a session waits for.
    #[tokio::test]
    async fn a_snapshot_behind_the_ring_parses_its_tail_first() {
        let mut feed = ScreenFeed::start(COLS, ROWS);
        feed.feed(0, Bytes::from_static(b"old\r\n"), (COLS, ROWS));
        assert!(feed.caught_up(5, Duration::from_secs(5)).await);
        let (stream, _) = feeds(0, 5000);
        let (ring_start, ring_end) = (1_000_000, 1_000_000 + stream.len() as u64);
        let mut asked = None;
        let snapshot = feed
            .snapshot_from(
                ring_start,
                |most| {
                    asked = Some(most);
                    (ring_start, Bytes::from(stream.clone()))
                },
                (COLS, ROWS),
            )
            .expect("a snapshot");
        assert_eq!(asked, Some(CATCH_UP_BYTES));
        assert_eq!(snapshot.offset, ring_end);
        let shown = String::from_utf8_lossy(&snapshot.bytes);
        assert!(shown.contains("line 4999"), "{shown}");
        assert!(!shown.contains("old"), "older than the scrollback: {shown}");
        assert!(feed.caught_up(ring_end, Duration::from_secs(5)).await);

        // A screen already inside the ring is taken as it is.
        let again = feed.snapshot_from(ring_start, |_| unreachable!("not behind"), (COLS, ROWS));
        assert_eq!(again.map(|s| s.offset), Some(ring_end));
    }

    /// Output resumed after a gap starts on a line of its own, even when what the screen had
    /// before the gap ended in the middle of a line.
    #[test]
    fn after_a_gap_the_resumed_line_does_not_go_on_from_an_older_one() {
        let screen = Mutex::new(Screen::new(COLS, ROWS));
        if let Ok(mut s) = screen.lock() {
            s.feed(0, b"half a li");
        }
        let (_, batch) = feeds(100_000, 50);
        parse(&screen, &batch);
        let text = screen.lock().map(|mut s| s.text()).unwrap_or_default();
        assert!(text.starts_with("half a li\nline 1\nline 2\n"), "{text}");
    }

    /// The text of a screen that had 30 short lines, then, after a gap, a long line of
    /// [`PARSE_BUDGET`] letters followed by `end`, in feeds of 4000 bytes.
    fn text_after_a_gap_in_a_long_line(end: &[u8]) -> (String, Vec<u8>) {
        let screen = Mutex::new(Screen::new(COLS, ROWS));
        let (before, _) = feeds(0, 30);
        if let Ok(mut s) = screen.lock() {
            s.feed(0, &before);
        }
        let mut long: Vec<u8> = (0..PARSE_BUDGET).map(|i| b'a' + (i % 26) as u8).collect();
        long.extend_from_slice(end);
        let start = 1_000_000;
        let batch: Vec<Feed> = long
            .chunks(4000)
            .enumerate()
            .map(|(i, chunk)| Feed {
                offset: start + (i * 4000) as u64,
                bytes: Bytes::copy_from_slice(chunk),
                cols: COLS,
                rows: ROWS,
            })
            .collect();
        assert_eq!(
            parse(&screen, &batch).map(|(end, _)| end),
            Some(start + long.len() as u64)
        );
        let text = screen.lock().map(|mut s| s.text()).unwrap_or_default();
        (text, long)
    }

    /// A gap inside one long line resumes at the gap, not after the next newline: the line's
    /// rows fill the scrollback and the screen, as they do on a real terminal, none of the
    /// lines from before the gap stay among them, and the line's end is kept.
    #[test]
    fn a_gap_inside_one_long_line_leaves_that_line_and_its_end_on_the_screen() {
        for end in [&b""[..], b"DONE\r\n"] {
            let (text, long) = text_after_a_gap_in_a_long_line(end);
            assert!(!text.contains("line"), "{text}");
            let rows: Vec<&str> = text.lines().collect();
            let kept = crate::screen::SCROLLBACK_LINES + usize::from(ROWS);
            // The last row is the empty one after `DONE`, trimmed from the text.
            assert_eq!(rows.len(), kept - end.len().min(1), "{text}");
            let joined: String = rows.concat();
            let tail = String::from_utf8_lossy(&long[long.len() - 1000..]);
            assert!(joined.ends_with(tail.trim_end()), "{text}");
        }
    }

    /// A flood that arrives as many small reads (each parsed as soon as it is queued, none of
    /// them a large batch) rests the parser too, and the screen still ends where it ends.
    #[tokio::test(start_paused = true)]
    async fn a_flood_of_small_reads_rests_the_parser_and_ends_on_its_last_line() {
        let mut feed = ScreenFeed::start(COLS, ROWS);
        let stream: Vec<u8> = (0..100_000)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let mut end = 0;
        for chunk in stream.chunks(1000) {
            feed.feed(end, Bytes::copy_from_slice(chunk), (COLS, ROWS));
            end += chunk.len() as u64;
            // The parser's turn (paused time stands still while a task is ready to run).
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
        }
        let parsed = *feed.parsed.borrow();
        assert!(
            parsed < PARSE_BUDGET as u64,
            "the parser kept up with {end} bytes of flood ({parsed} parsed)"
        );
        assert!(feed.caught_up(end, Duration::from_secs(1)).await);
        let text = feed.text_at(end).map(|(text, _)| text).unwrap_or_default();
        assert!(text.trim_end().ends_with("line 99999"), "{text}");
    }

    /// A screen is frozen only once its output has been quiet for [`FREEZE_AFTER`], however
    /// long the session has been printing; the timer is not set anew for each batch.
    #[tokio::test(start_paused = true)]
    async fn the_screen_freezes_once_output_has_been_quiet_for_the_whole_while() {
        let mut feed = ScreenFeed::start(COLS, ROWS);
        let frozen = |feed: &ScreenFeed| feed.screen.lock().is_ok_and(|s| s.is_frozen());
        let mut end = 0;
        for _ in 0..3 {
            feed.feed(end, Bytes::from_static(b"tick\r\n"), (COLS, ROWS));
            end += 6;
            assert!(feed.caught_up(end, Duration::from_secs(1)).await);
            // Paused time: the sleep ends as soon as every task waits.
            tokio::time::sleep(FREEZE_AFTER - Duration::from_secs(1)).await;
            assert!(!frozen(&feed), "frozen while output came every 9 s");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(frozen(&feed), "not frozen after 11 s of quiet");
    }
}
