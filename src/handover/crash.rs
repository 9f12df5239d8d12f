//! Sessions across a crash under systemd (the fds kept in its store, `fdstore.rs`).
//!
//! While a session lives, its ring's memfd carries its [`SessionRecord`] (written by [`keep`])
//! and both its fds are in the store. At the next start the fds come back (`$LISTEN_FDS`); before
//! the reconciliation, [`sort`] pairs them per session and, for each whose execution row still
//! says `running` and whose child is still the same process (pid + start time from `/proc`),
//! moves the row to the new boot id so the reconciliation leaves it alone; the sessions
//! supervisor then adopts it as after a reload (`pty::adopt`: a pidfd watches it — it is not our
//! child any more, so when it ends its exit status is unknown: recorded `null`, reason
//! `adopted`). A session whose child died while the server was down is recorded ended (exit
//! `null`, with the reason); fds that match no running session are closed and removed.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use slog::{info, warn, Logger};

use super::fdstore::{self, fd_name, parse_fd_name};
use super::record::SessionRecord;
use super::take::InheritedSession;
use crate::actors::session_types::SessionSpec;
use crate::actors::sessions::kind_name;
use crate::db::executions::{finish, ExecutionStatus, Finish};
use crate::db::DbError;
use crate::pty::{process_start_time, ProcessTree};
use crate::replay::ReplayBuffer;
use crate::state::AppState;

/// Why a session whose child ended while the server was down is recorded ended.
pub const REASON_ENDED_WHILE_DOWN: &str =
    "the session ended while the server was down (after a crash); its exit status is unknown";
/// The reason recorded when an adopted session's child ends: not our child, status unknown.
pub const REASON_ADOPTED: &str = "adopted";
/// How much of a dead session's ring is kept as its output tail.
const TAIL_BYTES: u64 = 64 << 10;
const ADOPT_TIMEOUT: Duration = Duration::from_secs(60);

static STASH: Mutex<Vec<(String, OwnedFd)>> = Mutex::new(Vec::new());

/// Takes the fds the service manager passed (call first thing in `serve`, before any file is
/// opened), for the start to sort.
pub fn take_from_env() -> usize {
    let fds = fdstore::take_listen_fds();
    let n = fds.len();
    if let Ok(mut s) = STASH.lock() {
        *s = fds;
    }
    n
}

fn take_stash() -> Vec<(String, OwnedFd)> {
    STASH
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default()
}

/// The record of one session, as its ring carries it.
pub fn session_record(
    id: &str,
    spec: &SessionSpec,
    execution_id: i64,
    created_at: &str,
    tree: &ProcessTree,
) -> SessionRecord {
    SessionRecord {
        id: id.to_string(),
        kind: kind_name(spec.kind).to_string(),
        name: spec.name.clone(),
        argv: spec.argv.clone(),
        cwd: spec.cwd.display().to_string(),
        cols: spec.size.cols,
        rows: spec.size.rows,
        task_id: spec.task_id,
        agent_id: spec.agent_id,
        conversation_id: spec.conversation_id.clone(),
        idle_timeout_ms: spec.idle_timeout.map(|d| d.as_millis() as u64),
        execution_id,
        created_at: created_at.to_string(),
        pid: tree.leader,
        start_time: tree.start_time,
        cgroup: tree.cgroup.as_ref().map(|c| c.display().to_string()),
        master_fd: -1,
        ring_start: 0,
        ring_blob_at: 0,
        ring_len: 0,
        size_held_by: None,
        title: None,
    }
}

