//! The memory a [`ReplayBuffer`](super::ReplayBuffer) keeps its bytes in: a shared mapping of a
//! `memfd`, so the ring outlives the process that wrote it when its fd is kept elsewhere
//! (systemd's fd store, `src/handover/fdstore.rs`) — a server restarted after a crash maps the
//! same fd again and finds every byte and offset.
//!
//! Layout of the file: a 64-byte header, the session's metadata (JSON, written once by the
//! sessions supervisor) up to [`DATA_AT`], then `capacity` bytes of ring addressed by absolute
//! offset modulo `capacity`. The file is sparse: pages are only backed once written, so memory
//! grows with use as a heap buffer would. Without a memfd (`memfd_create` failed, e.g. out of
//! fds) the same layout lives in an anonymous mapping, which dies with the process.
//!
//! The header is only written once the ring is kept (its owner stores the metadata, see
//! [`ReplayBuffer::set_meta`](super::ReplayBuffer::set_meta)): without a service manager's fd
//! store nothing could ever read it, and an idle session would pay a whole page for it.
//!
//! Header (little-endian u64 words): magic, capacity, start, end, last clear end (`u64::MAX` =
//! none), flags (clear matcher state, whether `start` is a line start), metadata length.
//! `start` is stored before the bytes that evict are overwritten and `end` after the new bytes
//! are written, so a process killed at any instruction leaves a header that names only intact
//! bytes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// `CMRING` + layout version 1.
const MAGIC: u64 = u64::from_le_bytes(*b"CMRING\0\x01");
const HEADER: usize = 64;
/// Where the ring bytes begin; the metadata fits between the header and here.
pub const DATA_AT: usize = 16 << 10;
pub const META_MAX: usize = DATA_AT - HEADER;

pub const W_CAPACITY: usize = 1;
pub const W_START: usize = 2;
pub const W_END: usize = 3;
pub const W_CLEAR_END: usize = 4;
pub const W_FLAGS: usize = 5;
pub const W_META_LEN: usize = 6;

#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
    fd: Option<OwnedFd>,
}

// SAFETY: the mapping is owned by one `Mapping` (never aliased by another value of this process);
// `&self` methods only read, `&mut self` methods write, as for a `Vec<u8>`.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A new ring of `capacity` bytes: a memfd mapping, else an anonymous one.
    pub fn create(capacity: usize) -> io::Result<Mapping> {
        let len = DATA_AT
            .checked_add(capacity)
            .ok_or_else(|| io::Error::other("ring capacity too large"))?;
        match memfd(len) {
            Ok(fd) => map(len, Some(fd)),
            Err(_) => map(len, None),
        }
    }

    /// Writes the header's constant words (magic, capacity). Until then the header page is
    /// never touched, so a ring nobody keeps (no fd store) costs no page for it.
    pub fn init_header(&self) {
        self.word(0).store(MAGIC, Ordering::Relaxed);
        self.word(W_CAPACITY)
            .store((self.len - DATA_AT) as u64, Ordering::Release);
    }

    /// Maps a ring written by an earlier process (kept in systemd's fd store).
    pub fn open(fd: OwnedFd) -> io::Result<Mapping> {
        let size = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        let size = usize::try_from(size).map_err(io::Error::other)?;
        if size < DATA_AT {
            return Err(io::Error::other("not a ring: shorter than its header"));
        }
        let map = map(size, Some(fd))?;
        if map.word(0).load(Ordering::Relaxed) != MAGIC {
            return Err(io::Error::other("not a ring: no CMRING magic"));
        }
        if map.word(W_CAPACITY).load(Ordering::Relaxed) != (size - DATA_AT) as u64 {
            return Err(io::Error::other("ring damaged: capacity and size disagree"));
        }
        Ok(map)
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// Header word `i` (0..8).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < HEADER / 8);
        // SAFETY: the mapping is page-aligned and at least HEADER bytes long; word i is inside it
        // and 8-byte aligned; AtomicU64 has the layout of u64.
        unsafe { AtomicU64::from_ptr(self.ptr.add(i * 8).cast()) }
    }

    pub fn data(&self) -> &[u8] {
        // SAFETY: [DATA_AT, len) is inside the mapping, which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.add(DATA_AT), self.len - DATA_AT) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `data`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(DATA_AT), self.len - DATA_AT) }
    }

    /// Writes the metadata; false (and nothing written) if it does not fit.
    pub fn set_meta(&mut self, meta: &[u8]) -> bool {
        if meta.len() > META_MAX {
            return false;
        }
        // SAFETY: [HEADER, HEADER + meta.len()) is inside the mapping; `&mut self` is exclusive.
        unsafe { std::ptr::copy_nonoverlapping(meta.as_ptr(), self.ptr.add(HEADER), meta.len()) };
        self.word(W_META_LEN)
            .store(meta.len() as u64, Ordering::Release);
        true
    }

    pub fn meta(&self) -> Option<&[u8]> {
        let len = self.word(W_META_LEN).load(Ordering::Acquire) as usize;
        if len == 0 || len > META_MAX {
            return None;
        }
        // SAFETY: [HEADER, HEADER + len) is inside the mapping.
        Some(unsafe { std::slice::from_raw_parts(self.ptr.add(HEADER), len) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: ptr/len are the mapping made in `map`, unmapped once here.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn memfd(len: usize) -> io::Result<OwnedFd> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new fd or -1.
    let raw = unsafe { libc::memfd_create(c"claude-manager-ring".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ftruncate on our own fd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn map(len: usize, fd: Option<OwnedFd>) -> io::Result<Mapping> {
    let (flags, raw) = match &fd {
        Some(fd) => (libc::MAP_SHARED, fd.as_raw_fd()),
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
    };
    // SAFETY: a new mapping of `len` bytes; the kernel picks the address.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            raw,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Mapping {
        ptr: ptr.cast(),
        len,
        fd,
    })
}
