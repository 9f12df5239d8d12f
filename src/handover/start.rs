//! What a starting server takes from a handover: the listening socket (or a new one), the
//! reason its reconciliation records, and the reaping of inherited children no session adopts.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

use tokio::net::TcpListener;

use super::take::{Inherited, Unreadable};

/// A handover split into what the start uses.
pub struct Continued {
    pub inherited: Option<Inherited>,
    pub unreadable: Option<Unreadable>,
    listener: Option<std::io::Result<std::net::TcpListener>>,
}

impl Continued {
    pub fn new(handover: Option<Result<Inherited, Unreadable>>) -> Continued {
        let (inherited, unreadable, listener) = match handover {
            Some(Ok(i)) => {
                let listener = i.listener.try_clone();
                (Some(i), None, Some(listener))
            }
            Some(Err(mut why)) => {
                let listener = why.listener.take().map(Ok);
                (None, Some(why), listener)
            }
            None => (None, None, None),
        };
        Continued {
            inherited,
            unreadable,
            listener,
        }
    }

    /// Why reconciled executions ended: a record that could not be read says so.
    pub fn reconcile_reason(&self) -> String {
        match &self.unreadable {
            Some(why) => format!(
                "server reloaded, but the new image could not read the handover record ({why}): \
                 the session was stopped"
            ),
            None => crate::reconcile::REASON_SERVER_RESTART.to_string(),
        }
    }

    /// The handed-over listening socket, else a new one bound to `addr`; with a second fd for it
    /// (what keeps it listening after the accept loop stops, and what the next reload passes on).
    pub async fn listener(&mut self, addr: SocketAddr) -> std::io::Result<(TcpListener, OwnedFd)> {
        let listener = match self.listener.take() {
            Some(passed) => passed.and_then(|l| {
                l.set_nonblocking(true)?;
                TcpListener::from_std(l)
            })?,
            None => TcpListener::bind(addr).await?,
        };
        let keep = listener.as_fd().try_clone_to_owned()?;
        Ok((listener, keep))
    }

    /// After a reload (same PID) the last image's children are ours: those no session adopts are
    /// reaped in the background once the reconciliation has stopped them, or at once if dead.
    pub async fn reap_unadopted(&self) {
        if self.inherited.is_none() && self.unreadable.is_none() {
            return;
        }
        let adopted: Vec<i32> = self.inherited.iter().flat_map(|i| i.pids()).collect();
        let mut orphans = tokio::task::spawn_blocking(super::inherited_children)
            .await
            .unwrap_or_default();
        orphans.retain(|pid| !adopted.contains(pid));
        super::reap_when_gone(orphans);
    }
}
