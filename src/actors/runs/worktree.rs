//! An isolated run's git worktree, made right after its execution row exists (the branch is
//! named after the execution id): the run then works there instead of in its project directory.

use slog::error;

use super::{RunError, RunRequest, RunsState};
use crate::db::executions::{self, ExecutionStatus, ExecutionSummary};
use crate::isolation;

impl RunsState {
    /// Gives `request` its worktree when it asked for one, pointing the run (and `row`) at it.
    /// `Some(row)`: making it failed, and the run was recorded failed with the reason instead of
    /// being queued.
    pub(super) async fn give_worktree(
        &mut self,
        row: &mut ExecutionSummary,
        request: &mut RunRequest,
    ) -> Result<Option<ExecutionSummary>, RunError> {
        let Some(wanted) = request.worktree.take() else {
            return Ok(None);
        };
        let deps = &self.args.deps;
        let owner = isolation::Owner::Task(request.task_id);
        let made = isolation::isolate(&deps.db, &deps.events, &wanted, owner, row.id).await;
        match made {
            Ok(cwd) => {
                row.cwd = Some(cwd.display().to_string());
                request.cwd = cwd;
                Ok(None)
            }
            Err(e) => {
                let reason = format!("could not create its git worktree: {e}");
                error!(self.log, "creating a run's worktree failed"; "execution_id" => row.id, "error" => %e);
                self.record_end(
                    row.id,
                    Some(request.task_id),
                    ExecutionStatus::Failed,
                    reason,
                )
                .await;
                let id = row.id;
                let now = self
                    .args
                    .deps
                    .db
                    .read(move |c| executions::get_summary(c, id))
                    .await?;
                Ok(Some(now.unwrap_or_else(|| row.clone())))
            }
        }
    }
}
