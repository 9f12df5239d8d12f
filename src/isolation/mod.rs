//! Isolated runs and agent sessions: one that asks for `isolation: "worktree"` works in its own
//! git worktree, on a new branch made from the current `HEAD` of the repository at its cwd —
//! `cm/<task-id>-<execution-id>` for a run, `cm/session-<execution-id>` for an agent session — so
//! parallel agents never write into each other's files. Both are recorded the same way (the
//! `worktrees` row of their execution) and reviewed through the same functions.
//!
//! Two steps, at two moments: [`locate`] checks the request (the cwd is inside a repository with
//! a commit, inside the allowed roots — else 422 naming the field) where the run's cwd is
//! resolved; [`create`] makes the worktree once the run has an execution id. Worktrees live under
//! `<data_dir>/worktrees/<execution-id>`, outside the user's checkout, so `git status` there stays
//! clean. Review (diff, merge, discard) is in `review.rs` and `merge.rs`.

pub mod housekeeping;
mod merge;
mod review;

use std::path::{Path, PathBuf};

use crate::actors::db::Db;
use crate::actors::events::Events;
use crate::db::worktrees::{self, Worktree, WorktreeState};
use crate::db::DbError;
use crate::error::ApiError;
use crate::git::{Git, GitError};

pub use merge::{discard, merge, remove, MergeOutcome};
pub use review::{diff, has_unmerged_work, Diff};

/// Held by one merge, discard or reaper removal at a time, across its git steps (that is the
/// point): two merges into one branch, or a merge racing a removal of the same worktree, must not
/// interleave.
pub static REVIEW_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The one value `isolation` takes besides `"none"`.
pub const WORKTREE: &str = "worktree";
/// `worktree add` fails while another one holds the repository's lock: try this many times.
const ADD_ATTEMPTS: u32 = 5;

/// Validates an `isolation` field: `Some(true)` for `"worktree"`, `Some(false)` for `"none"`.
pub fn parse(field: &str, value: Option<&str>) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(WORKTREE) => Ok(Some(true)),
        Some("none") => Ok(Some(false)),
        Some(other) => Err(ApiError::validation(
            field,
            format!("must be \"worktree\" or \"none\", got {other:?}"),
        )),
    }
}

/// Where the worktrees of a server live.
pub fn worktrees_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("worktrees")
}

/// A run's request for its own worktree, checked ([`locate`]) when the run was asked for.
#[derive(Debug, Clone)]
pub struct WorktreeRequest {
    pub repo: RepoAt,
    /// `<data_dir>/worktrees`
    pub worktrees_dir: PathBuf,
}

