//! Real git repositories made by the tests (the isolation tests: runs and agent sessions in
//! worktrees).

use std::path::{Path, PathBuf};

/// `git` in `dir` as the test's user (an identity only for the test's own commits: the server
/// must bring its own fallback). Panics on failure; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs (install git 2.38 or newer: apt-get install git)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository on branch `main` with `files` committed.
pub fn repo(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "--quiet", "-b", "main"]);
    for (path, text) in files {
        std::fs::write(dir.join(path), text).unwrap();
    }
    git(&dir, &["add", "--all"]);
    git(&dir, &["commit", "--quiet", "-m", "start"]);
    dir
}

/// The `cm/*` branches of `repo`, one per line.
pub fn cm_branches(repo: &Path) -> String {
    git(
        repo,
        &["branch", "--list", "cm/*", "--format=%(refname:short)"],
    )
}

/// Pushes execution `id`'s end into the past, as if it ended `days` ago (the reaper's
/// retention rule).
pub async fn ended_days_ago(s: &super::TestServer, id: i64, days: i64) {
    let at = (time::OffsetDateTime::now_utc() - time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    s.state()
        .db
        .write(move |c| {
            c.execute(
                "UPDATE executions SET finished_at = ?2 WHERE id = ?1",
                rusqlite::params![id, at],
            )
            .map_err(claude_manager::db::DbError::from)
        })
        .await
        .unwrap();
}
