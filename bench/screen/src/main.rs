//! Which terminal emulator crate the server keeps a screen with (issue 15): parse speed on three
//! kinds of output and heap bytes per idle 80×24 screen, for `avt`, `vt100` and
//! `alacritty_terminal`. Run: `cargo run --release` in this folder (docs/benchmarks.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes, so "memory per idle screen" is what the emulator itself holds.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}
#[global_allocator]
static A: Counting = Counting;

const COLS: u16 = 80;
const ROWS: u16 = 24;
const SCROLLBACK: usize = 1000;

/// Deterministic pseudo-random bytes (xorshift), so every run parses the same corpus.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn corpora() -> Vec<(&'static str, Vec<u8>)> {
    let mut seed = 0x1234_5678_9abc_def1;
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut plain = Vec::new();
    while plain.len() < 32 << 20 {
        for _ in 0..76 {
            plain.push(B64[(rng(&mut seed) % 64) as usize]);
        }
        plain.extend_from_slice(b"\r\n");
    }
    // `ls --color` / compiler output: short coloured words.
    let mut colour = Vec::new();
    while colour.len() < 32 << 20 {
        let c = 31 + rng(&mut seed) % 7;
        colour.extend_from_slice(format!("\x1b[1;{c}mword{}\x1b[0m ", rng(&mut seed) % 1000).as_bytes());
        if rng(&mut seed) % 8 == 0 {
            colour.extend_from_slice(b"\r\n");
        }
    }
    // A full-screen TUI redrawing: cursor moves, 256 colours, wide characters, a scroll region.
    let mut tui = b"\x1b[?1049h\x1b[2;23r".to_vec();
    while tui.len() < 32 << 20 {
        let (r, c) = (1 + rng(&mut seed) % 24, 1 + rng(&mut seed) % 70);
        let fg = rng(&mut seed) % 256;
        tui.extend_from_slice(format!("\x1b[{r};{c}H\x1b[38;5;{fg}m界面 text\x1b[K\x1b[m").as_bytes());
        if rng(&mut seed) % 16 == 0 {
            tui.extend_from_slice(b"\x1b[23;1H\n");
        }
    }
    vec![("base64 lines", plain), ("coloured words", colour), ("TUI redraws", tui)]
}

trait Emu {
    fn name() -> &'static str;
    fn new() -> Self;
    fn feed(&mut self, bytes: &[u8]);
}

struct Avt(avt::Terminal, Vec<u8>);
impl Emu for Avt {
    fn name() -> &'static str {
        "avt 0.19"
    }
    fn new() -> Self {
        Avt(avt::Terminal::with_scrollback(COLS as usize, ROWS as usize, Some(SCROLLBACK)).unwrap(), Vec::new())
    }
    fn feed(&mut self, bytes: &[u8]) {
        // avt takes text: decode UTF-8, carrying an incomplete tail to the next chunk.
        self.1.extend_from_slice(bytes);
        let n = match std::str::from_utf8(&self.1) {
            Ok(s) => {
                self.0.feed(s);
                self.1.len()
            }
            Err(e) => {
                let ok = e.valid_up_to();
                self.0.feed(std::str::from_utf8(&self.1[..ok]).unwrap());
                ok
            }
        };
        self.1.drain(..n);
    }
}

struct Vt100(vt100::Parser);
impl Emu for Vt100 {
    fn name() -> &'static str {
        "vt100 0.16"
    }
    fn new() -> Self {
        Vt100(vt100::Parser::new(ROWS, COLS, SCROLLBACK))
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.0.process(bytes);
    }
}

struct Alacritty(
    alacritty_terminal::Term<alacritty_terminal::event::VoidListener>,
    alacritty_terminal::vte::ansi::Processor,
);
impl Emu for Alacritty {
    fn name() -> &'static str {
        "alacritty_terminal 0.26"
    }
    fn new() -> Self {
        let config = alacritty_terminal::term::Config { scrolling_history: SCROLLBACK, ..Default::default() };
        let size = alacritty_terminal::term::test::TermSize::new(COLS as usize, ROWS as usize);
        Alacritty(
            alacritty_terminal::Term::new(config, &size, alacritty_terminal::event::VoidListener),
            alacritty_terminal::vte::ansi::Processor::new(),
        )
    }
    fn feed(&mut self, bytes: &[u8]) {
        self.1.advance(&mut self.0, bytes);
    }
}

const PROMPT: &[u8] = b"\x1b[?2004h\x1b]0;user@host: ~\x07\x1b[01;32muser@host\x1b[00m:\x1b[01;34m~\x1b[00m$ ";

fn measure<E: Emu>(corpora: &[(&str, Vec<u8>)]) {
    let before = LIVE.load(Ordering::Relaxed);
    let mut idle: Vec<E> = (0..100).map(|_| E::new()).collect();
    for e in &mut idle {
        e.feed(PROMPT);
    }
    let per_idle = (LIVE.load(Ordering::Relaxed) - before) / 100;
    drop(idle);
    let mut line = format!("| {} | {} B |", E::name(), per_idle);
    for (_, bytes) in corpora {
        let mut e = E::new();
        let t = Instant::now();
        for chunk in bytes.chunks(16 * 1024) {
            e.feed(chunk);
        }
        let mbs = bytes.len() as f64 / t.elapsed().as_secs_f64() / 1e6;
        line += &format!(" {mbs:.0} MB/s |");
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut full = E::new();
    full.feed(&corpora[0].1[..4 << 20]);
    line += &format!(" {} kB |", (LIVE.load(Ordering::Relaxed) - before) / 1024);
    println!("{line}");
}

fn main() {
    let corpora = corpora();
    let names: Vec<&str> = corpora.iter().map(|c| c.0).collect();
    println!("| crate | heap per idle 80×24 screen (a prompt) | parse: {} | heap with {SCROLLBACK} lines of scrollback |", names.join(" | "));
    println!("|---|---|---|---|---|---|");
    measure::<Avt>(&corpora);
    measure::<Vt100>(&corpora);
    measure::<Alacritty>(&corpora);
}
