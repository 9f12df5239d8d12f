//! The server's side of the terminal: the master fd, registered with tokio's reactor and shared
//! by the [`PtyReader`] (output), the [`PtyWriter`] (input) and any [`PtyResizer`]s. The fd
//! closes, hanging up the child's terminal, when the last of them is dropped.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{PtyError, WindowSize};

/// The output side of the master. One task should own it and read continuously.
#[derive(Debug)]
pub struct PtyReader {
    master: Arc<AsyncFd<File>>,
}

/// The input and control side of the master. The master fd closes (hanging up the child's
/// terminal) once both the reader and the writer are dropped.
#[derive(Debug)]
pub struct PtyWriter {
    master: Arc<AsyncFd<File>>,
}

/// Changes the terminal size from outside the task that writes input (cloneable), so a resize
/// is never stuck behind input the child is not reading.
#[derive(Debug, Clone)]
pub struct PtyResizer {
    master: Arc<AsyncFd<File>>,
}

impl PtyResizer {
    /// Changes the terminal size; the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: WindowSize) -> Result<(), PtyError> {
        if size.cols == 0 || size.rows == 0 {
            return Err(PtyError::InvalidSize {
                cols: size.cols,
                rows: size.rows,
            });
        }
        set_window_size(self.master.get_ref().as_fd(), size).map_err(PtyError::Resize)
    }

    /// A second fd for the master (close-on-exec), so the terminal outlives this process's
    /// handles: what a reload hands to the next image.
    pub fn dup_master(&self) -> io::Result<std::os::fd::OwnedFd> {
        self.master.get_ref().as_fd().try_clone_to_owned()
    }

    /// Output bytes the child wrote that nobody has read from the master yet (`FIONREAD`);
    /// 0 if the kernel will not say.
    pub fn unread_output(&self) -> usize {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one `c_int` through the pointer, which outlives the call.
        let rc = unsafe { libc::ioctl(self.master.get_ref().as_raw_fd(), libc::FIONREAD, &mut n) };
        if rc < 0 {
            0
        } else {
            usize::try_from(n).unwrap_or(0)
        }
    }
}

/// Makes the master non-blocking and registers it with the reactor for reading only; returns its
/// two halves.
///
/// Not for writing: a master registered for both is polled by every `epoll_wait` after each
/// write to it (the write wakes its write queue), and polling a PTY master whose output is still
/// on its way through the kernel waits for that output first (`n_tty_poll` flushes the PTY's
/// buffer work). A keystroke's round trip then put the session's thread to sleep once more: 2.8
/// wakeups per keystroke against 2.0 for reading only (docs/benchmarks.md, "Reading only").
/// Writes go straight to the fd; the rare write that finds the input queue full waits on a
/// second fd, registered for writing only while it waits ([`PtyWriter::write_all`]).
pub(super) fn register_master(master: File) -> Result<(PtyReader, PtyWriter), PtyError> {
    let flags = fcntl(master.as_fd(), FcntlArg::F_GETFL).map_err(|errno| PtyError::Allocate {
        step: "get master flags",
        source: errno.into(),
    })?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(master.as_fd(), FcntlArg::F_SETFL(flags)).map_err(|errno| PtyError::Allocate {
        step: "set master non-blocking",
        source: errno.into(),
    })?;
    // SAFETY: the `File` owns its fd and keeps returning that same fd until it is dropped,
    // which happens only when the `AsyncFd` is.
    let registered = unsafe { AsyncFd::register_with_interest(master, Interest::READABLE) };
    let master = registered
        .map(Arc::new)
        .map_err(|error| PtyError::Allocate {
            step: "register with the reactor",
            source: error.into(),
        })?;
    let reader = PtyReader {
        master: Arc::clone(&master),
    };
    Ok((reader, PtyWriter { master }))
}

