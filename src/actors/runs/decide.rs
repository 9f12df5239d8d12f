//! What a request to run a task becomes, decided by the run queue itself, one request at a time:
//! is the task busy, which agent, which directory, which argv. Two requests for one idle task
//! reach here one after the other, and the second finds the first one's execution: exactly one
//! is accepted, the other is `task_busy`.

use std::path::PathBuf;

use super::{RunError, RunsState};
use crate::agent_cli;
use crate::db::tasks::Task;
use crate::db::{agents, tasks, DbError};
use crate::error::ApiError;
use crate::isolation::{self, WorktreeRequest};
use crate::validate::check_dir;
use serde_json::Value;

/// What a run of `task` is asked: its title, then its description if it has one.
pub fn prompt_for(task: &Task) -> String {
    if task.description.trim().is_empty() {
        task.title.clone()
    } else {
        format!("{}\n\n{}", task.title, task.description)
    }
}

/// The agent's `approval_timeout_secs` if its CLI takes our hooks (Claude Code), else `None`.
pub fn approval_timeout(def: &crate::db::agents::AgentDef) -> Option<u64> {
    agent_cli::speaks_claude_hooks(def).then_some(def.approval_timeout_secs)
}

/// A validated request to run a task with an agent.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub task_id: i64,
    pub priority: i64,
    pub agent_id: i64,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// Written to the CLI's stdin, never put in argv.
    pub prompt: String,
    /// How the CLI's stdout is read (its kind's format).
    pub output: agent_cli::OutputFormat,
    /// Run in its own git worktree (`isolation: "worktree"`), made when the run is recorded.
    pub worktree: Option<crate::isolation::WorktreeRequest>,
    /// The agent's `approval_timeout_secs` (its permission prompts, issue 16); `None` when its
    /// CLI is not Claude Code (`agent_cli::speaks_claude_hooks`): it gets no hooks.
    pub approval_timeout_secs: Option<u64>,
}

/// `POST /api/tasks/{id}/run` as the route parsed it.
#[derive(Debug, Clone)]
pub struct RunAsk {
    pub task_id: i64,
    /// Overrides the task's agent.
    pub agent_id: Option<i64>,
    /// Continue this conversation (already checked to be a conversation id).
    pub resume: Option<String>,
    /// `"worktree"` or `"none"`: the run's own choice of isolation (overrides the task's and
    /// the agent's).
    pub isolation: Option<String>,
}

/// Whether the run gets its own worktree: the run's own `isolation`, else the task's
/// (`meta.isolation`), else the agent's.
fn isolation_wanted(
    asked: Option<&str>,
    task: &tasks::Task,
    agent: &agents::Agent,
) -> Result<bool, ApiError> {
    if let Some(v) = isolation::parse("isolation", asked)? {
        return Ok(v);
    }
    let meta: Value = serde_json::from_str(task.meta.get()).unwrap_or_default();
    let from_task = meta.get("isolation").and_then(Value::as_str);
    if let Some(v) = isolation::parse("meta.isolation", from_task)? {
        return Ok(v);
    }
    Ok(agent.def.isolation.as_deref() == Some(isolation::WORKTREE))
}

impl RunsState {
    /// The run `ask` describes, or why there is none. Runs inside the actor, so nothing can
    /// change between the check and the queueing that follows it.
    pub(super) async fn decide(&self, ask: RunAsk) -> Result<RunRequest, RunError> {
        let task_id = ask.task_id;
        let queued = self.pending.iter().any(|q| q.request.task_id == task_id);
        let (task, agent) = self
            .args
            .deps
            .db
            .read(move |c| {
                let task = tasks::get(c, task_id)?;
                let agent_id = ask.agent_id.or(task.as_ref().and_then(|t| t.agent_id));
                let agent = agent_id.map(|id| agents::get(c, id)).transpose()?;
                Ok::<_, DbError>((task, agent.map(|a| (agent_id, a))))
            })
            .await?;
        let task = task.ok_or(RunError::TaskNotFound(task_id))?;
        if queued || task.executions_active > 0 {
            return Err(RunError::TaskBusy(task_id));
        }
        let agent = match agent {
            None => {
                return Err(RunError::Invalid(ApiError::validation(
                    "agent_id",
                    "the task has no agent; name one in the body (agent_id)",
                )))
            }
            Some((id, None)) => {
                return Err(RunError::Invalid(ApiError::validation(
                    "agent_id",
                    format!("no agent with id {}", id.unwrap_or_default()),
                )))
            }
            Some((_, Some(agent))) => agent,
        };
        if let Some(id) = ask.resume.as_deref() {
            if agent_cli::run_resume_args(&agent.def, id).is_none() {
                return Err(RunError::Invalid(ApiError::validation(
                    "resume",
                    format!(
                        "{} agents cannot continue a conversation in a headless run",
                        agent_cli::spec(agent.def.kind).label
                    ),
                )));
            }
        }
        let dir = task.project_path.clone().or(agent.def.project_dir.clone());
        let roots = self.args.allowed_roots.clone();
        let cwd: PathBuf =
            tokio::task::spawn_blocking(move || check_dir("project_dir", dir.as_deref(), &roots))
                .await
                .map_err(|e| RunError::Invalid(ApiError::bad_request(e.to_string())))?
                .map_err(RunError::Invalid)?;
        let worktree = match isolation_wanted(ask.isolation.as_deref(), &task, &agent)
            .map_err(RunError::Invalid)?
        {
            true => Some(WorktreeRequest {
                repo: isolation::locate("isolation", &cwd, &self.args.allowed_roots)
                    .await
                    .map_err(RunError::Invalid)?,
                worktrees_dir: self.args.worktrees_dir.clone(),
            }),
            false => None,
        };
        let approval_timeout_secs = approval_timeout(&agent.def);
        Ok(RunRequest {
            task_id,
            priority: task.priority,
            agent_id: agent.id,
            argv: agent_cli::run_argv(&agent.def, ask.resume.as_deref()),
            cwd,
            output: agent_cli::spec(agent.def.kind).output,
            env: agent.def.env.into_iter().collect(),
            prompt: prompt_for(&task),
            worktree,
            approval_timeout_secs,
        })
    }
}
