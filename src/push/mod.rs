//! Notifications to the user's phone: Web Push (RFC 8030 delivery, RFC 8291 encryption, RFC
//! 8292 VAPID) and a plain webhook (JSON or ntfy).
//!
//! The flow: a listener task watches the event bus and asks [`notification_for`] — the one
//! decision of what deserves a notification — about each event; what it answers goes on a bounded
//! queue ([`QUEUE_LEN`]). The sender task (`deliver.rs`) takes it from there: it encrypts for each
//! subscription and sends, retrying with backoff. Nothing that publishes an event ever waits on a
//! push service: when the queue is full the notification is dropped and counted, never the session.
//!
//! `vapid.rs` (the server's key and JWT), `encrypt.rs` (aes128gcm), `subscription.rs` (what a
//! browser may subscribe), `notification.rs` (what to say), `webhook.rs`, `deliver.rs`.

mod deliver;
pub mod encrypt;
pub mod notification;
pub mod subscription;
pub mod vapid;
mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use slog::{warn, Logger};
use tokio::sync::{broadcast, mpsc, watch};

use crate::actors::db::Db;
use crate::actors::events::Events;
use crate::config::Config;
pub use notification::{notification_for, Notification, NotificationKind};
pub use vapid::{VapidError, VapidKey};

/// Notifications waiting for the sender: a burst of runs ending at once fits; beyond that the
/// push services are down or slow and an older "run finished" is worth less than the session.
const QUEUE_LEN: usize = 256;
/// How long the listener waits before subscribing again while the event bus restarts.
const RESUBSCRIBE_SECS: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Vapid(#[from] VapidError),
    #[error("TLS client: {0}")]
    Tls(#[from] rustls::Error),
}

/// The handle routes and tests use: the public key, and the queue to the sender.
#[derive(Clone)]
pub struct Notifier {
    key: Arc<VapidKey>,
    queue: mpsc::Sender<Notification>,
    dropped: Arc<AtomicU64>,
    /// Settings the routes check subscriptions against.
    pub allow_loopback: bool,
    log: Logger,
}

impl Notifier {
    /// Loads (or makes) the VAPID key and starts the sender task. Blocking (reads the key file):
    /// call it off the runtime, then [`Notifier::watch_events`] on it.
    pub fn start(
        config: &Config,
        db: Db,
        runtime: &tokio::runtime::Handle,
        log: Logger,
    ) -> Result<Notifier, PushError> {
        let key = Arc::new(VapidKey::load_or_create(&config.data_dir)?);
        let client = {
            // The client's connection pool spawns on the runtime it is built on.
            let _enter = runtime.enter();
            deliver::client()?
        };
        let (queue, rx) = mpsc::channel(QUEUE_LEN);
        let delivery = Arc::new(deliver::Delivery::new(
            db,
            key.clone(),
            config.notifications.clone(),
            config.public_url.clone(),
            client,
            log.clone(),
        ));
        runtime.spawn(deliver::run(rx, delivery));
        Ok(Notifier {
            key,
            queue,
            dropped: Arc::default(),
            allow_loopback: config.notifications.push_allow_loopback,
            log,
        })
    }

    /// `GET /api/push/key`: the VAPID public key, base64url (the browser's `applicationServerKey`).
    pub fn public_key(&self) -> &str {
        self.key.public_b64()
    }

    /// Queues a notification; never waits. A full queue drops it (logged, counted).
    pub fn notify(&self, n: Notification) {
        if let Err(mpsc::error::TrySendError::Full(n)) = self.queue.try_send(n) {
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            warn!(self.log, "notification queue full; notification dropped";
                  "kind" => ?n.kind, "dropped_total" => total);
        }
    }

    /// Starts the listener: every event the bus carries is offered to [`notification_for`],
    /// until shutdown begins.
    pub fn watch_events(&self, events: Events, mut shutdown: watch::Receiver<bool>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let Some(mut rx) = events.subscribe().await else {
                    tokio::select! {
                        _ = crate::state::shutting_down(&mut shutdown) => return,
                        _ = tokio::time::sleep(Duration::from_secs(RESUBSCRIBE_SECS)) => continue,
                    }
                };
                loop {
                    let event = tokio::select! {
                        _ = crate::state::shutting_down(&mut shutdown) => return,
                        e = rx.recv() => e,
                    };
                    match event {
                        Ok(e) => {
                            if let Some(n) = notification_for(e.kind, e.data()) {
                                me.notify(n);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            warn!(me.log, "notification listener fell behind the event bus; events skipped";
                                  "missed" => missed);
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
        });
    }
}
