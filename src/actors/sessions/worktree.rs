//! An isolated agent session's git worktree (`isolation: "worktree"`), made right after its
//! execution row exists and before its process starts: the same worktree, branch naming and
//! record as an isolated run (`crate::isolation`), the branch `cm/session-<execution-id>`.

use slog::error;

use super::SessionsState;
use crate::actors::session_types::{SessionError, SessionSpec};
use crate::db::executions::ExecutionStatus;
use crate::isolation::{self, Owner};

impl SessionsState {
    /// Points `spec` at its own worktree when it asked for one. Making it failed: the session's
    /// execution is recorded failed with the reason, and the error returned.
    pub(super) async fn give_worktree(
        &self,
        execution_id: i64,
        spec: &mut SessionSpec,
    ) -> Result<(), SessionError> {
        let Some(wanted) = &spec.worktree else {
            return Ok(());
        };
        let deps = &self.args.deps;
        let owner = Owner::AgentSession;
        match isolation::isolate(&deps.db, &deps.events, wanted, owner, execution_id).await {
            Ok(cwd) => {
                spec.cwd = cwd;
                Ok(())
            }
            Err(e) => {
                error!(self.log, "creating a session's worktree failed";
                       "execution_id" => execution_id, "error" => %e);
                let reason = format!("could not create its git worktree: {e}");
                deps.lifecycle
                    .record_without_exit(execution_id, ExecutionStatus::Failed, reason)
                    .await;
                Err(e.into())
            }
        }
    }
}
