//! Isolated runs on real git repositories made by the tests: each run in its own worktree and
//! branch, the diff against the base (uncommitted, untracked, binary, renamed files), merge
//! (fast-forward, a real conflict, a dirty checkout), discard, and the reaper's rules.

mod common;
use std::path::{Path, PathBuf};

use common::git::{cm_branches, ended_days_ago, git, repo};
use common::runs::fake_claude;
use common::term::{events, wait_event};
use common::{TestServer, Ws};
use serde_json::{json, Value};

struct Env {
    s: TestServer,
    roots: tempfile::TempDir,
    ev: Ws,
    agent: i64,
}

async fn start() -> Env {
    start_with(|_| {}).await
}

async fn start_with(tweak: impl FnOnce(&mut claude_manager::config::Config)) -> Env {
    let roots = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(roots.path()).unwrap();
    let s = TestServer::start_with(|c| {
        c.allowed_roots = vec![root];
        tweak(c);
    })
    .await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "editor", "command": [fake_claude()], "isolation": "worktree",
                   "env": {"FAKE_CLAUDE_EDIT": "1"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let agent = r.body["id"].as_i64().unwrap();
    let ev = events(&s).await;
    Env {
        s,
        roots,
        ev,
        agent,
    }
}

impl Env {
    fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.roots.path()).unwrap()
    }

    /// Queues a run of a new task whose prompt is `script` in `dir`; returns the run's row.
    async fn run(&self, dir: &Path, title: &str, script: &str, body: Value) -> Value {
        let r = self
            .s
            .post(
                "/api/tasks",
                json!({"title": title, "description": script, "agent_id": self.agent,
                       "project_path": dir.display().to_string()}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let task = r.body["id"].as_i64().unwrap();
        let r = self.s.post(&format!("/api/tasks/{task}/run"), body).await;
        assert_eq!(r.status, 202, "{}", r.text);
        r.body
    }

    async fn finished(&mut self, id: i64) -> Value {
        let row = wait_event(&mut self.ev, "execution.finished", |d| d["id"] == id).await;
        assert_eq!(row["status"], "succeeded", "{row}");
        row
    }

    /// A run of `script` in `dir`, to its end.
    async fn run_done(&mut self, dir: &Path, script: &str) -> (i64, Value) {
        let row = self.run(dir, "Edit files", script, json!({})).await;
        let id = row["id"].as_i64().unwrap();
        (id, self.finished(id).await)
    }

    async fn diff(&self, id: i64) -> Value {
        let r = self.s.get(&format!("/api/executions/{id}/diff")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }
}

#[tokio::test]
async fn two_concurrent_runs_on_one_repo_never_see_each_others_files() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("README.md", "hello\n")]);
    let barrier = tempfile::tempdir().unwrap();
    let env = json!({"FAKE_CLAUDE_EDIT": "1", "FAKE_CLAUDE_BARRIER": barrier.path()});
    let r =
        e.s.patch(&format!("/api/agents/{}", e.agent), json!({"env": env}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = e.run(&repo, "A", "write a.txt from A", json!({})).await;
    let b = e.run(&repo, "B", "write b.txt from B", json!({})).await;
    let (a, b) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    // Each waited at the barrier for the other: they ran at the same time.
    let (mut ra, mut rb) = (Value::Null, Value::Null);
    while ra.is_null() || rb.is_null() {
        let row = wait_event(&mut e.ev, "execution.finished", |d| {
            d["id"] == a || d["id"] == b
        })
        .await;
        assert_eq!(row["status"], "succeeded", "{row}");
        if row["id"] == a {
            ra = row;
        } else {
            rb = row;
        }
    }
    assert_eq!(ra["result"], "files: README.md,a.txt", "{ra}");
    assert_eq!(rb["result"], "files: README.md,b.txt", "{rb}");
    assert_ne!(ra["cwd"], rb["cwd"]);
    assert_ne!(ra["cwd"].as_str(), Some(repo.to_str().unwrap()));
    // The user's checkout saw neither; each run has its own branch.
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let branches = cm_branches(&repo);
    let task_a = ra["task_id"].as_i64().unwrap();
    assert!(branches.contains(&format!("cm/{task_a}-{a}")), "{branches}");
    assert_eq!(branches.lines().count(), 2, "{branches}");
}

#[tokio::test]
async fn diff_names_added_changed_deleted_binary_and_renamed_files_with_uncommitted_work() {
    let mut e = start().await;
    let long: String = (0..40).map(|i| format!("line {i}\n")).collect();
    let repo = repo(
        &e.root(),
        "proj",
        &[
            ("change.txt", "one\n"),
            ("gone.txt", "bye\n"),
            ("old.txt", &long),
        ],
    );
    let script = "write new.txt fresh\nappend change.txt two\ndelete gone.txt\n\
                  rename old.txt moved.txt\nbinary img.bin";
    let (id, _) = e.run_done(&repo, script).await;
    let d = e.diff(id).await;
    assert_eq!(d["uncommitted"], true);
    assert_eq!(d["base_branch"], "main");
    assert_eq!(d["base_commit"], git(&repo, &["rev-parse", "HEAD"]));
    let files: Vec<(String, String)> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().into(),
                f["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    for want in [
        ("new.txt", "added"),
        ("change.txt", "modified"),
        ("gone.txt", "deleted"),
        ("moved.txt", "renamed"),
        ("img.bin", "added"),
    ] {
        assert!(
            files.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {files:?}"
        );
    }
    let bin = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "img.bin")
        .unwrap();
    assert_eq!(bin["binary"], true);
    assert!(bin["added"].is_null());
    let change = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "change.txt")
        .unwrap();
    assert_eq!(
        (change["added"].as_i64(), change["deleted"].as_i64()),
        (Some(1), Some(0))
    );
    let text = d["diff"].as_str().unwrap();
    assert!(text.contains("+two"), "{text}");
    assert!(text.contains("Binary files"), "{text}");
    assert!(text.contains("rename from old.txt"), "{text}");
    assert_eq!(d["truncated"], false);
    // Reviewing did not touch the agent's worktree: its changes are still uncommitted.
    let wt = PathBuf::from(d["worktree"].as_str().unwrap());
    assert!(!git(&wt, &["status", "--porcelain"]).is_empty());
}

