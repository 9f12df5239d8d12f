//! The handle's slot for an actor the root supervisor may restart: empty while it is down,
//! pointed at the new actor when it is back. One generic type for every restartable actor's
//! handle (`Db`, `Events`, `Sessions`, `Runs`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

pub struct ActorSlot<M: Message>(Arc<RwLock<Option<ActorRef<M>>>>);

impl<M: Message> Clone for ActorSlot<M> {
    fn clone(&self) -> Self {
        ActorSlot(self.0.clone())
    }
}

impl<M: Message> Default for ActorSlot<M> {
    fn default() -> Self {
        ActorSlot(Arc::new(RwLock::new(None)))
    }
}

impl<M: Message> ActorSlot<M> {
    /// Called by the root supervisor whenever it (re)starts the actor, or with `None` while down.
    pub fn set(&self, actor: Option<ActorRef<M>>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = actor;
        }
    }

    /// The live actor, or `None` while it is being restarted.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.0.read().ok().and_then(|slot| slot.clone())
    }

    /// Asks the actor and waits at most `timeout` for its answer; `None` if it is down or
    /// did not answer in time.
    pub async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> M,
        timeout: Duration,
    ) -> Option<T> {
        match self.get()?.call(msg, Some(timeout)).await {
            Ok(CallResult::Success(v)) => Some(v),
            _ => None,
        }
    }
}
