//! Merge or discard a run's worktree.
//!
//! Merge checks before it changes anything: the worktree's state (uncommitted edits included) is
//! made a commit object, and `git merge-tree --write-tree` computes the merge with the base
//! branch in memory. A conflict is reported with its files and nothing — worktree, branch, base
//! branch, the user's checkout — has moved. Only then is the run's branch advanced to that commit
//! and the base branch updated: with `git merge` in the checkout that has it checked out (so its
//! files follow, and git itself refuses to overwrite local edits), or by moving the ref when no
//! checkout has it.

use std::path::Path;

use serde::Serialize;

use super::review::snapshot;
use super::IsolationError;
use crate::db::worktrees::{Worktree, WorktreeState};
use crate::git::{identity_args, Git, GitError};

#[derive(Debug, Serialize)]
pub struct MergeOutcome {
    /// The branch merged into.
    pub branch: String,
    /// Its new tip.
    pub commit: String,
    pub fast_forward: bool,
    /// Nothing differed from the base: no commit was made and the branch did not move.
    pub empty: bool,
}

fn closed_check(w: &Worktree) -> Result<(), IsolationError> {
    if w.state != WorktreeState::Active {
        return Err(IsolationError::Closed(w.execution_id, w.state));
    }
    if w.removed_at.is_some() || !Path::new(&w.path).is_dir() {
        return Err(IsolationError::removed(w));
    }
    Ok(())
}

/// The checkout (main or linked worktree) that has `branch` checked out, if any.
async fn checkout_of(repo: &Path, branch: &str) -> Result<Option<String>, GitError> {
    let list = Git::new(repo)
        .args(["worktree", "list", "--porcelain"])
        .run()
        .await?;
    let wanted = format!("branch refs/heads/{branch}");
    let mut current = None;
    for line in list.stdout.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            current = Some(p.to_string());
        } else if line == wanted {
            return Ok(current);
        }
    }
    Ok(None)
}

