//! Every call to the `git` program goes through here.
//!
//! We drive the `git` CLI rather than a library because it is the engine users trust: their
//! hooks, config and attributes apply. Each call is an argv vector (never a shell) with `--`
//! before paths, a deadline ([`GIT_TIMEOUT`]), stdout read up to a cap (the rest is cut off and
//! flagged), no prompt (`GIT_TERMINAL_PROMPT=0`, stdin closed) and the C locale so messages
//! parse. Features used need git 2.38 or newer (`merge-tree --write-tree`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// A git call that takes longer is killed: worktree add and merges on big repos take seconds.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Output kept from a call that is not a diff (lists of names, ids, status).
pub const OUTPUT_MAX_BYTES: usize = 4 << 20;
/// stderr kept for the error message.
const STDERR_MAX_BYTES: usize = 16 << 10;

/// Used for our commits only when the repository has no identity configured.
const FALLBACK_NAME: &str = "claude-manager";
const FALLBACK_EMAIL: &str = "claude-manager@localhost";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("the git program could not be started ({0}); install git 2.38 or newer")]
    Missing(String),
    #[error("git {0} took longer than {1} s and was stopped")]
    Timeout(String, u64),
    #[error("git {args} failed ({code}): {stderr}")]
    Failed {
        args: String,
        code: i32,
        stderr: String,
    },
    #[error("reading git output: {0}")]
    Io(#[from] std::io::Error),
}

/// What a finished git call printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// stdout was longer than the cap and was cut off.
    pub truncated: bool,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.stdout.lines().filter(|l| !l.is_empty())
    }
}

/// One git invocation: `Git::new(dir).args([...]).run().await`.
pub struct Git {
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cap: usize,
}

impl Git {
    pub fn new(dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            cap: OUTPUT_MAX_BYTES,
        }
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Git {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Git {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Keeps at most `bytes` of stdout; the call is stopped once it has printed more.
    pub fn cap(mut self, bytes: usize) -> Git {
        self.cap = bytes;
        self
    }

    /// Runs it; any exit code is returned (callers decide what a non-zero one means).
    pub async fn output(self) -> Result<Output, GitError> {
        let shown = self.args.first().cloned().unwrap_or_default();
        let mut cmd = Command::new("git");
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_EDITOR", "true")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that hooks and filters it started end with it.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| GitError::Missing(e.to_string()))?;
        let group = child.id().and_then(|pid| i32::try_from(pid).ok());
        // Before the child is reaped its pid (the group's id) cannot be reused.
        let end_group = move || {
            if let Some(pgid) = group {
                let _ = crate::pty::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
        };
        let (Some(mut out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(GitError::Missing("no pipes".into()));
        };
        let cap = self.cap;
        let work = async {
            // stderr on its own task, so a git blocked on a full stderr pipe cannot stall us.
            let stderr_task = tokio::spawn(async move {
                let mut err = err;
                let mut stderr = Vec::new();
                let _ = (&mut err)
                    .take(STDERR_MAX_BYTES as u64)
                    .read_to_end(&mut stderr)
                    .await;
                let _ = tokio::io::copy(&mut err, &mut tokio::io::sink()).await;
                stderr
            });
            let mut stdout = Vec::new();
            let mut buf = [0u8; 16 << 10];
            let truncated = loop {
                let n = out.read(&mut buf).await?;
                if n == 0 {
                    break false;
                }
                let room = cap.saturating_sub(stdout.len());
                stdout.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    break true;
                }
            };
            if truncated {
                // The rest is not wanted: stop git (and what it started) instead of draining it.
                end_group();
            }
            let status = child.wait().await?;
            let stderr = stderr_task.await.unwrap_or_default();
            Ok::<_, GitError>(Output {
                code: if truncated {
                    0
                } else {
                    status.code().unwrap_or(-1)
                },
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
                truncated,
            })
        };
        match tokio::time::timeout(GIT_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => {
                end_group();
                Err(GitError::Timeout(shown, GIT_TIMEOUT.as_secs()))
            }
        }
    }

    /// Runs it and fails unless it exits 0.
    pub async fn run(self) -> Result<Output, GitError> {
        let args = self.args.join(" ");
        let out = self.output().await?;
        if out.ok() {
            Ok(out)
        } else {
            Err(GitError::Failed {
                args,
                code: out.code,
                stderr: out.stderr,
            })
        }
    }

    /// The first line of stdout of a call that must succeed.
    pub async fn line(self) -> Result<String, GitError> {
        let out = self.run().await?;
        Ok(out.stdout.lines().next().unwrap_or("").trim().to_string())
    }
}

/// `-c user.name=… -c user.email=…` for a commit in `dir`, only when no identity is configured
/// there (the user's own identity always wins).
pub async fn identity_args(dir: &Path) -> Vec<String> {
    let configured = Git::new(dir)
        .args(["config", "--get", "user.email"])
        .output()
        .await
        .is_ok_and(|o| o.ok());
    if configured {
        Vec::new()
    } else {
        vec![
            "-c".into(),
            format!("user.name={FALLBACK_NAME}"),
            "-c".into(),
            format!("user.email={FALLBACK_EMAIL}"),
        ]
    }
}
