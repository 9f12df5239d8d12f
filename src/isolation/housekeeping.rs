//! The reaper's part for worktrees. A worktree is removed (directory and branch) when its run
//! (or agent session) was merged or discarded, or when it ended more than
//! `worktree_retention_days` ago and removing it loses nothing (no uncommitted change, no commit
//! its base branch lacks). One with unmerged work is kept however old: only a discard throws
//! work away.
//!
//! Two things happen outside the server and are recorded, once, with the reason: a repository
//! moved or deleted (its worktrees can no longer be merged, and git no longer knows them: the
//! directory is deleted), and a worktree directory deleted by hand (git is told to forget it; its
//! branch goes too unless it holds commits not merged, which are left for the user). Nothing is
//! touched while its run or session is still going: it works there.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use slog::{info, warn, Logger};

use super::{has_unmerged_work, remove, IsolationError, REVIEW_TURN};
use crate::actors::db::Db;
use crate::db::worktrees::{self, ReapCandidate, Worktree, WorktreeState};

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

/// What the sweep does with one worktree whose run has ended.
enum Verdict {
    Keep,
    /// Remove it (directory and branch), as the rules say.
    Remove,
    /// Its repository is gone: delete the directory, record why.
    RepoGone,
    /// Its directory was deleted by hand: forget it in git (the branch too when nothing is lost).
    DirGone {
        unmerged: bool,
    },
}

async fn exists(path: &Path) -> bool {
    tokio::fs::symlink_metadata(path).await.is_ok()
}

async fn judge(c: &ReapCandidate, retention: Option<Duration>) -> Result<Verdict, IsolationError> {
    let w = &c.worktree;
    if !exists(&Path::new(&w.repo).join(".git")).await {
        return Ok(Verdict::RepoGone);
    }
    if !exists(Path::new(&w.path)).await {
        let unmerged = has_unmerged_work(w).await?;
        return Ok(Verdict::DirGone { unmerged });
    }
    let closed = w.state != WorktreeState::Active;
    if closed {
        return Ok(Verdict::Remove);
    }
    if !expired(c, retention) || has_unmerged_work(w).await? {
        return Ok(Verdict::Keep);
    }
    Ok(Verdict::Remove)
}

/// Carries out `verdict`; returns the reason to record (`None` for a removal by the rules).
async fn act(w: &Worktree, verdict: &Verdict) -> Result<Option<String>, IsolationError> {
    match verdict {
        Verdict::Keep => Ok(None),
        Verdict::Remove => remove(w).await.map(|()| None),
        Verdict::RepoGone => {
            if exists(Path::new(&w.path)).await {
                tokio::fs::remove_dir_all(&w.path).await?;
            }
            Ok(Some(format!(
                "its repository {} no longer exists (moved or deleted); the worktree directory \
                 was deleted",
                w.repo
            )))
        }
        Verdict::DirGone { unmerged: false } => {
            remove(w).await?;
            Ok(Some(
                "its directory was deleted outside claude-manager; branch deleted (nothing \
                 unmerged)"
                    .into(),
            ))
        }
        Verdict::DirGone { unmerged: true } => {
            let _ = crate::git::Git::new(Path::new(&w.repo))
                .args(["worktree", "prune"])
                .output()
                .await;
            Ok(Some(format!(
                "its directory was deleted outside claude-manager; branch {} kept: it has \
                 commits not merged",
                w.branch
            )))
        }
    }
}

/// One pass over the live worktrees. `warned` holds the worktrees whose failure was already
/// logged, so a failure that repeats is logged once, not every pass.
pub async fn sweep(
    db: &Db,
    retention: Option<Duration>,
    log: &Logger,
    warned: &mut HashSet<i64>,
) -> Sweep {
    let mut out = Sweep::default();
    let live = match db.read(|c| worktrees::live(c)).await {
        Ok(l) => l,
        Err(e) => {
            warn!(log, "listing worktrees failed"; "error" => %e);
            return out;
        }
    };
    warned.retain(|id| live.iter().any(|c| c.worktree.execution_id == *id));
    for c in live {
        let id = c.worktree.execution_id;
        if c.run_active {
            out.live += 1;
            continue;
        }
        // Judged without the review turn (git status can take a while on a big worktree)...
        let verdict = judge(&c, retention).await;
        if matches!(verdict, Ok(Verdict::Keep)) {
            out.live += 1;
            continue;
        }
        // ...and carried out holding it, on the row as it is now: a merge or discard may have
        // happened meanwhile (a discard removed it; a merge leaves nothing unmerged).
        let _turn = REVIEW_TURN.lock().await;
        let now = match db.read(move |c| worktrees::get(c, id)).await {
            Ok(Some(w)) if w.removed_at.is_none() => w,
            Ok(_) => continue,
            Err(e) => {
                warn!(log, "reading a worktree failed"; "execution_id" => id, "error" => %e);
                out.live += 1;
                continue;
            }
        };
        let done = match verdict {
            Ok(v) => act(&now, &v).await,
            Err(e) => Err(e),
        };
        match done {
            Ok(reason) => {
                let why = reason.clone();
                if let Err(e) = db
                    .write(move |c| worktrees::mark_removed(c, id, why.as_deref()))
                    .await
                {
                    warn!(log, "recording a worktree removal failed"; "error" => %e);
                }
                match &reason {
                    None => info!(log, "removed a worktree"; "execution_id" => id,
                                  "state" => %now.state, "path" => &now.path),
                    Some(why) => {
                        warn!(log, "a worktree was recorded removed"; "execution_id" => id,
                                       "path" => &now.path, "reason" => why)
                    }
                }
                out.removed += 1;
            }
            Err(e) => {
                if warned.insert(id) {
                    warn!(log, "removing a worktree failed (logged once; retried every pass)";
                          "execution_id" => id, "error" => %e);
                }
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
