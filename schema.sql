-- claude-manager: the whole database schema.
--
-- Applied at start by `src/db/migrate.rs`. Each `-- version: N` section is applied once, in order,
-- inside one transaction, when `PRAGMA user_version` < N; user_version is then set to N.
-- Never edit a released section: append a new one.
-- Timestamps are RFC 3339 UTC text with milliseconds ('2026-11-27T21:00:00.123Z'): they sort as text.

-- version: 1
CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   TEXT    NOT NULL DEFAULT '',
    priority      INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('draft','pending','running','succeeded','failed','cancelled')),
    tags          TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    project_path  TEXT,
    agent_id      INTEGER,
    meta          TEXT    NOT NULL DEFAULT '{}',   -- JSON object
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    started_at    TEXT,
    completed_at  TEXT,
    -- Kept by the executions_count_* triggers below, so listing tasks needs no per-row counting.
    executions_total   INTEGER NOT NULL DEFAULT 0,
    executions_active  INTEGER NOT NULL DEFAULT 0  -- pending or running
);
CREATE INDEX tasks_newest ON tasks (created_at DESC, id DESC);
CREATE INDEX tasks_status ON tasks (status);

CREATE TABLE executions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id           INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    agent_id          INTEGER,
    type              TEXT NOT NULL CHECK (type IN ('terminal','agent_session','agent_run')),
    status            TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending','running','succeeded','failed','cancelled','interrupted')),
    reason            TEXT,                 -- why it ended as it did (idle, stopped, server restart, ...)
    boot_id           TEXT NOT NULL,        -- the server run that started it (startup reconciliation)
    session_id        TEXT,                 -- terminal / agent session id, when it has one
    pid               INTEGER,
    pid_start_time    INTEGER,              -- /proc/<pid>/stat field 22: guards against PID reuse
    pgid              INTEGER,
    cwd               TEXT,
    command           TEXT NOT NULL DEFAULT '[]',   -- argv as a JSON array
    exit_code         INTEGER,
    exit_signal       INTEGER,
    created_at        TEXT NOT NULL,
    started_at        TEXT,
    finished_at       TEXT,
    last_activity_at  TEXT,
    bytes_out         INTEGER NOT NULL DEFAULT 0,
    output_tail       BLOB,                 -- the last bytes of output (64 KiB at most)
    output_truncated  INTEGER NOT NULL DEFAULT 0,
    result            TEXT,
    cost_usd          REAL,
    usage             TEXT,                 -- JSON
    meta              TEXT NOT NULL DEFAULT '{}'    -- JSON object
);
CREATE INDEX executions_task ON executions (task_id, id DESC);
CREATE INDEX executions_status ON executions (status);
CREATE INDEX executions_newest ON executions (created_at DESC, id DESC);

CREATE TRIGGER executions_count_insert AFTER INSERT ON executions
WHEN NEW.task_id IS NOT NULL BEGIN
    UPDATE tasks SET executions_total = executions_total + 1,
                     executions_active = executions_active + (NEW.status IN ('pending','running'))
     WHERE id = NEW.task_id;
END;
CREATE TRIGGER executions_count_update AFTER UPDATE OF status, task_id ON executions BEGIN
    UPDATE tasks SET executions_total = executions_total - 1,
                     executions_active = executions_active - (OLD.status IN ('pending','running'))
     WHERE id = OLD.task_id;
    UPDATE tasks SET executions_total = executions_total + 1,
                     executions_active = executions_active + (NEW.status IN ('pending','running'))
     WHERE id = NEW.task_id;
END;
CREATE TRIGGER executions_count_delete AFTER DELETE ON executions
WHEN OLD.task_id IS NOT NULL BEGIN
    UPDATE tasks SET executions_total = executions_total - 1,
                     executions_active = executions_active - (OLD.status IN ('pending','running'))
     WHERE id = OLD.task_id;
END;

CREATE TABLE execution_events (
    execution_id  INTEGER NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    ts            TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    data          TEXT    NOT NULL,        -- JSON
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;

-- version: 2
-- Credentials (issue 6). Only SHA-256 hashes of the 256-bit secrets are stored.
CREATE TABLE auth_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    scope         TEXT NOT NULL CHECK (scope IN ('admin','monitor')),
    token_hash    BLOB NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,                  -- updated at most once a minute
    revoked_at    TEXT                   -- set by `token revoke` / `token reset-admin`; row kept for `token list`
);

