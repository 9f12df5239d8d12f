//! What a run changed: the worktree as it is now (commits and uncommitted edits, untracked files
//! included, ignored files not) against the commit the run started from.
//!
//! The worktree's state is captured as a tree object through a throw-away copy of its index
//! ([`snapshot`]), so reviewing never touches the index or files the agent is using.

use std::path::Path;

use serde::Serialize;

use super::IsolationError;
use crate::db::worktrees::{Worktree, WorktreeState};
use crate::git::Git;

/// The unified diff sent at most; the rest is cut at a file boundary and flagged.
pub const DIFF_MAX_BYTES: usize = 2 << 20;
/// Commits listed at most.
const COMMITS_MAX: usize = 200;

#[derive(Debug, Serialize)]
pub struct FileChange {
    pub path: String,
    /// Set for renames and copies: where it came from.
    pub old_path: Option<String>,
    /// `added` | `modified` | `deleted` | `renamed` | `copied` | `type_changed`
    pub status: &'static str,
    /// Lines; `None` for a binary file.
    pub added: Option<u64>,
    pub deleted: Option<u64>,
    pub binary: bool,
}

#[derive(Debug, Serialize)]
pub struct Commit {
    pub id: String,
    pub subject: String,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub execution_id: i64,
    pub branch: String,
    pub base_commit: String,
    pub base_branch: Option<String>,
    pub state: WorktreeState,
    pub worktree: String,
    /// The run's commits on its branch (newest first).
    pub commits: Vec<Commit>,
    /// Whether the worktree has changes not yet committed.
    pub uncommitted: bool,
    pub files: Vec<FileChange>,
    /// The unified diff of every file (binary files named, not dumped).
    pub diff: String,
    /// `diff` was cut off at [`DIFF_MAX_BYTES`]; `files` is still complete.
    pub truncated: bool,
}

