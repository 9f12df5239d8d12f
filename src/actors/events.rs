//! The event bus: state changes broadcast to every `/api/events` subscriber.
//!
//! Publishers (HTTP handlers, session actors) cast an already-serialised event to the bus; the bus
//! puts it on a tokio broadcast channel. The channel is the bounded per-subscriber queue: a
//! subscriber that falls more than `events_queue_len` events behind loses the oldest ones and is
//! told how many (`{"type":"lagged","missed":N}`) — it never slows the publishers or the others.

use std::sync::{Arc, RwLock};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::broadcast;

/// One event, serialised once for every subscriber: `{"type":…,"data":…}`.
pub type EventJson = Arc<str>;

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
    actor: Arc<RwLock<Option<ActorRef<EventsMsg>>>>,
}

impl Events {
    pub fn set_actor(&self, actor: Option<ActorRef<EventsMsg>>) {
        if let Ok(mut slot) = self.actor.write() {
            *slot = actor;
        }
    }

    fn actor(&self) -> Option<ActorRef<EventsMsg>> {
        self.actor.read().ok().and_then(|slot| slot.clone())
    }

    /// Publishes `{"type": kind, "data": data}`. Never blocks; dropped if the bus is restarting.
    pub fn publish(&self, kind: &str, data: &impl Serialize) {
        #[derive(Serialize)]
        struct Envelope<'a, T: Serialize> {
            #[serde(rename = "type")]
            kind: &'a str,
            data: &'a T,
        }
        let Ok(json) = serde_json::to_string(&Envelope { kind, data }) else {
            return;
        };
        if let Some(actor) = self.actor() {
            let _ = actor.cast(EventsMsg::Publish(json.into()));
        }
    }

    /// A new subscription, or `None` while the bus is restarting.
    pub async fn subscribe(&self) -> Option<broadcast::Receiver<EventJson>> {
        let actor = self.actor()?;
        match actor
            .call(
                EventsMsg::Subscribe,
                Some(std::time::Duration::from_secs(5)),
            )
            .await
        {
            Ok(ractor::rpc::CallResult::Success(rx)) => Some(rx),
            _ => None,
        }
    }
}