/// Files named after git's "would be overwritten by merge:" line (tab-indented).
fn overwritten_files(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .skip_while(|l| !l.contains("would be overwritten"))
        .skip(1)
        .take_while(|l| l.starts_with('\t'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Commits what is uncommitted (as `message`) and merges the run's branch into its base branch.
pub async fn merge(w: &Worktree, message: &str) -> Result<MergeOutcome, IsolationError> {
    closed_check(w)?;
    let Some(base_branch) = w.base_branch.clone() else {
        return Err(IsolationError::NoBaseBranch);
    };
    let dir = Path::new(&w.path);
    let repo = Path::new(&w.repo);
    let ident = identity_args(repo).await;
    let tree = snapshot(dir).await?;
    let head = Git::new(dir).args(["rev-parse", "HEAD"]).line().await?;
    let head_tree = Git::new(dir)
        .args(["rev-parse", "HEAD^{tree}"])
        .line()
        .await?;
    let tip = if tree == head_tree {
        head.clone()
    } else {
        Git::new(dir)
            .args(&ident)
            .args(["commit-tree", &tree, "-p", &head, "-m", message])
            .line()
            .await?
    };
    let base_ref = format!("refs/heads/{base_branch}");
    let base_tip = Git::new(repo)
        .args(["rev-parse", "--verify", &format!("{base_ref}^{{commit}}")])
        .line()
        .await?;
    let fast_forward = Git::new(repo)
        .args(["merge-base", "--is-ancestor", &base_tip, &tip])
        .output()
        .await?
        .ok();
    let up_to_date = Git::new(repo)
        .args(["merge-base", "--is-ancestor", &tip, &base_tip])
        .output()
        .await?
        .ok();
    if up_to_date {
        return Ok(MergeOutcome {
            branch: base_branch,
            commit: base_tip,
            fast_forward: false,
            empty: true,
        });
    }
    let merged_tree = if fast_forward {
        tree.clone()
    } else {
        let out = Git::new(repo)
            .args(["merge-tree", "--write-tree", "--name-only", "--no-messages"])
            .args([&base_tip, &tip])
            .output()
            .await?;
        let mut lines = out.stdout.lines();
        let merged = lines.next().unwrap_or("").trim().to_string();
        match out.code {
            0 => merged,
            1 => {
                let files = lines
                    .take_while(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                return Err(IsolationError::Conflict {
                    branch: base_branch,
                    files,
                });
            }
            code => {
                return Err(GitError::Failed {
                    args: "merge-tree".into(),
                    code,
                    stderr: out.stderr,
                }
                .into())
            }
        }
    };
    let checkout = checkout_of(repo, &base_branch).await?;
    let new_tip = match &checkout {
        Some(path) => {
            merge_in_checkout(Path::new(path), &ident, &tip, fast_forward, message).await?
        }
        None if fast_forward => tip.clone(),
        None => {
            Git::new(repo)
                .args(&ident)
                .args(["commit-tree", &merged_tree, "-p", &base_tip, "-p", &tip])
                .args(["-m", message])
                .line()
                .await?
        }
    };
    if checkout.is_none() {
        // Compare-and-swap: fails (and changes nothing) if the branch moved meanwhile.
        Git::new(repo)
            .args([
                "update-ref",
                "-m",
                "claude-manager: merge run",
                &base_ref,
                &new_tip,
                &base_tip,
            ])
            .run()
            .await?;
    }
    // The run's own branch now holds what was uncommitted, so it records what was merged.
    if tip != head {
        let run_ref = format!("refs/heads/{}", w.branch);
        Git::new(dir)
            .args(["update-ref", &run_ref, &tip, &head])
            .run()
            .await?;
        Git::new(dir)
            .args(["reset", "--quiet", "--mixed"])
            .run()
            .await?;
    }
    Ok(MergeOutcome {
        branch: base_branch,
        commit: new_tip,
        fast_forward,
        empty: false,
    })
}

/// `git merge` where the base branch is checked out, so its files follow. Git refuses (and
/// changes nothing) when local edits there would be overwritten.
async fn merge_in_checkout(
    checkout: &Path,
    ident: &[String],
    tip: &str,
    fast_forward: bool,
    message: &str,
) -> Result<String, IsolationError> {
    let mut git = Git::new(checkout).args(ident).args(["merge", "--quiet"]);
    git = if fast_forward {
        git.args(["--ff-only", tip])
    } else {
        git.args(["--no-ff", "--no-edit", "-m", message, tip])
    };
    let out = git.output().await?;
    if !out.ok() {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let files = overwritten_files(&text);
        // A merge left half-done (a conflict git saw and merge-tree did not) is undone.
        let merging = Git::new(checkout)
            .args(["rev-parse", "--verify", "--quiet", "MERGE_HEAD"])
            .output()
            .await?
            .ok();
        if merging {
            let _ = Git::new(checkout).args(["merge", "--abort"]).output().await;
        }
        if !files.is_empty() {
            return Err(IsolationError::LocalChanges {
                checkout: checkout.display().to_string(),
                files,
            });
        }
        return Err(GitError::Failed {
            args: "merge".into(),
            code: out.code,
            stderr: out.stderr,
        }
        .into());
    }
    Ok(Git::new(checkout)
        .args(["rev-parse", "HEAD"])
        .line()
        .await?)
}

/// Throws the run's work away: removes its worktree and deletes its branch.
pub async fn discard(w: &Worktree) -> Result<(), IsolationError> {
    if w.state != WorktreeState::Active {
        return Err(IsolationError::Closed(w.execution_id, w.state));
    }
    remove(w).await
}

/// Removes the worktree directory (with whatever is in it) and the branch. Idempotent: a
/// directory or branch already gone is not an error.
pub async fn remove(w: &Worktree) -> Result<(), IsolationError> {
    let repo = Path::new(&w.repo);
    if Path::new(&w.path).exists() {
        let out = Git::new(repo)
            .args(["worktree", "remove", "--force", "--force", "--", &w.path])
            .output()
            .await?;
        if !out.ok() && Path::new(&w.path).exists() {
            // Not a worktree git knows (repository moved or pruned): delete the directory.
            tokio::fs::remove_dir_all(&w.path).await?;
        }
    }
    let _ = Git::new(repo).args(["worktree", "prune"]).output().await;
    let out = Git::new(repo)
        .args(["branch", "--quiet", "-D", "--", &w.branch])
        .output()
        .await?;
    if !out.ok() && !out.stderr.contains("not found") {
        return Err(GitError::Failed {
            args: "branch -D".into(),
            code: out.code,
            stderr: out.stderr,
        }
        .into());
    }
    Ok(())
}
