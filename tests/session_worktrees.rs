//! Isolated agent sessions on real git repositories made by the tests: each session in its own
//! worktree and branch (`cm/session-<execution-id>`), reviewed by its session id
//! (`/api/agent-sessions/{id}/diff|merge|discard`), refused like runs outside a repository or
//! the allowed roots, and tidied by the reaper under the same rules as runs.

mod common;
use std::path::{Path, PathBuf};

use common::git::{cm_branches, ended_days_ago, git, repo};
use common::term::{events, wait_event, wait_exited};
use common::{TestServer, Ws};
use serde_json::{json, Value};

struct Env {
    s: TestServer,
    roots: tempfile::TempDir,
    ev: Ws,
}

async fn start() -> Env {
    let roots = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(roots.path()).unwrap();
    let s = TestServer::start_with(|c| {
        c.allowed_roots = vec![root];
        c.reap_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let ev = events(&s).await;
    Env { s, roots, ev }
}

impl Env {
    fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.roots.path()).unwrap()
    }

    /// An agent whose session is `sh -c script` in `dir`, `isolation` as given.
    async fn agent(&self, name: &str, dir: &Path, script: &str, isolation: &str) -> i64 {
        let r = self
            .s
            .post(
                "/api/agents",
                json!({"name": name, "command": ["sh", "-c", script],
                       "session_args": {"first": [], "resume": []},
                       "project_dir": dir.display().to_string(), "isolation": isolation}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_i64().unwrap()
    }

    /// Starts the agent's session (asking `body`); returns its description.
    async fn session(&self, agent: i64, body: Value) -> Value {
        let r = self
            .s
            .post(&format!("/api/agents/{agent}/session"), body)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body
    }

    /// A session of `script` that ends on its own, to its end: (session id, execution id, cwd).
    async fn session_done(
        &mut self,
        name: &str,
        dir: &Path,
        script: &str,
    ) -> (String, i64, PathBuf) {
        let agent = self.agent(name, dir, script, "worktree").await;
        let info = self.session(agent, json!({})).await;
        let id = info["id"].as_str().unwrap().to_string();
        wait_exited(&mut self.ev, &id).await;
        let exec = info["execution_id"].as_i64().unwrap();
        (id, exec, PathBuf::from(info["cwd"].as_str().unwrap()))
    }
}

async fn until_file(path: PathBuf) {
    common::eventually("the session wrote its file", || async {
        path.exists().then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_isolated_agent_sessions_on_one_repo_never_see_each_others_files() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("README.md", "hello\n")]);
    let base = git(&repo, &["rev-parse", "HEAD"]);
    // One asks by its definition, the other (defined without isolation) by its request.
    let a = e
        .agent("a", &repo, "echo A > a.txt; exec sleep 600", "worktree")
        .await;
    let b = e
        .agent("b", &repo, "echo B > b.txt; exec sleep 600", "none")
        .await;
    let sa = e.session(a, json!({})).await;
    let sb = e.session(b, json!({"isolation": "worktree"})).await;
    let (wa, wb) = (
        PathBuf::from(sa["cwd"].as_str().unwrap()),
        PathBuf::from(sb["cwd"].as_str().unwrap()),
    );
    until_file(wa.join("a.txt")).await;
    until_file(wb.join("b.txt")).await;
    // Both live at once, each in its own directory and branch; the user's checkout saw neither.
    assert!(wa != wb && wa != repo && wb != repo, "{wa:?} {wb:?}");
    assert!(!wa.join("b.txt").exists() && !wb.join("a.txt").exists());
    assert!(!repo.join("a.txt").exists() && !repo.join("b.txt").exists());
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let (xa, xb) = (
        sa["execution_id"].as_i64().unwrap(),
        sb["execution_id"].as_i64().unwrap(),
    );
    let branches = cm_branches(&repo);
    for x in [xa, xb] {
        assert!(branches.contains(&format!("cm/session-{x}")), "{branches}");
    }
    let row = e.s.get(&format!("/api/executions/{xa}")).await.body;
    assert_eq!(
        (row["isolated"].as_bool(), row["cwd"].as_str()),
        (Some(true), wa.to_str())
    );

    // The diff by session id: only its own file, against the recorded base commit.
    let (ida, idb) = (sa["id"].as_str().unwrap(), sb["id"].as_str().unwrap());
    let d = e.s.get(&format!("/api/agent-sessions/{ida}/diff")).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["base_commit"], base);
    assert_eq!(d.body["branch"], format!("cm/session-{xa}"));
    let files: Vec<&str> = d.body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["a.txt"]);
    assert_eq!(
        e.s.get(&format!("/api/executions/{xa}/diff")).await.body["files"],
        d.body["files"]
    );

    // Not while it runs; merged once stopped.
    let r =
        e.s.post(&format!("/api/agent-sessions/{ida}/merge"), json!({}))
            .await;
    assert_eq!((r.status, r.code()), (409, "run_active"), "{}", r.text);
    assert_eq!(
        e.s.delete(&format!("/api/agent-sessions/{ida}"))
            .await
            .status,
        202
    );
    wait_exited(&mut e.ev, ida).await;
    let r =
        e.s.post(&format!("/api/agent-sessions/{ida}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["merge"]["fast_forward"], true);
    wait_event(&mut e.ev, "worktree.merged", |d| d["execution_id"] == xa).await;
    assert_eq!(std::fs::read_to_string(repo.join("a.txt")).unwrap(), "A\n");
    let msg = git(&repo, &["log", "-1", "--format=%B"]);
    assert!(
        msg.contains(&format!("claude-manager agent session {xa}")),
        "{msg}"
    );

    // The other one thrown away: its worktree and branch go, the checkout never had its file.
    assert_eq!(
        e.s.delete(&format!("/api/agent-sessions/{idb}"))
            .await
            .status,
        202
    );
    wait_exited(&mut e.ev, idb).await;
    let r =
        e.s.post(&format!("/api/agent-sessions/{idb}/discard"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!wb.exists());
    assert!(!cm_branches(&repo).contains(&format!("cm/session-{xb}")));
    assert!(!repo.join("b.txt").exists());
    let r = e.s.get(&format!("/api/agent-sessions/{idb}/diff")).await;
    assert_eq!((r.status, r.code()), (409, "worktree_removed"));
    // A session id that names nothing is 404.
    let r =
        e.s.get(&format!("/api/agent-sessions/{}/diff", "0".repeat(32)))
            .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn an_isolated_session_is_refused_422_outside_a_repository_or_the_allowed_roots() {
    let e = start().await;
    let plain = e.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let agent = e.agent("plain", &plain, "exec sleep 600", "worktree").await;
    let path = format!("/api/agents/{agent}/session");
    let r = e.s.post(&path, json!({})).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation")),
        "{}",
        r.text
    );
    assert!(r.text.contains("not inside"), "{}", r.text);
    let r = e.s.post(&path, json!({"isolation": "sandbox"})).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation"))
    );
    // Nothing was started by the refusals.
    assert_eq!(e.s.get("/api/agent-sessions").await.body["total"], 0);
    // "none" for this session: it runs in place.
    let r = e.s.post(&path, json!({"isolation": "none"})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["cwd"].as_str(), plain.to_str());
    let id = r.body["id"].as_str().unwrap();
    let r = e.s.get(&format!("/api/agent-sessions/{id}/diff")).await;
    assert_eq!((r.status, r.code()), (409, "not_isolated"));

    // The allowed root is inside a repository whose top level is outside it: refused too.
    let outer = repo(&e.root(), "outer", &[("a.txt", "a\n")]);
    let inner = outer.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let s = TestServer::start_with(|c| c.allowed_roots = vec![inner.clone()]).await;
    let r = s
        .post(
            "/api/agents",
            json!({"name": "inner", "command": ["sh", "-c", "exec sleep 600"],
                   "session_args": {"first": [], "resume": []},
                   "project_dir": inner.display().to_string(), "isolation": "worktree"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = s
        .post(&format!("/api/agents/{}/session", r.body["id"]), json!({}))
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].as_str()),
        (422, Some("isolation")),
        "{}",
        r.text
    );
    assert!(r.text.contains("outside the allowed roots"), "{}", r.text);
}

#[tokio::test]
async fn the_reaper_tidies_session_worktrees_by_the_rules_of_runs() {
    let mut e = start().await;
    let repo = repo(&e.root(), "proj", &[("a.txt", "a\n")]);
    let (merged, _, m) = e.session_done("m", &repo, "echo m > m.txt").await;
    let (_, clean, c) = e.session_done("c", &repo, "true").await;
    let (_, work, w) = e.session_done("w", &repo, "echo keep > keep.txt").await;
    let live = e.agent("l", &repo, "exec sleep 600", "worktree").await;
    let l = PathBuf::from(e.session(live, json!({})).await["cwd"].as_str().unwrap());
    let r =
        e.s.post(&format!("/api/agent-sessions/{merged}/merge"), json!({}))
            .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for id in [clean, work] {
        ended_days_ago(&e.s, id, 30).await;
    }
    common::eventually(
        "merged and stale clean session worktrees removed",
        || async { (!m.exists() && !c.exists()).then_some(()) },
    )
    .await;
    // Old with uncommitted work: kept. Still running: kept.
    let h = common::eventually("health counts the two left", || async {
        let h = e.s.get("/api/system/health/detailed").await.body;
        (h["worktrees"]["count"] == 2).then_some(h)
    })
    .await;
    assert!(w.join("keep.txt").exists(), "{h}");
    assert!(l.exists());
    assert_eq!(cm_branches(&repo).lines().count(), 2);
}