pub(super) fn set_window_size(fd: BorrowedFd<'_>, size: WindowSize) -> io::Result<()> {
    let winsize = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which outlives the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &winsize) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The most one [`PtyReader::read_chunk`] returns: one read returns at most 4 KiB (the line
/// discipline's buffer), and while output flows it reads on ([`read_on`]).
pub const READ_CHUNK_BYTES: usize = 16 * 1024;

thread_local! {
    /// What [`PtyReader::read_chunk`] reads into: one per runtime thread, zeroed once, instead
    /// of a buffer on the stack that every read would first have to clear.
    static READ_BUF: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK_BYTES].into_boxed_slice());
}

impl PtyReader {
    /// The next output, as its own `Bytes`; empty at the end of output. Reads into the thread's
    /// buffer, not one in the task: an idle session holds no read buffer. Cancel-safe.
    pub async fn read_chunk(&mut self) -> io::Result<bytes::Bytes> {
        loop {
            let mut ready = self.master.readable().await?;
            let read = READ_BUF.with_borrow_mut(|buf| {
                read_ready(&mut ready, buf).map(|read| {
                    read.map(|n| {
                        let n = read_on(ready.get_inner(), buf, n);
                        bytes::Bytes::copy_from_slice(&buf[..n])
                    })
                })
            });
            if let Some(read) = read {
                return read;
            }
        }
    }

    /// Reads output into `buf`; `Ok(0)` means the end of output (every holder of the slave has
    /// closed it). Cancel-safe: no bytes are lost if the future is dropped.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.master.readable().await?;
            if let Some(read) = read_ready(&mut ready, buf) {
                return read;
            }
        }
    }
}

/// A read at least this large means output is flowing: [`read_on`] reads again at once.
const FLOWING_BYTES: usize = 1024;
/// The most one read of a PTY master returns: the line discipline's buffer.
const LDISC_BYTES: usize = 4096;

/// After a read of `n` bytes into `buf`, reads on while output flows (the last read returned
/// [`FLOWING_BYTES`] or more) and `buf` has room for a whole read: the kernel hands a PTY's
/// output over at most [`LDISC_BYTES`] at a time, and while a program floods, more has arrived
/// by the time a read returns. So a flood is sent in fewer, larger messages — one send and one
/// wait for readiness per 12–16 KiB instead of per 2–4 KiB — and a keystroke's echo (a few
/// bytes) is sent at once. Returns the bytes in `buf`; a read that fails (no more output yet,
/// the end of output) ends the run, and the next read meets it again.
fn read_on(file: &File, buf: &mut [u8], mut n: usize) -> usize {
    let mut last = n;
    let mut file = file;
    while last >= FLOWING_BYTES && buf.len() - n >= LDISC_BYTES {
        match file.read(&mut buf[n..]) {
            Ok(more) => {
                n += more;
                last = more;
            }
            Err(_) => break,
        }
    }
    n
}

/// One read from a master the reactor said is readable: the count (0 at the end of output),
/// an error, or `None` to wait for readiness again.
///
/// A read shorter than `buf` emptied the master's queue, so the readiness is cleared at once
/// instead of by a next read that fails with EAGAIN. Output that arrives after the read is a
/// new readiness event with a new tick, which `clear_ready` leaves set: no wakeup is lost.
fn read_ready(
    ready: &mut tokio::io::unix::AsyncFdReadyGuard<'_, File>,
    buf: &mut [u8],
) -> Option<io::Result<usize>> {
    let mut file: &File = ready.get_inner();
    match file.read(buf) {
        Ok(n) => {
            if n < buf.len() {
                ready.clear_ready();
            }
            Some(Ok(n))
        }
        // Linux reports a hung-up PTY as EIO, not as a 0-byte read.
        Err(error) if error.raw_os_error() == Some(libc::EIO) => Some(Ok(0)),
        Err(error) if error.kind() == io::ErrorKind::Interrupted => None,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            ready.clear_ready();
            None
        }
        Err(error) => Some(Err(error)),
    }
}

