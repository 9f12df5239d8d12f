//! How a session's activity and end are recorded and announced: the execution row (activity at
//! most every 5 s, the outcome once), the `execution.*` and `session.exited` events, the `exit`
//! message to viewers, and the session's public description.

use crate::actors::events::EventType;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use slog::{info, warn};

use super::TerminalState;
use crate::actors::session_types::{SessionExited, SessionInfo};
use crate::actors::sessions::SessionsMsg;
use crate::db::executions::{self, ExecutionStatus, Finish, OUTPUT_TAIL_BYTES};
use crate::protocol::Control;
use crate::pty::ExitInfo;
use crate::time::format_ts;

/// How long the record waits for the screen to parse the last output.
const SCREEN_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

impl TerminalState {
    /// Writes activity to the DB off the hot path and announces it.
    pub(super) fn touch(&self) {
        let (db, events, log) = (
            self.deps.db.clone(),
            self.deps.events.clone(),
            self.log.clone(),
        );
        let (id, at, bytes_out) = (
            self.execution_id,
            format_ts(self.last_activity.into()),
            self.replay.end() as i64,
        );
        tokio::spawn(async move {
            let row = db
                .write(move |c| {
                    executions::touch(c, id, &at, bytes_out)?;
                    executions::get_summary(c, id)
                })
                .await;
            match row {
                Ok(Some(row)) => events.publish(EventType::ExecutionUpdated, &row),
                Ok(None) => {}
                Err(e) => warn!(log, "recording activity failed"; "error" => %e),
            }
        });
    }

    /// `exit` as viewers see it, once the outcome is recorded.
    pub(super) fn final_exit_json(&self) -> Option<String> {
        self.final_status?;
        let exit = self.exit.unwrap_or(ExitInfo {
            code: None,
            signal: None,
        });
        Some(
            Control::Exit {
                code: exit.code,
                signal: exit.signal,
            }
            .to_text(),
        )
    }

    /// The child has exited and its output is drained (or the drain timed out): record, tell.
    /// Boxed: it runs once, and unboxed its future would be part of the actor's message loop,
    /// held for the session's whole life (memory per session).
    pub(super) async fn finalize(&mut self) {
        Box::pin(self.record_and_tell()).await
    }

    async fn record_and_tell(&mut self) {
        if self.final_status.is_some() {
            return;
        }
        let exit = self.exit.unwrap_or(ExitInfo {
            code: None,
            signal: None,
        });
        let status = if self.shutting_down {
            ExecutionStatus::Interrupted
        } else if self.stop_requested {
            ExecutionStatus::Cancelled
        } else if exit.code == Some(0) {
            ExecutionStatus::Succeeded
        } else {
            ExecutionStatus::Failed
        };
        // The reader is done (or stuck behind a background job): close the master.
        for task in &self.tasks {
            task.abort();
        }
        // What is left (viewers reading the end) is light: the lane takes new sessions again.
        if let Some(lane) = &mut self.lane {
            lane.leave();
        }
        info!(self.log, "session exited"; "code" => exit.code, "signal" => exit.signal,
              "status" => status.as_str(), "bytes_out" => self.replay.end());
        // No exit status: an adopted child that is no longer ours (after a crash).
        let reason = self.stop_reason.clone().or_else(|| {
            (exit.code.is_none() && exit.signal.is_none())
                .then(|| crate::handover::crash::REASON_ADOPTED.to_string())
        });
        self.record(status, reason).await;
        if let Some(text) = self.final_exit_json() {
            for viewer in self.viewers.values() {
                viewer.queue.push_text(text.clone());
            }
        }
        let _ = self.supervisor.cast(SessionsMsg::Exited(self.id.clone()));
    }

    /// Writes the outcome once and announces it (`execution.finished`, `session.exited`).
    pub(super) async fn record(&mut self, status: ExecutionStatus, reason: Option<String>) {
        self.final_status = Some(status);
        self.finished_at = Some(format_ts(SystemTime::now().into()));
        self.recorded.store(true, Ordering::SeqCst);
        let exit = self.exit.unwrap_or(ExitInfo {
            code: None,
            signal: None,
        });
        let (output_tail, output_truncated) = self.saved_output().await;
        let finish = Finish {
            status,
            reason,
            exit_code: exit.code,
            exit_signal: exit.signal,
            bytes_out: self.replay.end() as i64,
            output_truncated,
            output_tail: Some(output_tail),
        };
        self.deps
            .lifecycle
            .record_end(self.execution_id, finish, |_| Ok(()))
            .await;
        let exited = SessionExited {
            id: &self.id,
            kind: self.spec.kind,
            execution_id: self.execution_id,
            status: status.as_str(),
            code: exit.code,
            signal: exit.signal,
        };
        self.deps.events.publish(EventType::SessionExited, &exited);
    }

    /// What the execution keeps of the output: the screen rendered as plain text (scrollback
    /// and screen, no escape codes), its last [`OUTPUT_TAIL_BYTES`]; the raw ring tail only if
    /// the screen could not parse everything in time. `true` when earlier output is missing.
    async fn saved_output(&self) -> (Vec<u8>, bool) {
        let end = self.replay.end();
        if self.screen.caught_up(end, SCREEN_CATCH_UP).await {
            if let Some((text, lost)) = self.screen.text_at(end) {
                let mut cut = text.len().saturating_sub(OUTPUT_TAIL_BYTES);
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                return (text.as_bytes()[cut..].to_vec(), lost || cut > 0);
            }
        }
        let tail = self
            .replay
            .read_from(end.saturating_sub(OUTPUT_TAIL_BYTES as u64));
        (tail.bytes, tail.start > 0)
    }

    pub(super) fn info(&self) -> SessionInfo {
        let exit = self.exit.filter(|_| self.final_status.is_some());
        SessionInfo {
            id: self.id.clone(),
            kind: self.spec.kind,
            name: self
                .spec
                .name
                .clone()
                .unwrap_or_else(|| self.spec.argv.join(" ")),
            argv: self.spec.argv.clone(),
            cwd: self.spec.cwd.display().to_string(),
            pid: self.pid,
            cols: self.size.cols,
            rows: self.size.rows,
            status: match self.final_status {
                Some(s) => s.as_str(),
                None if self.stop_requested => "stopping",
                None => "running",
            },
            created_at: self.created_at.clone(),
            execution_id: self.execution_id,
            ws: format!("{}/{}/ws", self.spec.kind.api_prefix(), self.id),
            viewers: self.viewers.len(),
            bytes_out: self.replay.end(),
            last_activity_at: format_ts(self.last_activity.into()),
            exit_code: exit.and_then(|e| e.code),
            exit_signal: exit.and_then(|e| e.signal),
            finished_at: self.finished_at.clone(),
            title: self.screen.title().map(|t| t.to_string()),
            agent_id: self.spec.agent_id,
            conversation_id: self.spec.conversation_id.clone(),
        }
    }
}
