//! The root supervisor: who starts whom and who restarts whom, in one place (DESIGN "Shape").
//!
//! ```text
//! Root supervisor (this actor)
//!   ├── Db actor        restarted when it dies; the `Db` handle points at the new one
//!   ├── Event bus       restarted when it dies; subscribers of the old one are told to reconnect
//!   ├── Sessions        restarted (empty) when it dies; see `sessions.rs` for its own children
//!   ├── Reaper          restarted when it dies; periodic tidy-up (`reaper.rs`)
//!   └── Run queue       restarted (empty) when it dies; see `runs/mod.rs` for its run actors
//! ```
//!
//! ractor's default supervisor behaviour stops the supervisor when any child stops (STACK.md
//! "Traps"); here a dead child is restarted and nothing else is touched. While a child is down its
//! handle holds `None`, so callers get a fast 503 rather than a hang.

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use slog::{error, info, Logger};

use super::db::{Db, DbActor, DbArgs};
use super::events::{EventBus, Events};
use super::reaper::{Reaper, ReaperArgs};
use super::runs::{RunQueue, Runs, RunsArgs, RunsMsg};
use super::sessions::{Sessions, SessionsArgs, SessionsMsg, SessionsSupervisor};

/// How long shutdown waits for the sessions to stop and record `interrupted`.
const SESSIONS_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub enum RootMsg {
    /// Stop every child without restarting it (shutdown).
    StopChildren(ractor::RpcReplyPort<()>),
}

pub struct RootArgs {
    pub db: Db,
    pub db_args: DbArgs,
    pub events: Events,
    pub events_queue_len: usize,
    pub sessions: Sessions,
    pub sessions_args: SessionsArgs,
    pub reaper_args: ReaperArgs,
    pub runs: Runs,
    pub runs_args: RunsArgs,
    pub log: Logger,
}

pub struct RootState {
    args: RootArgs,
    db_cell: Option<ActorCell>,
    events_cell: Option<ActorCell>,
    sessions_cell: Option<ActorRef<SessionsMsg>>,
    reaper_cell: Option<ActorCell>,
    runs_cell: Option<ActorRef<RunsMsg>>,
    stopping: bool,
}

pub struct RootSupervisor;

impl RootSupervisor {
    async fn start_db(
        me: &ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, DbActor, state.args.db_args.clone(), me.get_cell()).await?;
        state.db_cell = Some(actor.get_cell());
        state.args.db.set_actor(Some(actor));
        Ok(())
    }

    async fn start_events(
        me: &ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, EventBus, state.args.events_queue_len, me.get_cell()).await?;
        state.events_cell = Some(actor.get_cell());
        state.args.events.set_actor(Some(actor));
        Ok(())
    }

    async fn start_sessions(
        me: &ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) = Actor::spawn_linked(
            None,
            SessionsSupervisor,
            state.args.sessions_args.clone(),
            me.get_cell(),
        )
        .await?;
        state.sessions_cell = Some(actor.clone());
        state.args.sessions.set_actor(Some(actor));
        Ok(())
    }

    async fn start_reaper(
        me: &ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, Reaper, state.args.reaper_args.clone(), me.get_cell())
                .await?;
        state.reaper_cell = Some(actor.get_cell());
        Ok(())
    }
}

impl RootSupervisor {
    async fn start_runs(
        me: &ActorRef<RootMsg>,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) =
            Actor::spawn_linked(None, RunQueue, state.args.runs_args.clone(), me.get_cell())
                .await?;
        state.runs_cell = Some(actor.clone());
        state.args.runs.set_actor(Some(actor));
        Ok(())
    }
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        me: ActorRef<RootMsg>,
        args: RootArgs,
    ) -> Result<RootState, ActorProcessingErr> {
        let mut state = RootState {
            args,
            db_cell: None,
            events_cell: None,
            sessions_cell: None,
            reaper_cell: None,
            runs_cell: None,
            stopping: false,
        };
        Self::start_db(&me, &mut state).await?;
        Self::start_events(&me, &mut state).await?;
        Self::start_sessions(&me, &mut state).await?;
        Self::start_reaper(&me, &mut state).await?;
        Self::start_runs(&me, &mut state).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        _me: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::StopChildren(reply) => {
                state.stopping = true;
                // The reaper first: no pass may start stopping sessions while they are stopped.
                if let Some(cell) = state.reaper_cell.take() {
                    let _ = cell.stop_and_wait(None, None).await;
                }
                // Runs first, like sessions: they record `interrupted` through the DB.
                state.args.runs.set_actor(None);
                if let Some(actor) = state.runs_cell.take() {
                    let _ = actor
                        .call(RunsMsg::StopAll, Some(SESSIONS_STOP_TIMEOUT))
                        .await;
                    let _ = actor.get_cell().stop_and_wait(None, None).await;
                }
                // Sessions next: they record their end through the DB and the event bus.
                state.args.sessions.set_actor(None);
                if let Some(actor) = state.sessions_cell.take() {
                    let _ = actor
                        .call(SessionsMsg::StopAll, Some(SESSIONS_STOP_TIMEOUT))
                        .await;
                    let _ = actor.get_cell().stop_and_wait(None, None).await;
                }
                state.args.events.set_actor(None);
                if let Some(cell) = state.events_cell.take() {
                    let _ = cell.stop_and_wait(None, None).await;
                }
                // The DB actor goes last: everything above may still record its end.
                state.args.db.set_actor(None);
                if let Some(cell) = state.db_cell.take() {
                    let _ = cell.stop_and_wait(None, None).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        me: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell.clone(),
                reason.clone().unwrap_or_else(|| "stopped".into()),
            ),
            SupervisionEvent::ActorFailed(cell, err) => (cell.clone(), format!("failed: {err}")),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        let id = cell.get_id();
        if state.db_cell.as_ref().is_some_and(|c| c.get_id() == id) {
            state.args.db.set_actor(None);
            error!(state.args.log, "DB actor died; restarting it"; "reason" => &why);
            Self::start_db(&me, state).await?;
            info!(state.args.log, "DB actor restarted");
        } else if state.events_cell.as_ref().is_some_and(|c| c.get_id() == id) {
            state.args.events.set_actor(None);
            error!(state.args.log, "event bus died; restarting it"; "reason" => &why);
            Self::start_events(&me, state).await?;
        } else if state
            .sessions_cell
            .as_ref()
            .is_some_and(|c| c.get_id() == id)
        {
            state.args.sessions.set_actor(None);
            error!(state.args.log, "sessions supervisor died; restarting it"; "reason" => &why);
            Self::start_sessions(&me, state).await?;
        } else if state.reaper_cell.as_ref().is_some_and(|c| c.get_id() == id) {
            error!(state.args.log, "reaper died; restarting it"; "reason" => &why);
            Self::start_reaper(&me, state).await?;
        } else if state.runs_cell.as_ref().is_some_and(|c| c.get_id() == id) {
            state.args.runs.set_actor(None);
            error!(state.args.log, "run queue died; restarting it"; "reason" => &why);
            Self::start_runs(&me, state).await?;
        }
        Ok(())
    }
}