#[tokio::test]
async fn merge_fast_forwards_the_checkout_and_commits_what_was_uncommitted() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("README.md", "hello\n")]);
    let (id, _) = e.run_done(&repo, "write feature.txt done").await;
    let r =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["merge"]["fast_forward"], true);
    assert_eq!(r.body["merge"]["branch"], "main");
    wait_event(&mut e.ev, "worktree.merged", |d| d["execution_id"] == id).await;
    // The user's checkout moved with the branch: the file is there, committed, clean.
    assert_eq!(
        std::fs::read_to_string(repo.join("feature.txt")).unwrap(),
        "done\n"
    );
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let head = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(r.body["merge"]["commit"], head);
    let msg = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(msg.starts_with("Edit files"), "{msg}");
    assert!(msg.contains(&format!("claude-manager run {id}")), "{msg}");
    // The user's identity when git has one configured, else the server's own.
    let configured = std::process::Command::new("git")
        .args(["config", "--get", "user.name"])
        .current_dir(&repo)
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&configured.stdout)
        .trim()
        .to_string();
    let expected = if expected.is_empty() {
        "claude-manager".into()
    } else {
        expected
    };
    assert_eq!(git(&repo, &["log", "-1", "--format=%an"]), expected);
    // Once merged, it cannot be merged or discarded again.
    let again =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!((again.status, again.code()), (409, "worktree_closed"));
    let gone =
        e.s.post(&format!("/api/executions/{id}/discard"), json!({}))
            .await;
    assert_eq!((gone.status, gone.code()), (409, "worktree_closed"));
}

