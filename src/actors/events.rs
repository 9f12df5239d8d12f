//! The event bus: state changes broadcast to every `/api/events` subscriber.
//!
//! Publishers (HTTP handlers, session actors) cast an already-serialised event to the bus; the bus
//! puts it on a tokio broadcast channel. The channel is the bounded per-subscriber queue: a
//! subscriber that falls more than `events_queue_len` events behind loses the oldest ones and is
//! told how many (`{"type":"lagged","missed":N}`) — it never slows the publishers or the others.

use std::sync::Arc;

use super::slot::ActorSlot;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::broadcast;

/// Every kind of event `/api/events` carries: the `type` field, one name each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "task.created")]
    TaskCreated,
    #[serde(rename = "task.updated")]
    TaskUpdated,
    #[serde(rename = "task.deleted")]
    TaskDeleted,
    #[serde(rename = "agent.created")]
    AgentCreated,
    #[serde(rename = "agent.updated")]
    AgentUpdated,
    #[serde(rename = "agent.deleted")]
    AgentDeleted,
    #[serde(rename = "execution.created")]
    ExecutionCreated,
    #[serde(rename = "execution.started")]
    ExecutionStarted,
    #[serde(rename = "execution.updated")]
    ExecutionUpdated,
    #[serde(rename = "execution.finished")]
    ExecutionFinished,
    /// One parsed event of a headless run.
    #[serde(rename = "execution.event")]
    ExecutionEvent,
    #[serde(rename = "session.exited")]
    SessionExited,
    #[serde(rename = "agent_session.restarting")]
    AgentSessionRestarting,
    #[serde(rename = "agent_session.failed")]
    AgentSessionFailed,
    #[serde(rename = "worktree.created")]
    WorktreeCreated,
    #[serde(rename = "worktree.merged")]
    WorktreeMerged,
    #[serde(rename = "worktree.discarded")]
    WorktreeDiscarded,
    /// An agent session or run needs its user, or no longer does (issue 16).
    #[serde(rename = "attention.changed")]
    AttentionChanged,
    #[serde(rename = "approval.requested")]
    ApprovalRequested,
    #[serde(rename = "approval.decided")]
    ApprovalDecided,
    /// A reload finished (new image serving) or failed (old image serving on).
    #[serde(rename = "server.reloaded")]
    ServerReloaded,
}

/// One event, serialised once for every subscriber (`json`: `{"type":…,"data":…}`), with the
/// few facts sockets filter on, so that none of them parses it again.
#[derive(Debug)]
pub struct Event {
    pub kind: EventType,
    /// The execution it is about, for events about one (`execution.event`, `.finished`).
    pub execution_id: Option<i64>,
    /// `execution.event`: the run event's sequence number.
    pub seq: Option<i64>,
    pub json: String,
    /// Where `data` starts in `json` (it runs to the closing brace).
    data_start: usize,
}

impl Event {
    /// The `data` part of the JSON, as it was serialised.
    pub fn data(&self) -> &str {
        &self.json[self.data_start..self.json.len() - 1]
    }
}

pub type EventJson = Arc<Event>;

pub enum EventsMsg {
    Publish(EventJson),
    Subscribe(RpcReplyPort<broadcast::Receiver<EventJson>>),
}

pub struct EventBus;

impl Actor for EventBus {
    type Msg = EventsMsg;
    type State = broadcast::Sender<EventJson>;
    /// The per-subscriber queue length.
    type Arguments = usize;

    async fn pre_start(
        &self,
        _me: ActorRef<EventsMsg>,
        queue_len: usize,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(broadcast::channel(queue_len.max(1)).0)
    }

    async fn handle(
        &self,
        _me: ActorRef<EventsMsg>,
        msg: EventsMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // No subscriber is not an error: the event simply has no audience.
            EventsMsg::Publish(event) => drop(tx.send(event)),
            EventsMsg::Subscribe(reply) => drop(reply.send(tx.subscribe())),
        }
        Ok(())
    }
}

/// The cloneable handle publishers and the `/api/events` route use.
#[derive(Clone, Default)]
pub struct Events {
    actor: ActorSlot<EventsMsg>,
}

impl Events {
    pub fn set_actor(&self, actor: Option<ActorRef<EventsMsg>>) {
        self.actor.set(actor);
    }

    /// Publishes `{"type": kind, "data": data}`. Never blocks; dropped if the bus is restarting.
    pub fn publish(&self, kind: EventType, data: &impl Serialize) {
        self.publish_about(kind, None, None, data);
    }

    /// Publishes an event about execution `execution_id` (and run event `seq`).
    pub fn publish_about(
        &self,
        kind: EventType,
        execution_id: Option<i64>,
        seq: Option<i64>,
        data: &impl Serialize,
    ) {
        let (Ok(kind_json), Ok(data_json)) =
            (serde_json::to_string(&kind), serde_json::to_string(data))
        else {
            return;
        };
        let head = format!(r#"{{"type":{kind_json},"data":"#);
        let event = Event {
            kind,
            execution_id,
            seq,
            data_start: head.len(),
            json: format!("{head}{data_json}}}"),
        };
        if let Some(actor) = self.actor.get() {
            let _ = actor.cast(EventsMsg::Publish(Arc::new(event)));
        }
    }

    /// A new subscription, or `None` while the bus is restarting.
    pub async fn subscribe(&self) -> Option<broadcast::Receiver<EventJson>> {
        self.actor
            .call(EventsMsg::Subscribe, std::time::Duration::from_secs(5))
            .await
    }
}
