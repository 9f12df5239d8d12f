//! Runs that outlive an image: on reload the running ones are handed over (`hand_over`) and the
//! next image takes them over (`adopt_inherited`): a run actor around the inherited pipes and
//! child (a pidfd; still our child, so its exit code is exact). Queued runs are in the DB: the
//! next start, after a reload or a restart, queues them again (`adopt`).

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use slog::{error, info, warn};

use super::run::{RunActor, RunArgs, RunIo, RunMsg};
use super::{decide, prompt_for, Queued, RunRequest, RunsMsg, RunsState};
use crate::agent_cli;
use crate::db::executions::{self, ExecutionStatus};
use crate::db::{agents, tasks, DbError};
use crate::handover::InheritedRun;
use crate::pty::{self, ProcessTree, SignalOutcome};

/// How long one run may take to answer a handover request.
const HAND_OVER_CALL: Duration = Duration::from_secs(5);
/// How long a run that was ending when the reload came may take to record its end.
const ENDING_WAIT: Duration = Duration::from_secs(5);

impl RunsState {
    /// Queues the runs an earlier server accepted but never started. Each runs as it was
    /// accepted (argv and cwd recorded then), with its agent's environment and its task's
    /// prompt read now; one whose task or agent is gone is recorded failed instead.
    pub(super) async fn adopt(&mut self) {
        let boot_id = self.args.boot_id.to_string();
        let db = self.args.deps.db.clone();
        let queued = match db
            .write(move |c| executions::adopt_queued_runs(c, &boot_id))
            .await
        {
            Ok(q) => q,
            Err(e) => {
                error!(self.log, "taking over queued runs failed"; "error" => %e);
                return;
            }
        };
        for run in queued {
            let (task_id, agent_id) = (run.task_id, run.agent_id);
            let found = db
                .read(move |c| {
                    let task = task_id.map(|id| tasks::get(c, id)).transpose()?.flatten();
                    let agent = agent_id.map(|id| agents::get(c, id)).transpose()?.flatten();
                    Ok::<_, DbError>((task, agent))
                })
                .await;
            let request = match (found, run.cwd) {
                (Ok((Some(task), Some(agent))), Some(cwd)) if !run.command.is_empty() => {
                    let timeout = decide::approval_timeout(&agent.def);
                    RunRequest {
                        task_id: task.id,
                        priority: task.priority,
                        agent_id: agent.id,
                        argv: run.command,
                        cwd: PathBuf::from(cwd),
                        env: agent.def.env.into_iter().collect(),
                        prompt: prompt_for(&task),
                        output: agent_cli::spec(agent.def.kind).output,
                        worktree: None,
                        approval_timeout_secs: timeout,
                    }
                }
                (Err(e), _) => {
                    error!(self.log, "reading a queued run's task failed"; "execution_id" => run.id, "error" => %e);
                    continue;
                }
                (Ok((task, _)), _) => {
                    let reason = "queued before a restart, and its task or agent no longer exists";
                    let task_id = task.map(|t| t.id);
                    self.record_end(run.id, task_id, ExecutionStatus::Failed, reason.into())
                        .await;
                    continue;
                }
            };
            info!(self.log, "queued run taken over from the previous start"; "execution_id" => run.id);
            self.pending.push(Queued {
                execution_id: run.id,
                order: self.next_order,
                request,
            });
            self.next_order += 1;
        }
    }

    /// Reload: starts no more runs and hands every running one over, all at once. A run that
    /// cannot be (its child was exiting) is given a moment to record its own end.
    pub(super) async fn hand_over(&mut self) -> Vec<super::RunHandover> {
        self.stopping = true;
        let live: Vec<(i64, ActorRef<RunMsg>)> = self
            .running
            .iter()
            .map(|(id, a)| (*id, a.clone()))
            .collect();
        let calls = live.iter().map(|(_, actor)| {
            let actor = actor.clone();
            async move { actor.call(RunMsg::HandOver, Some(HAND_OVER_CALL)).await }
        });
        let replies = futures_util::future::join_all(calls).await;
        let mut out = Vec::new();
        for ((id, actor), reply) in live.into_iter().zip(replies) {
            match reply {
                Ok(CallResult::Success(Some(handed))) => {
                    self.running.remove(&id);
                    actor.stop(Some("handed over".into()));
                    out.push(handed);
                }
                _ => {
                    let _ = actor.get_cell().wait(Some(ENDING_WAIT)).await;
                }
            }
        }
        info!(self.log, "runs handed over"; "runs" => out.len());
        out
    }