/// The repository a run's cwd is in.
#[derive(Debug, Clone)]
pub struct RepoAt {
    /// Its top level (canonical).
    pub root: PathBuf,
    /// The cwd relative to the top level ("" at the top).
    pub subdir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error("{0}")]
    Git(#[from] GitError),
    #[error("execution {0} has no worktree (it was not an isolated run)")]
    NotIsolated(i64),
    #[error("execution {0} is still running; cancel it or wait for it to end")]
    RunActive(i64),
    #[error("the worktree of execution {0} was already {1}")]
    Closed(i64, WorktreeState),
    #[error("the worktree of execution {id} has been removed{}", removed_because(.why))]
    Removed { id: i64, why: Option<String> },
    #[error("the run started on a detached HEAD: there is no branch to merge into")]
    NoBaseBranch,
    #[error("merging into {branch} conflicts in: {}", files.join(", "))]
    Conflict { branch: String, files: Vec<String> },
    #[error("uncommitted changes in {checkout} would be overwritten by the merge: {}", files.join(", "))]
    LocalChanges {
        checkout: String,
        files: Vec<String>,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn removed_because(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default()
}

impl IsolationError {
    /// The worktree `w` is gone (its row says so, or its directory is).
    pub fn removed(w: &Worktree) -> IsolationError {
        IsolationError::Removed {
            id: w.execution_id,
            why: w.removed_reason.clone(),
        }
    }
}

impl From<IsolationError> for ApiError {
    fn from(e: IsolationError) -> Self {
        use IsolationError::*;
        let message = e.to_string();
        match e {
            NotIsolated(_) => ApiError::conflict("not_isolated", message),
            RunActive(_) => ApiError::conflict("run_active", message),
            Closed(..) => ApiError::conflict("worktree_closed", message),
            Removed { .. } => ApiError::conflict("worktree_removed", message),
            NoBaseBranch => ApiError::conflict("no_base_branch", message),
            Conflict { .. } => ApiError::conflict("merge_conflict", message),
            LocalChanges { .. } => ApiError::conflict("local_changes", message),
            Db(db) => db.into(),
            Git(_) | Io(_) => ApiError::new(
                warp::http::StatusCode::INTERNAL_SERVER_ERROR,
                "git_failed",
                "a git command failed (see the server log)",
            )
            .with_internal(message),
        }
    }
}

/// Checks that `cwd` (canonical, already inside the allowed roots) is inside a git repository
/// with at least one commit, whose top level is inside the allowed roots too. 422 naming `field`.
pub async fn locate(field: &str, cwd: &Path, roots: &[PathBuf]) -> Result<RepoAt, ApiError> {
    let shown = cwd.display();
    let top = Git::new(cwd)
        .args(["rev-parse", "--show-toplevel"])
        .line()
        .await
        .map_err(|e| match e {
            GitError::Failed { .. } => ApiError::validation(
                field,
                format!("\"worktree\" needs a git repository, and {shown:?} is not inside one"),
            ),
            other => ApiError::validation(field, other.to_string()),
        })?;
    let root = tokio::fs::canonicalize(&top)
        .await
        .map_err(|e| ApiError::validation(field, format!("repository {top:?}: {e}")))?;
    if !crate::validate::inside_roots(&root, roots) {
        return Err(ApiError::validation(
            field,
            format!(
                "the repository at {top:?} is outside the allowed roots (setting allowed_roots)"
            ),
        ));
    }
    let has_commit = Git::new(&root)
        .args(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        .output()
        .await
        .is_ok_and(|o| o.ok());
    if !has_commit {
        return Err(ApiError::validation(
            field,
            format!("the repository at {top:?} has no commit yet to branch from"),
        ));
    }
    let subdir = cwd
        .strip_prefix(&root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    Ok(RepoAt { root, subdir })
}

/// Whose worktree it is: names its branch.
#[derive(Debug, Clone, Copy)]
pub enum Owner {
    /// A headless run of this task: `cm/<task-id>-<execution-id>`.
    Task(i64),
    /// An agent session: `cm/session-<execution-id>`.
    AgentSession,
}

impl Owner {
    fn branch(self, execution_id: i64) -> String {
        match self {
            Owner::Task(task_id) => format!("cm/{task_id}-{execution_id}"),
            Owner::AgentSession => format!("cm/session-{execution_id}"),
        }
    }
}

/// Makes the worktree of execution `execution_id`: a new branch ([`Owner::branch`]) from the
/// repository's `HEAD`, checked out at `<data_dir>/worktrees/<execution>`. Returns the row to
/// record (the execution's cwd is `path/subdir`).
async fn create(
    request: &WorktreeRequest,
    owner: Owner,
    execution_id: i64,
) -> Result<Worktree, IsolationError> {
    let repo = &request.repo;
    let base_commit = Git::new(&repo.root)
        .args(["rev-parse", "--verify", "HEAD^{commit}"])
        .line()
        .await?;
    let base_branch = Git::new(&repo.root)
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .output()
        .await?;
    let base_branch = base_branch
        .ok()
        .then(|| base_branch.stdout.trim().to_string());
    let dir = &request.worktrees_dir;
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(execution_id.to_string());
    let branch = owner.branch(execution_id);
    let path_arg = path.display().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = Git::new(&repo.root)
            .args(["worktree", "add", "--quiet", "-b", &branch, "--"])
            .args([path_arg.as_str(), base_commit.as_str()])
            .output()
            .await?;
        if out.ok() {
            break;
        }
        // Another `worktree add` on this repository holds its lock: wait for it, then retry.
        let locked = out.stderr.contains(".lock") || out.stderr.contains("could not lock");
        if !locked || attempt >= ADD_ATTEMPTS {
            return Err(GitError::Failed {
                args: "worktree add".into(),
                code: out.code,
                stderr: out.stderr,
            }
            .into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
    }
    Ok(Worktree {
        execution_id,
        repo: repo.root.display().to_string(),
        path: path_arg,
        subdir: repo.subdir.display().to_string(),
        branch,
        base_commit,
        base_branch,
        state: WorktreeState::Active,
        merge_commit: None,
        created_at: String::new(),
        updated_at: String::new(),
        removed_at: None,
        removed_reason: None,
    })
}

/// Gives execution `execution_id` (a run or an agent session) its worktree and records it;
/// returns the directory it works in (its cwd, recorded too). Called once, where the cwd is
/// decided, before the process starts.
pub async fn isolate(
    db: &Db,
    events: &Events,
    request: &WorktreeRequest,
    owner: Owner,
    execution_id: i64,
) -> Result<PathBuf, IsolationError> {
    let w = create(request, owner, execution_id).await?;
    let cwd = run_dir(&w);
    let (row, shown) = (w.clone(), cwd.display().to_string());
    let recorded = db
        .write(move |c| {
            worktrees::insert(c, &row, &shown)?;
            worktrees::get(c, row.execution_id)
        })
        .await;
    match recorded {
        Ok(Some(row)) => {
            events.publish(crate::actors::events::EventType::WorktreeCreated, &row);
            Ok(cwd)
        }
        Ok(None) => Err(IsolationError::NotIsolated(execution_id)),
        Err(e) => {
            // Not recorded: nothing would ever clean it up, so do it now.
            let _ = remove(&w).await;
            Err(IsolationError::Db(e))
        }
    }
}

/// The directory the run works in: the worktree, at the same place inside the repository.
pub fn run_dir(w: &Worktree) -> PathBuf {
    Path::new(&w.path).join(&w.subdir)
}