-- Browser sessions from POST /api/auth/login; a session has its token's scope and ends with it.
CREATE TABLE auth_sessions (
    session_hash  BLOB PRIMARY KEY,
    token_id      INTEGER NOT NULL REFERENCES auth_tokens(id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL          -- slides forward on use
) WITHOUT ROWID;
CREATE INDEX auth_sessions_token ON auth_sessions (token_id, created_at);

-- version: 3
-- Agent definitions (issue 4). The definition is validated as a whole by the HTTP layer and
-- stored as one JSON object, so PATCH re-validates the merged result and a new field needs no
-- migration; the name is a column of its own for uniqueness. `conversation_id` is the id the
-- agent's `{session_id}` template expands to; `conversation_started` says whether a session has
-- used it yet (first start vs. resume).
CREATE TABLE agents (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    definition            TEXT    NOT NULL,     -- JSON object (see src/db/agents.rs)
    conversation_id       TEXT,
    conversation_started  INTEGER NOT NULL DEFAULT 0,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL
);
CREATE INDEX executions_agent ON executions (agent_id, status);

-- version: 4
-- The cgroup a session's process tree ran in (one per session, see src/pty/cgroup.rs): after a
-- crash, reconciliation kills whatever is still in it. NULL when the server ran without cgroups;
-- then `pgid` (= the session id) and `pid_start_time` find the survivors in /proc.
ALTER TABLE executions ADD COLUMN cgroup TEXT;

-- version: 7
-- Isolated runs: the git worktree a run works in, on its own branch from the repository at its
-- cwd, and what became of it. One row per isolated execution; the worktree directory itself is
-- removed by merge-then-reaper, discard, or the reaper's retention rule (`removed_at`).
CREATE TABLE worktrees (
    execution_id  INTEGER PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,
    repo          TEXT NOT NULL,           -- top level of the repository the run started from
    path          TEXT NOT NULL,           -- the worktree directory the run works in
    subdir        TEXT NOT NULL DEFAULT '',-- the run's cwd inside the repository ('' = top level)
    branch        TEXT NOT NULL,           -- cm/<task-id>-<execution-id>
    base_commit   TEXT NOT NULL,           -- HEAD of the repository when the worktree was made
    base_branch   TEXT,                    -- the branch checked out then; NULL = detached HEAD
    state         TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','merged','discarded')),
    merge_commit  TEXT,                    -- the base branch's new tip after a merge
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    removed_at    TEXT                     -- worktree directory and branch deleted
);
CREATE INDEX worktrees_live ON worktrees (removed_at, state);

-- version: 8
-- Agents that ask (issue 16). `attention` on an execution: NULL (working or idle), 'input'
-- (waiting for the user), 'approval' (a permission prompt is pending) or 'done'.
ALTER TABLE executions ADD COLUMN attention TEXT
    CHECK (attention IS NULL OR attention IN ('input','approval','done'));

-- Permission prompts of agent sessions (PermissionRequest hook) and runs (permission prompt
-- tool). `request_key` is chosen by the asking hook process, so an asker that reconnects after
-- a server restart finds its own request instead of making a second one. `deadline` is when the
-- request is denied unanswered (the agent's approval_timeout_secs after `created_at`).
CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    request_key   TEXT    NOT NULL UNIQUE CHECK (length(request_key) BETWEEN 1 AND 128),
    execution_id  INTEGER REFERENCES executions(id) ON DELETE CASCADE,
    session_id    TEXT,
    agent_id      INTEGER,
    source        TEXT    NOT NULL CHECK (source IN ('hook','mcp')),
    tool_name     TEXT    NOT NULL,
    tool_input    TEXT    NOT NULL DEFAULT '{}',   -- JSON object, as the agent sent it
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending','allowed','denied','cancelled')),
    message       TEXT,                             -- the decider's message to the agent
    decided_by    TEXT,                             -- 'token:<id>', 'rule:<pattern>', 'timeout', 'server'
    created_at    TEXT    NOT NULL,
    deadline      TEXT    NOT NULL,
    decided_at    TEXT
);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE INDEX approvals_execution ON approvals (execution_id);

-- The per-session secrets hook commands present on the local channel: only hashes are kept,
-- so a reconnecting asker is recognised after a restart while its execution still runs.
CREATE TABLE hook_tokens (
    token_hash    BLOB    PRIMARY KEY,
    execution_id  INTEGER REFERENCES executions(id) ON DELETE CASCADE,
    session_id    TEXT,
    agent_id      INTEGER,
    created_at    TEXT    NOT NULL
) WITHOUT ROWID;

-- version: 9
-- Web Push subscriptions: one row per browser that asked for notifications (src/push/). The
-- endpoint is the push service's URL for that browser; p256dh and auth are its encryption keys
-- (base64url, RFC 8291). A push service answering 404/410 ends the row.
CREATE TABLE push_subscriptions (
    id               INTEGER PRIMARY KEY,
    endpoint         TEXT NOT NULL UNIQUE,
    p256dh           TEXT NOT NULL,
    auth             TEXT NOT NULL,
    user_agent       TEXT,
    created_at       TEXT NOT NULL,
    last_success_at  TEXT,
    last_failure_at  TEXT,
    last_error       TEXT
);

-- version: 12
-- `failed_in_a_row` (/metrics) reads the newest finished agent runs at every scrape: walked in
-- this index's order instead of sorting the whole table. An agent session's review routes find
-- its execution by session id. Why a worktree was removed when it was not by merge or discard
-- (its repository was moved or deleted, its directory deleted by hand): said once, kept here.
CREATE INDEX executions_runs_finished ON executions (type, finished_at, id);
CREATE INDEX executions_session ON executions (session_id) WHERE session_id IS NOT NULL;
ALTER TABLE worktrees ADD COLUMN removed_reason TEXT;