    /// Takes over the runs the image before a reload handed over (once, at start).
    pub(super) async fn adopt_inherited(&mut self, me: &ActorRef<RunsMsg>) {
        let inherited = match self.args.inherited.lock() {
            Ok(mut runs) => std::mem::take(&mut *runs),
            Err(_) => return,
        };
        let named = inherited.len();
        for run in inherited {
            let (id, task_id) = (run.record.execution_id, run.record.task_id);
            let tree = run.tree();
            if let Err(why) = self.adopt_one(me, run).await {
                warn!(self.log, "could not take over a run; stopping it";
                      "execution_id" => id, "error" => &why);
                stop_unadoptable(tree).await;
                let reason = format!("server reloaded: the run could not be taken over ({why})");
                self.record_end(id, Some(task_id), ExecutionStatus::Interrupted, reason)
                    .await;
            }
        }
        if named > 0 {
            info!(self.log, "runs taken over"; "named" => named, "running" => self.running.len());
        }
    }

    async fn adopt_one(
        &mut self,
        me: &ActorRef<RunsMsg>,
        mut run: InheritedRun,
    ) -> Result<(), String> {
        let tree = run.tree();
        let child = pty::adopt_child(tree.clone()).map_err(|e| e.to_string())?;
        let io = run.pipes(child).map_err(|e| e.to_string())?;
        let r = run.record;
        let deps = self.args.deps.clone();
        deps.lifecycle.live.insert(r.execution_id, tree);
        let args = RunArgs {
            execution_id: r.execution_id,
            task_id: r.task_id,
            io,
            position: r.position,
            deps,
            queue: me.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, RunActor, args, me.get_cell())
            .await
            .map_err(|e| e.to_string())?;
        info!(self.log, "run taken over"; "execution_id" => r.execution_id, "pid" => r.pid);
        self.running.insert(r.execution_id, actor);
        Ok(())
    }
}

/// A handed-over run that cannot go on: killed and reaped (still our child across the exec).
async fn stop_unadoptable(tree: ProcessTree) {
    let pid = tree.leader;
    let _ = tokio::task::spawn_blocking(move || {
        if matches!(tree.signal(Signal::SIGKILL), Ok(SignalOutcome::Delivered)) {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
    })
    .await;
}

/// What a run's inherited fds become.
impl InheritedRun {
    fn tree(&self) -> ProcessTree {
        ProcessTree {
            leader: self.record.pid,
            start_time: self.record.start_time,
            cgroup: self.record.cgroup.clone().map(Into::into),
        }
    }

    /// The child and its pipes, registered with the runtime again.
    fn pipes(&mut self, child: pty::PtyChild) -> std::io::Result<RunIo> {
        use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
        let stdin = match self.stdin.take() {
            Some(fd) => Some((
                ChildStdin::from_std(std::process::ChildStdin::from(fd))?,
                std::mem::take(&mut self.stdin_rest),
            )),
            None => None,
        };
        let stdout = match self.stdout.take() {
            Some(fd) => Some((
                ChildStdout::from_std(std::process::ChildStdout::from(fd))?,
                std::mem::take(&mut self.partial),
            )),
            None => None,
        };
        let stderr = match self.stderr.take() {
            Some(fd) => Some((
                ChildStderr::from_std(std::process::ChildStderr::from(fd))?,
                std::mem::take(&mut self.tail),
            )),
            None => None,
        };
        Ok(RunIo {
            child,
            stdin,
            stdout,
            stderr,
        })
    }
}
