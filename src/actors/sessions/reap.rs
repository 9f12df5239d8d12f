//! The sessions supervisor's part of a reaper pass: decide from what it already holds (each
//! session's shared activity clock and exit time), never by asking a session actor, so one busy
//! session cannot stall the pass. Idle sessions are told to stop (a cast); the stop records the
//! execution `cancelled` with reason `idle`. Sessions exited longer than the retention are
//! dropped from memory; their execution rows stay.

use std::time::Duration;

use ractor::ActorRef;
use slog::info;

use super::SessionsState;
use crate::actors::terminal::TerminalMsg;

/// The reason recorded on executions the reaper stopped for inactivity.
pub const REASON_IDLE: &str = "idle";

/// What the reaper asks of one pass.
#[derive(Debug, Clone, Copy)]
pub struct ReapPolicy {
    /// Exited sessions older than this leave memory.
    pub exited_retention: Duration,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReapReport {
    /// Live sessions told to stop for inactivity.
    pub idle: u64,
    /// Exited sessions dropped from memory.
    pub exited: u64,
}

impl SessionsState {
    pub(super) fn reap(&mut self, policy: &ReapPolicy) -> ReapReport {
        let mut report = ReapReport::default();
        if self.stopping {
            return report;
        }
        let mut idle: Vec<(String, ActorRef<TerminalMsg>)> = Vec::new();
        let mut expired: Vec<String> = Vec::new();
        for (id, entry) in self.sessions.iter_mut() {
            if let Some(at) = entry.exited_at {
                if at.elapsed() >= policy.exited_retention {
                    expired.push(id.clone());
                }
            } else if !entry.exited && !entry.reaped {
                if let Some(limit) = entry.idle_timeout {
                    if entry.activity.idle_for() >= limit {
                        entry.reaped = true;
                        idle.push((id.clone(), entry.actor.clone()));
                    }
                }
            }
        }
        for (id, actor) in idle {
            info!(self.log, "stopping idle session"; "session_id" => &id);
            if actor.cast(TerminalMsg::StopFor(REASON_IDLE.into())).is_ok() {
                report.idle += 1;
            }
        }
        for id in expired {
            self.forget(&id);
            report.exited += 1;
        }
        report
    }
}