#[tokio::test]
async fn a_real_conflict_is_409_naming_the_files_and_nothing_moves() {
    let mut e = start().await;
    let repo = repo(
        &e.root(),
        "proj",
        &[("shared.txt", "base\n"), ("other.txt", "x\n")],
    );
    let (id, _) = e
        .run_done(&repo, "write shared.txt theirs\nwrite extra.txt more")
        .await;
    std::fs::write(repo.join("shared.txt"), "ours\n").unwrap();
    git(&repo, &["commit", "--quiet", "-am", "ours"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let d = e.diff(id).await;
    let wt = PathBuf::from(d["worktree"].as_str().unwrap());
    let run_head = git(&wt, &["rev-parse", "HEAD"]);
    let run_status = git(&wt, &["status", "--porcelain"]);

    let r =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!((r.status, r.code()), (409, "merge_conflict"), "{}", r.text);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("shared.txt") && !msg.contains("extra.txt"),
        "{msg}"
    );
    // Everything as it was: the branch, the checkout, the run's branch and its uncommitted work.
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    assert_eq!(
        std::fs::read_to_string(repo.join("shared.txt")).unwrap(),
        "ours\n"
    );
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), run_head);
    assert_eq!(git(&wt, &["status", "--porcelain"]), run_status);
    assert_eq!(e.diff(id).await["state"], "active");
}

#[tokio::test]
async fn a_dirty_checkout_keeps_its_edits_and_refuses_a_merge_that_would_overwrite_them() {
    let mut e = start().await;
    let repo = repo(
        &e.root(),
        "proj",
        &[("mine.txt", "a\n"), ("both.txt", "b\n")],
    );
    // Uncommitted edits in the user's checkout are not part of the run's base.
    std::fs::write(repo.join("mine.txt"), "my edit\n").unwrap();
    let (id, _) = e
        .run_done(&repo, "write both.txt run\nwrite new.txt run")
        .await;
    let d = e.diff(id).await;
    let paths: Vec<&str> = d["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!paths.contains(&"mine.txt"), "{paths:?}");

    // The run changes both.txt, which the user is editing too: refused, nothing moved.
    std::fs::write(repo.join("both.txt"), "user edit\n").unwrap();
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let r =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!((r.status, r.code()), (409, "local_changes"), "{}", r.text);
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("both.txt"));
    assert_eq!(git(&repo, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(repo.join("both.txt")).unwrap(),
        "user edit\n"
    );

    // Without the overlap it merges, and the user's other edit survives.
    git(&repo, &["checkout", "--quiet", "--", "both.txt"]);
    let r =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        std::fs::read_to_string(repo.join("mine.txt")).unwrap(),
        "my edit\n"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("new.txt")).unwrap(),
        "run\n"
    );
}