/// The worktree's whole state as a tree id: HEAD plus every uncommitted and untracked change.
pub(super) async fn snapshot(dir: &Path) -> Result<String, IsolationError> {
    let index = Git::new(dir)
        .args(["rev-parse", "--path-format=absolute", "--git-path", "index"])
        .line()
        .await?;
    let guard = ScratchIndex(format!(
        "{index}.cm-review-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let scratch = guard.0.as_str();
    // A copy of the real index keeps its stat cache: only files that changed are hashed again.
    if tokio::fs::copy(&index, scratch).await.is_err() {
        Git::new(dir)
            .env("GIT_INDEX_FILE", scratch)
            .args(["read-tree", "HEAD"])
            .run()
            .await?;
    }
    let tree = async {
        Git::new(dir)
            .env("GIT_INDEX_FILE", scratch)
            .args(["add", "--all", "--", "."])
            .run()
            .await?;
        Git::new(dir)
            .env("GIT_INDEX_FILE", scratch)
            .args(["write-tree"])
            .line()
            .await
    }
    .await;
    Ok(tree?)
}

/// The scratch index of one snapshot, removed however the snapshot ends (a cancelled request
/// included), so none is left in the worktree's git directory.
struct ScratchIndex(String);

impl Drop for ScratchIndex {
    fn drop(&mut self) {
        // One unlink of a small file: not worth a blocking-pool hop.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn status_word(code: &str) -> &'static str {
    match code.chars().next() {
        Some('A') => "added",
        Some('D') => "deleted",
        Some('R') => "renamed",
        Some('C') => "copied",
        Some('T') => "type_changed",
        _ => "modified",
    }
}

/// Pairs `--name-status -z` and `--numstat -z` output (same files, same order).
fn file_changes(name_status: &str, numstat: &str) -> Vec<FileChange> {
    let mut counts = Vec::new();
    let mut it = numstat.split('\0').filter(|s| !s.is_empty());
    while let Some(head) = it.next() {
        let mut parts = head.splitn(3, '\t');
        let added = parts.next().unwrap_or("-").parse::<u64>().ok();
        let deleted = parts.next().unwrap_or("-").parse::<u64>().ok();
        if parts.next().is_some_and(str::is_empty) {
            // A rename or copy: the two paths follow as their own fields.
            it.next();
            it.next();
        }
        counts.push((added, deleted));
    }
    let mut files = Vec::new();
    let mut it = name_status.split('\0').filter(|s| !s.is_empty());
    while let Some(code) = it.next() {
        let status = status_word(code);
        let (old_path, path) = if matches!(status, "renamed" | "copied") {
            let from = it.next().unwrap_or_default().to_string();
            (Some(from), it.next().unwrap_or_default().to_string())
        } else {
            (None, it.next().unwrap_or_default().to_string())
        };
        let (added, deleted) = counts.get(files.len()).copied().unwrap_or((None, None));
        files.push(FileChange {
            path,
            old_path,
            status,
            added,
            deleted,
            binary: added.is_none() && deleted.is_none(),
        });
    }
    files
}

/// Cuts `diff` at the last file boundary within the cap.
fn cut(mut diff: String, truncated: bool) -> (String, bool) {
    if !truncated {
        return (diff, false);
    }
    let end = diff.rfind("\ndiff --git ").map(|i| i + 1).unwrap_or(0);
    diff.truncate(end);
    diff.push_str("\n[diff truncated: over 2 MiB; the file list above is complete]\n");
    (diff, true)
}

pub async fn diff(w: &Worktree) -> Result<Diff, IsolationError> {
    let dir = Path::new(&w.path);
    if w.removed_at.is_some() || !dir.is_dir() {
        return Err(IsolationError::removed(w));
    }
    let tree = snapshot(dir).await?;
    let head_tree = Git::new(dir)
        .args(["rev-parse", "HEAD^{tree}"])
        .line()
        .await?;
    let range = [w.base_commit.as_str(), tree.as_str()];
    let name_status = Git::new(dir)
        .args(["diff", "--no-ext-diff", "-M", "--name-status", "-z"])
        .args(range)
        .run()
        .await?;
    let numstat = Git::new(dir)
        .args(["diff", "--no-ext-diff", "-M", "--numstat", "-z"])
        .args(range)
        .run()
        .await?;
    if name_status.truncated || numstat.truncated {
        // The file list is promised complete; a list past git's output cap is an error, not a
        // silently shorter list.
        return Err(IsolationError::Io(std::io::Error::other(
            "the list of changed files is larger than the server reads from git",
        )));
    }
    let patch = Git::new(dir)
        .args(["diff", "--no-ext-diff", "--no-color", "-M"])
        .args(range)
        .cap(DIFF_MAX_BYTES)
        .run()
        .await?;
    let log = Git::new(dir)
        .args(["log", "--format=%H%x09%s", &format!("-n{COMMITS_MAX}")])
        .args([format!("{}..HEAD", w.base_commit).as_str(), "--"])
        .run()
        .await?;
    let commits = log
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(id, subject)| Commit {
            id: id.into(),
            subject: subject.into(),
        })
        .collect();
    let (diff, truncated) = cut(patch.stdout, patch.truncated);
    Ok(Diff {
        execution_id: w.execution_id,
        branch: w.branch.clone(),
        base_commit: w.base_commit.clone(),
        base_branch: w.base_branch.clone(),
        state: w.state,
        worktree: w.path.clone(),
        commits,
        uncommitted: tree != head_tree,
        files: file_changes(&name_status.stdout, &numstat.stdout),
        diff,
        truncated,
    })
}

/// Whether removing the worktree would lose work: uncommitted changes, or commits its base
/// branch (or base commit, after a detached start) does not contain.
pub async fn has_unmerged_work(w: &Worktree) -> Result<bool, IsolationError> {
    let dir = Path::new(&w.path);
    if dir.is_dir() {
        let status = Git::new(dir)
            .args(["status", "--porcelain", "--untracked-files=normal"])
            .run()
            .await?;
        if !status.stdout.trim().is_empty() {
            return Ok(true);
        }
    }
    let target = w.base_branch.as_deref().unwrap_or(&w.base_commit);
    let target = format!("{target}^{{commit}}");
    let repo = Path::new(&w.repo);
    let base_ok = Git::new(repo)
        .args(["rev-parse", "--verify", "--quiet", &target])
        .output()
        .await?
        .ok();
    let target = if base_ok {
        target
    } else {
        w.base_commit.clone()
    };
    let ahead = Git::new(repo)
        .args([
            "rev-list",
            "--count",
            &format!("{target}..refs/heads/{}", w.branch),
        ])
        .output()
        .await?;
    // A branch that is gone has nothing left to lose.
    Ok(ahead.ok() && ahead.stdout.trim() != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_binaries_and_plain_changes_pair_up() {
        let ns = "M\0a.txt\0R087\0old.rs\0new.rs\0A\0img.png\0D\0gone\0";
        let num = "1\t2\ta.txt\x003\t0\t\0old.rs\0new.rs\0-\t-\timg.png\x000\t4\tgone\0";
        let files = file_changes(ns, num);
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.status, f.path.as_str(), f.added, f.binary))
            .collect();
        assert_eq!(
            got,
            vec![
                ("modified", "a.txt", Some(1), false),
                ("renamed", "new.rs", Some(3), false),
                ("added", "img.png", None, true),
                ("deleted", "gone", Some(0), false),
            ]
        );
        assert_eq!(files[1].old_path.as_deref(), Some("old.rs"));
    }

    #[test]
    fn a_cut_diff_ends_at_a_file_boundary_with_a_marker() {
        let d = "diff --git a/x b/x\n+1\ndiff --git a/y b/y\n+2".to_string();
        let (out, t) = cut(d, true);
        assert!(t);
        assert!(out.starts_with("diff --git a/x b/x\n+1\n"));
        assert!(!out.contains("a/y"));
        assert!(out.contains("[diff truncated"));
    }
}
