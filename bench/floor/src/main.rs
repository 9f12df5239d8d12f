//! The floor: the least a web terminal can do per keystroke and per byte, to measure ours and
//! ttyd against. One thread, one `epoll_wait` per event, no allocation on the byte path: bytes
//! from the WebSocket go to the PTY with one `write`, and each PTY read goes out as one frame
//! with one `send`. It speaks ttyd's protocol (subprotocol `tty`, `0` + bytes both ways) and
//! takes ttyd's command line (`-p PORT -i ADDR -W COMMAND...`), so that `bench/echo_cpu.py`,
//! `bench/throughput_cpu.py` and `bench/flood_echo.py` run it as they run ttyd (the binary's
//! name ends in `ttyd`). One connection at a time, one child per connection; no
//! authentication, no resize, no flow control beyond a blocking send. Not a server to use.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use base64::Engine;
use sha1::{Digest, Sha1};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut port = "7681".to_string();
    let mut addr = "127.0.0.1".to_string();
    let mut command = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "-p" => {
                port = args.get(i + 1).cloned().unwrap_or(port);
                i += 2;
            }
            "-i" => {
                addr = args.get(i + 1).cloned().unwrap_or(addr);
                i += 2;
            }
            "-W" => i += 1,
            _ => {
                command = args[i..].to_vec();
                break;
            }
        }
    }
    if command.is_empty() {
        command = vec!["sh".into()];
    }
    let listener = TcpListener::bind(format!("{addr}:{port}"))?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        // A connection that closes before its handshake (a port probe) is not a session.
        if let Ok(Some((stream, rest))) = handshake(stream) {
            let _ = serve(stream, rest, &command);
        }
    }
    Ok(())
}

/// Reads the HTTP upgrade and answers it; the bytes read past the request come back with it.
fn handshake(mut stream: TcpStream) -> io::Result<Option<(TcpStream, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: tty\r\n\r\n"
    )?;
    stream.set_nodelay(true)?;
    Ok(Some((stream, buf[end..].to_vec())))
}

/// One client frame parsed off the front of `buf`: its opcode and unmasked payload, and how
/// many bytes it took; `None` until the whole frame is there.
fn frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let mask: [u8; 4] = if masked {
        let m = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        m
    } else {
        [0; 4]
    };
    let end = at.checked_add(len)?;
    let payload = buf.get(at..end)?;
    let data = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Some((opcode, data, end))
}

/// A server frame's header for a binary payload of `len` bytes.
fn header(len: usize, out: &mut Vec<u8>) {
    out.push(0x82);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xffff {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn serve(mut stream: TcpStream, mut inbuf: Vec<u8>, command: &[String]) -> io::Result<()> {
    let (mut master, mut slave): (RawFd, RawFd) = (-1, -1);
    let ws = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds; the name and termios pointers may be null.
    cvt(unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    })?;
    // SAFETY: both fds were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: setsid and TIOCSCTTY are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let m = master.as_raw_fd();
    // SAFETY: fcntl on an fd owned here.
    unsafe {
        libc::fcntl(
            m,
            libc::F_SETFL,
            libc::fcntl(m, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
    let s = stream.as_raw_fd();
    // SAFETY: epoll_create1 returns a new fd; the events registered point at fds that live
    // until the end of this function.
    let ep = unsafe { OwnedFd::from_raw_fd(cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?) };
    for fd in [s, m] {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
    }
    let mut out = Vec::with_capacity(70 * 1024);
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut opened = false;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    'run: loop {
        // SAFETY: `events` has room for its length.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), 8, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        for ev in &events[..n as usize] {
            if ev.u64 == s as u64 {
                let got = stream.read(&mut rbuf)?;
                if got == 0 {
                    break 'run;
                }
                inbuf.extend_from_slice(&rbuf[..got]);
                while let Some((opcode, data, used)) = frame(&inbuf) {
                    inbuf.drain(..used);
                    match opcode {
                        8 => break 'run,
                        1 | 2 if !opened => opened = true,
                        1 | 2 if data.first() == Some(&b'0') => {
                            let mut rest = &data[1..];
                            while !rest.is_empty() {
                                // SAFETY: writes from a live slice.
                                let w = unsafe { libc::write(m, rest.as_ptr().cast(), rest.len()) };
                                if w > 0 {
                                    rest = &rest[w as usize..];
                                } else if io::Error::last_os_error().kind()
                                    != io::ErrorKind::WouldBlock
                                {
                                    break 'run;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            } else {
                // SAFETY: reads into a live buffer, leaving room for the frame's header.
                let got = unsafe { libc::read(m, rbuf.as_mut_ptr().cast(), rbuf.len() - 16) };
                if got <= 0 {
                    if got < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                        continue;
                    }
                    break 'run;
                }
                out.clear();
                header(got as usize + 1, &mut out);
                out.push(b'0');
                out.extend_from_slice(&rbuf[..got as usize]);
                stream.write_all(&out)?;
            }
        }
    }
    let _ = stream.write_all(&[0x88, 0]);
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
