//! The handover record: what one image tells the next about the fds it passes on.
//!
//! Layout (in a memfd): `CMHANDOV` magic, the version (u32 LE), the length of the JSON header
//! (u64 LE), the JSON header ([`Record`]), then every session's ring bytes one after the other
//! (each session names its slice). The version is checked before anything else is parsed, so a
//! record written by a newer or older binary is refused as a whole (and its sessions stopped,
//! with that reason), never half-read.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

/// Bumped whenever the layout or the meaning of a field changes. Version 2 added headless runs
/// (`runs.rs`); a version-1 record (no runs) still reads.
pub const RECORD_VERSION: u32 = 2;
/// The oldest version this binary reads.
const OLDEST_READABLE: u32 = 1;
const MAGIC: &[u8; 8] = b"CMHANDOV";
/// A record over this is damage, not sessions (1000 sessions × 1 MiB rings is ~1 GiB).
const MAX_RECORD_BYTES: u64 = 8 << 30;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read the handover record: {0}")]
    Io(#[from] std::io::Error),
    #[error("the handover record is damaged: {0}")]
    Damaged(String),
    #[error("the handover record has version {found}; this binary reads version {RECORD_VERSION}")]
    Version { found: u32 },
    #[error("the handover record's header is not valid: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    /// Reloads since the first start, counting this one.
    pub generation: u64,
    /// The boot id the next image runs under; handed-over executions already carry it.
    pub boot_id: String,
    /// The listening socket.
    pub listener_fd: i32,
    /// The reload request this exec answers (the status file's sequence number).
    pub reload_seq: u64,
    /// When the reload was asked for (RFC 3339).
    pub requested_at: String,
    /// Set when the new binary could not be executed and the running image was executed again
    /// instead: the reload failed, the sessions go on.
    pub exec_error: Option<String>,
    pub sessions: Vec<SessionRecord>,
    /// Headless runs (version 2).
    #[serde(default)]
    pub runs: Vec<super::runs::RunRecord>,
}

/// One terminal or agent session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    /// `terminal` or `agent_session`.
    pub kind: String,
    pub name: Option<String>,
    pub argv: Vec<String>,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    pub task_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub conversation_id: Option<String>,
    pub idle_timeout_ms: Option<u64>,
    pub execution_id: i64,
    pub created_at: String,
    pub pid: i32,
    pub start_time: Option<u64>,
    pub cgroup: Option<String>,
    pub master_fd: i32,
    /// Absolute offset of the first ring byte passed on.
    pub ring_start: u64,
    /// Where its ring bytes are in the blob area, and how many.
    pub ring_blob_at: u64,
    pub ring_len: u64,
    /// The device of the viewer that held the session's size (`SessionSpec::size_held_by`);
    /// absent in a record of an image before it.
    #[serde(default)]
    pub size_held_by: Option<String>,
    /// The window title its program had set (`SessionSpec::title`); absent in a record of an
    /// image before it.
    #[serde(default)]
    pub title: Option<String>,
}

/// The version written: [`RECORD_VERSION`]; tests of the fault-injection build may ask for
/// another (`CM_FAULT_HANDOVER_VERSION`) to play a record the next image cannot read.
fn written_version() -> u32 {
    #[cfg(feature = "fault-injection")]
    if let Some(v) = std::env::var("CM_FAULT_HANDOVER_VERSION")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return v;
    }
    RECORD_VERSION
}

impl Record {
    /// Writes the record and the rings into a new memfd (close-on-exec until the exec).
    pub fn to_memfd(&self, rings: &[&[u8]]) -> std::io::Result<OwnedFd> {
        let header = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new fd or -1.
        let raw =
            unsafe { libc::memfd_create(c"claude-manager-handover".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut file = File::from(fd);
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut file);
        out.write_all(MAGIC)?;
        out.write_all(&written_version().to_le_bytes())?;
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for ring in rings {
            out.write_all(ring)?;
        }
        out.flush()?;
        drop(out);
        Ok(OwnedFd::from(file))
    }

    /// Reads a record and its blob area back.
    pub fn from_fd(fd: OwnedFd) -> Result<(Record, Vec<u8>), RecordError> {
        let mut file = File::from(fd);
        file.seek(SeekFrom::Start(0))?;
        let mut fixed = [0u8; 20];
        file.read_exact(&mut fixed)
            .map_err(|_| RecordError::Damaged("shorter than its header".into()))?;
        if &fixed[..8] != MAGIC {
            return Err(RecordError::Damaged("no CMHANDOV magic".into()));
        }
        let version = u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]);
        if !(OLDEST_READABLE..=RECORD_VERSION).contains(&version) {
            return Err(RecordError::Version { found: version });
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&fixed[12..20]);
        let header_len = u64::from_le_bytes(len);
        let total = file.metadata()?.len();
        if header_len > total.saturating_sub(20) || total > MAX_RECORD_BYTES {
            return Err(RecordError::Damaged(format!(
                "header of {header_len} bytes in a record of {total}"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)?;
        let record: Record = serde_json::from_slice(&header)?;
        if record.version != version {
            return Err(RecordError::Version {
                found: record.version,
            });
        }
        let mut blobs = Vec::with_capacity((total - 20 - header_len) as usize);
        file.read_to_end(&mut blobs)?;
        for s in &record.sessions {
            if s.ring_blob_at.saturating_add(s.ring_len) > blobs.len() as u64 {
                return Err(RecordError::Damaged(format!(
                    "session {}: ring bytes past the end of the record",
                    s.id
                )));
            }
        }
        super::runs::check_blobs(&record.runs, blobs.len() as u64).map_err(RecordError::Damaged)?;
        Ok((record, blobs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session as an image writes it, with `extra` fields added to its JSON.
    fn session_json(extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": "0123456789abcdef0123456789abcdef", "kind": "terminal", "name": null,
            "argv": ["sh"], "cwd": "/tmp", "cols": 80, "rows": 24, "task_id": null,
            "agent_id": null, "conversation_id": null, "idle_timeout_ms": null,
            "execution_id": 1, "created_at": "2026-12-01T00:00:00Z", "pid": 42,
            "start_time": null, "cgroup": null, "master_fd": 3, "ring_start": 0,
            "ring_blob_at": 0, "ring_len": 0
        });
        for (key, value) in extra {
            v[*key] = value.clone();
        }
        v
    }

    /// The optional fields read both ways across a reload: a record from an image before them
    /// reads as none, and one from an image after this (with fields this one does not know)
    /// still reads, so neither an upgrade nor a downgrade stops the sessions over them.
    #[test]
    fn optional_session_fields_read_across_versions_both_ways() {
        let older: SessionRecord =
            serde_json::from_value(session_json(&[])).expect("a record without the fields");
        assert_eq!((older.size_held_by, older.title), (None, None));
        let newer: SessionRecord = serde_json::from_value(session_json(&[
            ("size_held_by", "Chrome on Linux".into()),
            ("title", "vim a.txt".into()),
            ("a_field_of_a_later_image", serde_json::json!({"x": 1})),
        ]))
        .expect("a record with a field this image does not know");
        assert_eq!(newer.size_held_by.as_deref(), Some("Chrome on Linux"));
        assert_eq!(newer.title.as_deref(), Some("vim a.txt"));
    }
}
