//! Structured logs: JSON lines in rotated files, human text on a terminal, never blocking a request.
//!
//! The chain is `Logger → level filter → DroppingAsync → (JSON to claude-manager.log,
//! JSON warnings+ to error.log, text to stderr when it is a TTY)`. Formatting and file IO happen on
//! slog-async's own thread; a full channel drops the record and counts it ([`LogHandle::dropped`]),
//! so a burst of logging never stalls the runtime. Rotation is ours ([`RotatingFile`]): slog has
//! none, and a rotation must never cut a JSON record in half, so whole lines are written at once.
//! Terminal content and secrets are never passed to the logger (DESIGN "Ops").

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use slog::{o, Drain, FnValue, Level, Logger, Never, OwnedKVList, PushFnValue, Record};

use crate::time::now_rfc3339;

/// Records buffered between the logging callers and the writer thread before records are dropped.
const LOG_CHANNEL_RECORDS: usize = 8192;

/// Where and how much to log.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub level: Level,
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub backups: usize,
    /// Also write human-readable lines to stderr (only when it is a terminal, in practice).
    pub stderr: bool,
}

/// Keeps the writer thread alive (dropping it flushes the last records) and exposes the drop count.
pub struct LogHandle {
    pub logger: Logger,
    dropped: Arc<AtomicU64>,
    guard: Option<slog_async::AsyncGuard>,
}

impl LogHandle {
    /// Records dropped because the writer could not keep up (shown in detailed health).
    pub fn dropped(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// Flushes every queued record and stops the writer thread.
    pub fn flush(&mut self) {
        drop(self.guard.take());
    }
}

impl Drop for LogHandle {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Opens the log files and starts the writer thread.
pub fn init(settings: &LogSettings) -> io::Result<LogHandle> {
    std::fs::create_dir_all(&settings.dir)?;
    let main = RotatingFile::open(
        settings.dir.join("claude-manager.log"),
        settings.max_bytes,
        settings.backups,
    )?;
    let errors = RotatingFile::open(
        settings.dir.join("error.log"),
        settings.max_bytes,
        settings.backups,
    )?;
    let main = json_drain(main);
    let errors = json_drain(errors).filter_level(Level::Warning);
    let term: Option<slog_term::FullFormat<slog_term::TermDecorator>> =
        settings.stderr.then(|| {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            slog_term::FullFormat::new(decorator).build()
        });
    let files = slog::Duplicate::new(main, errors).ignore_res();
    let writer = OptionalDuplicate {
        first: files,
        second: term,
    };

    let (core, guard) = slog_async::AsyncCore::custom(writer)
        .chan_size(LOG_CHANNEL_RECORDS)
        .blocking(false)
        .thread_name("cm-log-writer".into())
        .build_with_guard();
    let dropped = Arc::new(AtomicU64::new(0));
    let drain = DroppingAsync {
        inner: core,
        dropped: dropped.clone(),
    }
    .filter_level(settings.level)
    .ignore_res();
    let logger = Logger::root(drain, o!());
    Ok(LogHandle {
        logger,
        dropped,
        guard: Some(guard),
    })
}

/// A logger that discards everything, for library users and tests that do not care.
pub fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

/// JSON lines with the fields every record carries: ts (RFC 3339 UTC), level, msg, module.
fn json_drain<W: Write + Send + 'static>(w: W) -> impl Drain<Ok = (), Err = Never> + Send {
    slog_json::Json::new(w)
        .set_newlines(true)
        .add_key_value(o!(
            "ts" => FnValue(|_: &Record| now_rfc3339()),
            "level" => FnValue(|r: &Record| level_name(r.level())),
            "msg" => PushFnValue(|r: &Record, ser| ser.emit(r.msg())),
            "module" => FnValue(|r: &Record| r.module()),
        ))
        .build()
        .ignore_res()
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Critical => "critical",
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

/// The async front: never blocks the caller; a full channel drops the record and counts it.
struct DroppingAsync {
    inner: slog_async::AsyncCore,
    dropped: Arc<AtomicU64>,
}

impl Drain for DroppingAsync {
    type Ok = ();
    type Err = Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), Never> {
        if self.inner.log(record, values).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Files always, stderr text only when asked.
struct OptionalDuplicate<A, B> {
    first: A,
    second: Option<B>,
}

impl<A, B> Drain for OptionalDuplicate<A, B>
where
    A: Drain<Ok = (), Err = Never>,
    B: Drain,
{
    type Ok = ();
    type Err = Never;
    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), Never> {
        self.first.log(record, values)?;
        if let Some(second) = &self.second {
            let _ = second.log(record, values);
        }
        Ok(())
    }
}

/// A size-rotated log file: `name`, `name.1` (newest backup) … `name.N`.
///
/// Bytes are buffered until a newline and each whole line is written with one `write_all`, so a
/// rotation always falls between records and never cuts one in half.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    backups: usize,
    line: Vec<u8>,
}

impl RotatingFile {
    pub fn open(path: PathBuf, max_bytes: u64, backups: usize) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            path,
            file,
            size,
            max_bytes,
            backups,
            line: Vec::with_capacity(1024),
        })
    }

    fn backup_path(&self, n: usize) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.backups == 0 {
            self.file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?;
        } else {
            let _ = std::fs::remove_file(self.backup_path(self.backups));
            for n in (1..self.backups).rev() {
                let from = self.backup_path(n);
                if from.exists() {
                    std::fs::rename(&from, self.backup_path(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.backup_path(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }

    fn write_line(&mut self) -> io::Result<()> {
        if self.size > 0 && self.size + self.line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        self.line.clear();
        Ok(())
    }

    /// The files this log currently has on disk, newest first.
    pub fn paths(path: &Path, backups: usize) -> Vec<PathBuf> {
        let mut out = vec![path.to_path_buf()];
        for n in 1..=backups {
            let mut s = path.as_os_str().to_owned();
            s.push(format!(".{n}"));
            out.push(PathBuf::from(s));
        }
        out.into_iter().filter(|p| p.exists()).collect()
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=pos]);
            self.write_line()?;
            rest = &rest[pos + 1..];
        }
        self.line.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.write_line()?;
        }
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_exactly_n_backups_and_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut f = RotatingFile::open(path.clone(), 100, 3).unwrap();
        for i in 0..200 {
            // Written in pieces, like slog-json does: the line must still land whole.
            write!(f, "{{\"n\":").unwrap();
            writeln!(f, "{i}}}").unwrap();
        }
        f.flush().unwrap();
        let paths = RotatingFile::paths(&path, 10);
        assert_eq!(paths.len(), 4, "main + 3 backups: {paths:?}");
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.len() <= 100, "{p:?} is {} bytes", text.len());
            for line in text.lines() {
                assert!(
                    line.starts_with("{\"n\":") && line.ends_with('}'),
                    "cut line {line:?}"
                );
            }
        }
    }
}