impl PtyWriter {
    /// Writes all of `bytes` as input to the child. Waits while the child is not reading (the
    /// PTY input queue is full), so bound it with a timeout or run it off the actor's loop.
    /// Not cancel-safe: a dropped future may have written part of `bytes`.
    pub async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        // Registered for writing only while a write waits for room (`register_master`).
        let mut waiting: Option<AsyncFd<OwnedFd>> = None;
        while !bytes.is_empty() {
            let mut file: &File = self.master.get_ref();
            match file.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let room = match &waiting {
                        Some(room) => room,
                        None => {
                            let fd = self.master.get_ref().as_fd().try_clone_to_owned()?;
                            // SAFETY: the `OwnedFd` owns its fd until it is dropped, which
                            // happens only when the `AsyncFd` is.
                            let room =
                                unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) };
                            waiting.insert(room?)
                        }
                    };
                    // Registering reports the fd's state then, so room made since the write
                    // is not missed; a wakeup that finds no room is cleared and waited again.
                    room.writable().await?.clear_ready();
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Changes the terminal size; the kernel sends `SIGWINCH` to the foreground group.
    pub fn resize(&self, size: WindowSize) -> Result<(), PtyError> {
        self.resizer().resize(size)
    }

    /// A handle that resizes this terminal; it keeps the master open while held.
    pub fn resizer(&self) -> PtyResizer {
        PtyResizer {
            master: Arc::clone(&self.master),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::test_support::{
        command, kill_and_reap, read_to_end, read_until, sh, stopped, within,
    };
    use crate::pty::{spawn, ExitInfo, SpawnedPty};

    /// Reads output into `out` until it holds `len` bytes (bounded by `within`).
    async fn read_back(reader: &mut PtyReader, out: &mut Vec<u8>, len: usize) {
        within("all input back", async {
            let mut buf = [0u8; 4096];
            while out.len() < len {
                let n = reader.read(&mut buf).await.expect("read");
                assert!(n > 0, "output ended early");
                out.extend_from_slice(&buf[..n]);
            }
        })
        .await;
    }

    #[tokio::test]
    async fn input_echoes_back_through_cat() {
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&command("cat", &[])).expect("spawn cat");
        writer.write_all(b"hello\n").await.expect("write");
        let mut out = Vec::new();
        // Once echoed by the line discipline, once printed by cat; ONLCR makes "\n" "\r\n".
        read_until(&mut reader, &mut out, b"hello\r\nhello\r\n").await;
        writer.write_all(&[0x04]).await.expect("send EOF"); // ^D: end of input in cooked mode
        let exit = within("cat exit", child.wait()).await.expect("wait");
        assert_eq!(
            exit,
            ExitInfo {
                code: Some(0),
                signal: None
            }
        );
        read_to_end(&mut reader).await;
    }

    #[tokio::test]
    async fn unread_output_counts_what_the_child_wrote_and_nobody_read() {
        let SpawnedPty {
            mut reader,
            writer,
            mut child,
        } = spawn(&sh("printf hello-unread; exec sleep 30")).expect("spawn");
        let resizer = writer.resizer();
        within("the child's output in the PTY", async {
            while resizer.unread_output() < b"hello-unread".len() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"hello-unread").await;
        assert_eq!(resizer.unread_output(), 0, "all of it was read");
        kill_and_reap(&mut child).await;
    }

    /// The line discipline rewrites bytes in cooked mode (CR→NL, ^C→SIGINT, echo), so this runs
    /// the child the way a full-screen program does: it switches its own terminal to raw, then
    /// says READY. What remains to prove is that our read and write paths are 8-bit clean.
    #[tokio::test]
    async fn every_byte_value_passes_through_a_raw_mode_child() {
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&sh("stty raw -echo && printf READY && exec cat")).expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"READY").await;
        let input: Vec<u8> = (0..4).flat_map(|_| 0..=255u8).collect();
        writer.write_all(&input).await.expect("write");
        let ready_end = out.windows(5).position(|w| w == b"READY").expect("marker") + 5;
        read_back(&mut reader, &mut out, ready_end + input.len()).await;
        assert_eq!(&out[ready_end..], &input[..]);
        let exit = kill_and_reap(&mut child).await;
        assert_eq!(exit.signal, Some(libc::SIGKILL));
    }

    /// More input than the PTY holds (a few KiB), for a child that is not reading: the write
    /// waits for room, and once the child reads again every byte arrives, in order.
    #[tokio::test]
    async fn input_beyond_the_pty_waits_for_a_child_that_reads_later() {
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&sh(
            "stty raw -echo && printf READY && kill -STOP $$ && exec cat",
        ))
        .expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"READY").await;
        let ready_end = out.windows(5).position(|w| w == b"READY").expect("marker") + 5;
        stopped(child.pid()).await;
        let input: Vec<u8> = (0..64 * 1024u32).map(|i| b'a' + (i % 26) as u8).collect();
        let sent = input.clone();
        let mut writing =
            tokio::spawn(async move { writer.write_all(&sent).await.map(|()| writer) });
        // Not an interval to wait out: the write cannot finish while the child is stopped.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(300), &mut writing)
                .await
                .is_err(),
            "64 KiB were taken by a terminal nobody reads"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.pid()),
            nix::sys::signal::Signal::SIGCONT,
        )
        .expect("SIGCONT");
        read_back(&mut reader, &mut out, ready_end + input.len()).await;
        assert!(
            out[ready_end..] == input[..],
            "the input came back in order"
        );
        within("the write done", writing)
            .await
            .expect("the writer task")
            .expect("the write");
        kill_and_reap(&mut child).await;
    }

    /// Output waiting in the PTY beyond one read (the line discipline hands over at most 4 KiB
    /// at a time) comes back as one chunk: a flood is sent in fewer, larger messages.
    #[tokio::test]
    async fn output_that_flows_is_read_in_chunks_larger_than_one_read() {
        let SpawnedPty {
            mut reader,
            writer: _writer,
            mut child,
        } = spawn(&sh("head -c 8000 /dev/zero | tr '\\0' x; kill -STOP $$")).expect("spawn");
        stopped(child.pid()).await;
        let chunk = within("output", reader.read_chunk()).await.expect("read");
        assert!(
            chunk.len() > LDISC_BYTES,
            "{} of 8000 waiting bytes in the first chunk",
            chunk.len()
        );
        let mut out = chunk.to_vec();
        read_back(&mut reader, &mut out, 8000).await;
        assert!(out.iter().all(|&b| b == b'x'), "{out:?}");
        kill_and_reap(&mut child).await;
    }

    #[tokio::test]
    async fn initial_size_and_resize_are_seen_by_the_child() {
        let mut cmd = sh("stty size; read line; stty size");
        cmd.size = WindowSize {
            cols: 111,
            rows: 33,
        };
        let SpawnedPty {
            mut reader,
            mut writer,
            mut child,
        } = spawn(&cmd).expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"33 111\r\n").await;
        writer
            .resize(WindowSize {
                cols: 120,
                rows: 40,
            })
            .expect("resize");
        writer.write_all(b"\n").await.expect("write");
        read_until(&mut reader, &mut out, b"40 120\r\n").await;
        let exit = within("exit", child.wait()).await.expect("wait");
        assert_eq!(exit.code, Some(0));
    }

    #[tokio::test]
    async fn output_without_trailing_newline_arrives_before_the_end() {
        let script = "head -c 100000 /dev/zero | tr '\\0' x; printf tail-without-newline";
        let mut spawned = spawn(&sh(script)).expect("spawn");
        let out = read_to_end(&mut spawned.reader).await;
        assert_eq!(out.len(), 100_000 + "tail-without-newline".len());
        assert!(out.ends_with(b"xtail-without-newline"));
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(exit.code, Some(0));
    }
}