/// Puts a live session into the store: its record into its ring, then the master and the ring.
/// A no-op without a service manager; a failure is logged here and the session goes on (it
/// just would not survive a crash).
pub fn keep(ring: &mut ReplayBuffer, record: &SessionRecord, master: BorrowedFd<'_>, log: &Logger) {
    if !fdstore::enabled() {
        return;
    }
    let why = match serde_json::to_vec(record) {
        Ok(json) if ring.set_meta(&json) => match ring.memfd() {
            Some(memfd) => fdstore::store(&fd_name(&record.kind, &record.id, "pty"), master)
                .and_then(|()| fdstore::store(&fd_name(&record.kind, &record.id, "ring"), memfd))
                .err()
                .map(|e| e.to_string()),
            None => Some("the ring is not in a memfd".into()),
        },
        Ok(_) => Some("the session's record is too long for its ring".into()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = why {
        warn!(log, "cannot keep the session in the service manager's fd store; \
                    it will not survive a crash"; "session_id" => &record.id, "error" => why);
    }
}

/// Takes a session's fds out of the store (it ended).
pub fn forget(kind: &str, id: &str) {
    if fdstore::enabled() {
        for what in ["pty", "ring"] {
            let _ = fdstore::remove(&fd_name(kind, id, what));
        }
    }
}

#[derive(Default)]
struct Pair {
    kind: String,
    pty: Option<OwnedFd>,
    ring: Option<OwnedFd>,
}

/// What the start found in the store: the sessions to adopt.
#[derive(Debug, Default)]
pub struct Recovered {
    pub sessions: Vec<InheritedSession>,
}

/// Sorts the fds the service manager passed (see the module doc). Blocking (DB, `/proc`); run
/// before the reconciliation, with the new boot id.
pub fn sort(conn: &Connection, boot_id: &str, log: &Logger) -> Result<Recovered, DbError> {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut unknown = 0;
    for (name, fd) in take_stash() {
        match parse_fd_name(&name) {
            Some((kind, id, what @ ("pty" | "ring"))) => {
                let pair = pairs.entry(id.to_string()).or_default();
                pair.kind = kind.to_string();
                *(if what == "pty" {
                    &mut pair.pty
                } else {
                    &mut pair.ring
                }) = Some(fd);
            }
            _ => unknown += 1, // closed here
        }
    }
    let mut out = Recovered::default();
    let (mut ended, mut dropped) = (0, 0);
    for (id, pair) in pairs {
        let Pair { kind, pty, ring } = pair;
        let found = match (pty, ring) {
            (Some(pty), Some(ring)) => read_ring(ring, &id).map(|r| (pty, r)),
            _ => Err("its PTY master or its ring is missing".into()),
        };
        let (master, ring, record) = match found {
            Ok((pty, (ring, record))) => (pty, ring, record),
            Err(why) => {
                warn!(log, "fd store: a session's fds cannot be used; closed"; "session_id" => &id, "error" => why);
                forget(&kind, &id);
                dropped += 1;
                continue;
            }
        };
        let status: Option<String> = conn
            .query_row(
                "SELECT status FROM executions WHERE id = ?1",
                [record.execution_id],
                |r| r.get(0),
            )
            .optional()?;
        if status.as_deref() != Some("running") {
            forget(&kind, &id);
            dropped += 1;
            continue;
        }
        let alive = record.start_time.is_some()
            && process_start_time(record.pid) == record.start_time
            && !is_zombie(record.pid);
        if !alive {
            let tail = ring.read_from(ring.end().saturating_sub(TAIL_BYTES));
            finish(
                conn,
                record.execution_id,
                &Finish {
                    status: ExecutionStatus::Failed,
                    reason: Some(REASON_ENDED_WHILE_DOWN.into()),
                    exit_code: None,
                    exit_signal: None,
                    bytes_out: ring.end() as i64,
                    output_truncated: tail.start > 0,
                    output_tail: Some(tail.bytes),
                },
            )?;
            forget(&kind, &id);
            ended += 1;
            continue;
        }
        conn.execute(
            "UPDATE executions SET boot_id = ?1 WHERE id = ?2",
            params![boot_id, record.execution_id],
        )?;
        out.sessions.push(InheritedSession {
            record,
            master,
            ring: Vec::new(),
            mapped: Some(ring),
        });
    }
    info!(log, "fd store: sessions found after a crash";
          "alive" => out.sessions.len(), "ended_while_down" => ended,
          "dropped" => dropped, "unknown_fds" => unknown);
    Ok(out)
}

/// Dead but not yet reaped (its new parent, init or a subreaper, has not waited for it yet).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ")?.1.chars().next())
        == Some('Z')
}

fn read_ring(fd: OwnedFd, id: &str) -> Result<(ReplayBuffer, SessionRecord), String> {
    let ring = ReplayBuffer::from_memfd(fd).map_err(|e| e.to_string())?;
    let record: SessionRecord =
        serde_json::from_slice(ring.meta().ok_or("the ring has no record")?)
            .map_err(|e| format!("the ring's record is not valid: {e}"))?;
    if record.id != id {
        return Err(format!("the ring's record names session {}", record.id));
    }
    Ok((ring, record))
}

/// Adopts the sessions [`sort`] kept; counted in `adopted_sessions`.
pub async fn adopt(state: &AppState, recovered: Recovered) {
    if recovered.sessions.is_empty() {
        return;
    }
    let named = recovered.sessions.len() as u64;
    let (ok, failed) = match state
        .sessions
        .adopt(recovered.sessions, ADOPT_TIMEOUT)
        .await
    {
        Ok(a) => (a.adopted, a.failed),
        Err(e) => {
            warn!(state.log, "adopting the sessions kept in the fd store failed"; "error" => %e);
            (0, named)
        }
    };
    super::update_report(|r| {
        r.adopted_sessions += ok;
        r.adoption_failures += failed;
    });
    info!(state.log, "sessions adopted after a crash"; "adopted" => ok, "failed" => failed);
}