#[tokio::test]
async fn a_merge_after_the_branch_moved_makes_a_merge_commit() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("a.txt", "a\n")]);
    let (id, _) = e.run_done(&repo, "write run.txt run").await;
    std::fs::write(repo.join("user.txt"), "user\n").unwrap();
    git(&repo, &["add", "user.txt"]);
    git(&repo, &["commit", "--quiet", "-m", "user work"]);
    let r =
        e.s.post(&format!("/api/executions/{id}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["merge"]["fast_forward"], false);
    let parents = git(&repo, &["log", "-1", "--format=%P"]);
    assert_eq!(parents.split(' ').count(), 2, "{parents}");
    assert!(repo.join("run.txt").exists() && repo.join("user.txt").exists());
}

#[tokio::test]
async fn discard_removes_the_worktree_and_the_branch() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("a.txt", "a\n")]);
    let (id, row) = e.run_done(&repo, "write junk.txt x").await;
    let wt = PathBuf::from(row["cwd"].as_str().unwrap());
    assert!(wt.join("junk.txt").exists());
    let r =
        e.s.post(&format!("/api/executions/{id}/discard"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    wait_event(&mut e.ev, "worktree.discarded", |d| d["execution_id"] == id).await;
    assert!(!wt.exists());
    assert_eq!(git(&repo, &["branch", "--list", "cm/*"]), "");
    assert!(!repo.join("junk.txt").exists());
    let d = e.s.get(&format!("/api/executions/{id}/diff")).await;
    assert_eq!((d.status, d.code()), (409, "worktree_removed"));
}

#[tokio::test]
async fn isolation_is_refused_with_422_naming_the_field_outside_a_repository() {
    let e = start().await;
    let plain = e.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let r =
        e.s.post(
            "/api/tasks",
            json!({"title": "t", "agent_id": e.agent,
        "project_path": plain.display().to_string()}),
        )
        .await;
    let task = r.body["id"].as_i64().unwrap();
    let r = e.s.post(&format!("/api/tasks/{task}/run"), json!({})).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation")),
        "{}",
        r.text
    );
    assert!(r.text.contains("not inside"), "{}", r.text);
    // Asked per run instead of by the agent: the same; a value that is not a mode is named.
    let r =
        e.s.post(
            &format!("/api/tasks/{task}/run"),
            json!({"isolation": "sandbox"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation"))
    );
    // "none" for this run: it runs in place.
    let r =
        e.s.post(
            &format!("/api/tasks/{task}/run"),
            json!({"isolation": "none"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    // An agent asking for something else is refused when it is defined.
    let r =
        e.s.post(
            "/api/agents",
            json!({"name": "x", "command": [fake_claude()], "isolation": "vm"}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation"))
    );
}

#[tokio::test]
async fn review_of_a_run_without_a_worktree_is_a_clear_409_and_unknown_is_404() {
    let mut e = start().await;
    let plain = e.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let row = e.run(&plain, "t", "", json!({"isolation": "none"})).await;
    let id = row["id"].as_i64().unwrap();
    e.finished(id).await;
    let r = e.s.get(&format!("/api/executions/{id}/diff")).await;
    assert_eq!((r.status, r.code()), (409, "not_isolated"));
    let r = e.s.post("/api/executions/999999/merge", json!({})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn the_reaper_removes_merged_and_stale_clean_worktrees_but_never_unmerged_work() {
    let mut e = start_with(|c| c.reap_interval = std::time::Duration::from_secs(1)).await;
    let repo = repo(&e.root(), "proj", &[("a.txt", "a\n")]);
    let (merged, m) = e.run_done(&repo, "write m.txt m").await;
    let (clean, c) = e.run_done(&repo, "").await;
    let (work, w) = e.run_done(&repo, "write keep.txt precious").await;
    let (fresh, f) = e.run_done(&repo, "").await;
    let r =
        e.s.post(&format!("/api/executions/{merged}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for id in [clean, work] {
        ended_days_ago(&e.s, id, 30).await;
    }
    let dir = |row: &Value| PathBuf::from(row["cwd"].as_str().unwrap());
    common::eventually("merged and stale clean worktrees removed", || async {
        (!dir(&m).exists() && !dir(&c).exists()).then_some(())
    })
    .await;
    let health = common::eventually("health counts the two left", || async {
        let h = e.s.get("/api/system/health/detailed").await.body;
        (h["worktrees"]["count"] == 2).then_some(h)
    })
    .await;
    assert!(
        health["worktrees"]["disk_bytes"].as_u64().unwrap() > 0,
        "{health}"
    );
    // Old but with uncommitted work: kept. Recent: kept.
    assert!(dir(&w).join("keep.txt").exists());
    assert!(dir(&f).exists());
    let branches = cm_branches(&repo);
    assert_eq!(branches.lines().count(), 2, "{branches}");
    assert!(e.diff(fresh).await["state"] == "active");
}

/// The JSON lines of the server's main log that carry `msg` about execution `id`.
fn log_lines(s: &TestServer, msg: &str, id: i64) -> usize {
    let text = std::fs::read_to_string(s.log_dir().join("claude-manager.log")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["msg"] == msg && v["execution_id"] == id)
        .count()
}

/// Waits until the reaper has made `passes` more passes.
async fn reaper_passes(s: &TestServer, passes: u64) {
    let runs = |h: &Value| h["reaper"]["runs"].as_u64().unwrap_or(0);
    let start = runs(&s.get("/api/system/health/detailed").await.body);
    common::eventually("the reaper passes again", || async {
        let h = s.get("/api/system/health/detailed").await.body;
        (runs(&h) >= start + passes).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_worktrees_of_a_moved_or_deleted_repository_are_removed_and_recorded_once() {
    let mut e = start_with(|c| c.reap_interval = std::time::Duration::from_secs(1)).await;
    let moved = repo(&e.root(), "moved", &[("a.txt", "a\n")]);
    let deleted = repo(&e.root(), "deleted", &[("a.txt", "a\n")]);
    // Recent runs with uncommitted work: only the repository's disappearance removes them.
    let (m, m_row) = e.run_done(&moved, "write m.txt m").await;
    let (d, d_row) = e.run_done(&deleted, "write d.txt d").await;
    let dir = |row: &Value| PathBuf::from(row["cwd"].as_str().unwrap());
    std::fs::rename(&moved, e.root().join("moved-elsewhere")).unwrap();
    std::fs::remove_dir_all(&deleted).unwrap();
    common::eventually("both worktree directories deleted", || async {
        (!dir(&m_row).exists() && !dir(&d_row).exists()).then_some(())
    })
    .await;
    for id in [m, d] {
        let r = e.s.get(&format!("/api/executions/{id}/diff")).await;
        assert_eq!(
            (r.status, r.code()),
            (409, "worktree_removed"),
            "{}",
            r.text
        );
        assert!(r.text.contains("no longer exists"), "{}", r.text);
    }
    // Said once, not on every pass; no failure logged.
    reaper_passes(&e.s, 3).await;
    for id in [m, d] {
        assert_eq!(log_lines(&e.s, "a worktree was recorded removed", id), 1);
        let failed = "removing a worktree failed (logged once; retried every pass)";
        assert_eq!(log_lines(&e.s, failed, id), 0);
    }
    let h = e.s.get("/api/system/health/detailed").await.body;
    assert_eq!(h["worktrees"]["count"], 0, "{h}");
}

#[tokio::test]
async fn a_worktree_directory_deleted_by_hand_is_recorded_removed_keeping_unmerged_commits() {
    let mut e = start_with(|c| c.reap_interval = std::time::Duration::from_secs(1)).await;
    let repo = repo(&e.root(), "proj", &[("a.txt", "a\n")]);
    let (clean, c_row) = e.run_done(&repo, "").await;
    let (work, w_row) = e.run_done(&repo, "write keep.txt precious").await;
    let dir = |row: &Value| PathBuf::from(row["cwd"].as_str().unwrap());
    // The work is committed on the run's branch before its directory is deleted.
    git(&dir(&w_row), &["add", "--all"]);
    git(&dir(&w_row), &["commit", "--quiet", "-m", "precious"]);
    std::fs::remove_dir_all(dir(&c_row)).unwrap();
    std::fs::remove_dir_all(dir(&w_row)).unwrap();
    common::eventually("both recorded removed", || async {
        let a = e.s.get(&format!("/api/executions/{clean}/diff")).await;
        let b = e.s.get(&format!("/api/executions/{work}/diff")).await;
        (a.text.contains("deleted outside") && b.text.contains("deleted outside")).then_some((a, b))
    })
    .await;
    // git forgot both; the branch with nothing unmerged is gone, the one with a commit stays.
    let task_of = |row: &Value| row["task_id"].as_i64().unwrap();
    let branches = cm_branches(&repo);
    assert!(
        !branches.contains(&format!("cm/{}-{clean}", task_of(&c_row))),
        "{branches}"
    );
    assert!(
        branches.contains(&format!("cm/{}-{work}", task_of(&w_row))),
        "{branches}"
    );
    assert_eq!(
        git(&repo, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    let r = e.s.get(&format!("/api/executions/{work}/diff")).await;
    assert!(
        r.text.contains("kept: it has commits not merged"),
        "{}",
        r.text
    );
    reaper_passes(&e.s, 2).await;
    assert_eq!(log_lines(&e.s, "a worktree was recorded removed", work), 1);
}
