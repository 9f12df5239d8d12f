//! The reaper's part for worktrees. A worktree is removed (directory and branch) when its run
//! was merged or discarded, or when its run ended more than `worktree_retention_days` ago and
//! removing it loses nothing (no uncommitted change, no commit its base branch lacks). One with
//! unmerged work is kept however old: only a discard throws work away.

use std::path::Path;
use std::time::Duration;

use slog::{info, warn, Logger};

use super::{has_unmerged_work, remove, REVIEW_TURN};
use crate::actors::db::Db;
use crate::db::worktrees::{self, ReapCandidate};

/// What one sweep did and found.
#[derive(Debug, Default)]
pub struct Sweep {
    pub removed: u64,
    /// Worktrees left on disk after the sweep.
    pub live: u64,
    pub failed: u64,
}

fn expired(c: &ReapCandidate, retention: Option<Duration>) -> bool {
    let (Some(retention), Some(finished)) = (retention, c.finished_at.as_deref()) else {
        return false;
    };
    let Ok(finished) =
        time::OffsetDateTime::parse(finished, &time::format_description::well_known::Rfc3339)
    else {
        return false;
    };
    time::OffsetDateTime::now_utc() - finished > retention
}

/// One pass over the live worktrees.
pub async fn sweep(db: &Db, retention: Option<Duration>, log: &Logger) -> Sweep {
    let mut out = Sweep::default();
    let live = match db.read(|c| worktrees::live(c)).await {
        Ok(l) => l,
        Err(e) => {
            warn!(log, "listing worktrees failed"; "error" => %e);
            return out;
        }
    };
    for c in live {
        let w = &c.worktree;
        let closed = w.state != "active";
        let due = closed || (!c.run_active && expired(&c, retention));
        if !due {
            out.live += 1;
            continue;
        }
        let _turn = REVIEW_TURN.lock().await;
        if !closed {
            match has_unmerged_work(w).await {
                Ok(false) => {}
                Ok(true) => {
                    out.live += 1;
                    continue;
                }
                Err(e) => {
                    warn!(log, "checking a worktree for unmerged work failed"; "execution_id" => w.execution_id, "error" => %e);
                    out.live += 1;
                    out.failed += 1;
                    continue;
                }
            }
        }
        match remove(w).await {
            Ok(()) => {
                let id = w.execution_id;
                if let Err(e) = db.write(move |c| worktrees::mark_removed(c, id)).await {
                    warn!(log, "recording a worktree removal failed"; "error" => %e);
                }
                info!(log, "removed a run's worktree"; "execution_id" => id, "state" => &w.state, "path" => &w.path);
                out.removed += 1;
            }
            Err(e) => {
                warn!(log, "removing a worktree failed"; "execution_id" => w.execution_id, "error" => %e);
                out.live += 1;
                out.failed += 1;
            }
        }
    }
    out
}

/// Bytes of disk used under `dir` (allocated blocks; symlinks not followed). Blocking.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}
