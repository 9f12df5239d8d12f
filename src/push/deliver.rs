//! The sender task: takes notifications off the bounded queue and delivers each to every push
//! subscription and to the webhook, each delivery in its own task (at most
//! [`MAX_DELIVERIES_IN_FLIGHT`] at once), retried with backoff for a bounded number of attempts.
//! A push service answering 404 or 410 has forgotten the subscription: its row is dropped.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use slog::{info, warn, Logger};
use tokio::sync::{mpsc, Semaphore};

use super::notification::Notification;
use super::vapid::VapidKey;
use super::webhook;
use crate::actors::db::Db;
use crate::config::NotificationSettings;
use crate::db::push_subscriptions::{self, PushSubscription};

pub(super) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Deliveries running at once: a phone or two and a webhook per notification, with room for a
/// burst of runs ending together; the queue in front of it holds the rest.
const MAX_DELIVERIES_IN_FLIGHT: usize = 8;
/// Waits before the 2nd, 3rd and 4th attempt: a blip, a restart, an outage of a minute.
const RETRY_DELAYS_SECS: [u64; 3] = [1, 5, 30];
/// The longest `Retry-After` obeyed; a longer one is a failure now.
const RETRY_AFTER_MAX_SECS: u64 = 60;
/// One attempt: connect, TLS, send, read the status.
const ATTEMPT_TIMEOUT_SECS: u64 = 20;
/// How long a push service keeps a message for a phone that is offline (RFC 8030 `TTL`): a day,
/// after which "your run finished" is stale.
const PUSH_TTL_SECS: u64 = 86_400;

pub(super) struct Delivery {
    pub db: Db,
    pub key: Arc<VapidKey>,
    pub settings: NotificationSettings,
    /// `public_url`: the VAPID contact fallback, and absolute links for the webhook.
    pub public_url: Option<String>,
    pub client: HttpsClient,
    pub log: Logger,
    pub in_flight: Arc<Semaphore>,
}

/// The outgoing HTTP(S) client: rustls with Mozilla's roots; plain http only for the loopback
/// endpoints that validation lets through in tests, and for a webhook the owner configured.
pub(super) fn client() -> Result<HttpsClient, rustls::Error> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

impl Delivery {
    pub fn new(
        db: Db,
        key: Arc<VapidKey>,
        settings: NotificationSettings,
        public_url: Option<String>,
        client: HttpsClient,
        log: Logger,
    ) -> Delivery {
        Delivery {
            db,
            key,
            settings,
            public_url,
            client,
            log,
            in_flight: Arc::new(Semaphore::new(MAX_DELIVERIES_IN_FLIGHT)),
        }
    }

    /// The VAPID `sub`: the configured contact, else an https public URL, else a placeholder.
    fn contact(&self) -> String {
        if let Some(c) = &self.settings.push_contact {
            return c.clone();
        }
        match &self.public_url {
            Some(u) if u.starts_with("https://") => u.clone(),
            _ => "mailto:root@localhost".into(),
        }
    }
}

/// Runs until every queue sender is gone (the server stopped).
pub(super) async fn run(mut rx: mpsc::Receiver<Notification>, d: Arc<Delivery>) {
    while let Some(n) = rx.recv().await {
        let subs = match d.db.read(|c| push_subscriptions::list(c)).await {
            Ok(subs) => subs,
            Err(e) => {
                warn!(d.log, "cannot read push subscriptions; notification not pushed";
                      "error" => %e, "kind" => ?n.kind);
                Vec::new()
            }
        };
        let payload = Bytes::from(serde_json::to_vec(&n).unwrap_or_default());
        for sub in subs {
            let Ok(permit) = d.in_flight.clone().acquire_owned().await else {
                return;
            };
            let (d, payload, urgent) = (d.clone(), payload.clone(), n.urgent());
            tokio::spawn(async move {
                push_one(&d, sub, payload, urgent).await;
                drop(permit);
            });
        }
        if let Some(url) = d.settings.webhook_url.clone() {
            let Ok(permit) = d.in_flight.clone().acquire_owned().await else {
                return;
            };
            let d = d.clone();
            tokio::spawn(async move {
                let req = webhook::Webhook::new(&url, d.settings.webhook_format, &n, &*d);
                match req {
                    Ok(w) => match send_with_retries(&d, || w.request()).await {
                        Outcome::Delivered => {}
                        Outcome::Gone(status) | Outcome::Refused(status) => {
                            warn!(d.log, "webhook refused a notification"; "status" => status.as_u16())
                        }
                        Outcome::Failed(why) => {
                            warn!(d.log, "webhook unreachable; notification dropped"; "error" => why)
                        }
                    },
                    Err(e) => warn!(d.log, "webhook request not built"; "error" => %e),
                }
                drop(permit);
            });
        }
    }
}

impl webhook::Links for Delivery {
    fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }
}

/// Encrypts `payload` for one subscription, pushes it, and records how it went.
async fn push_one(d: &Delivery, sub: PushSubscription, payload: Bytes, urgent: bool) {
    let built = super::subscription::decoded_keys(&sub.p256dh, &sub.auth)
        .and_then(|(p256dh, auth)| {
            super::encrypt::encrypt(&p256dh, &auth, &payload).map_err(|e| e.to_string())
        })
        .and_then(|body| {
            let origin =
                super::subscription::origin(&sub.endpoint).ok_or("endpoint is not a URL")?;
            Ok((Bytes::from(body), origin))
        });
    let (body, origin) = match built {
        Ok(b) => b,
        Err(e) => {
            warn!(d.log, "push not encrypted"; "subscription_id" => sub.id, "error" => %e);
            return;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or_default();
    let authorization = d.key.authorization(&origin, &d.contact(), now);
    let make = || {
        Request::post(sub.endpoint.as_str())
            .header("authorization", authorization.as_str())
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header("ttl", PUSH_TTL_SECS.to_string())
            .header("urgency", if urgent { "high" } else { "normal" })
            .body(Full::new(body.clone()))
    };
    let outcome = send_with_retries(d, make).await;
    let (id, log) = (sub.id, d.log.clone());
    let write = match outcome {
        Outcome::Delivered => {
            d.db.write(move |c| push_subscriptions::record_delivery(c, id, None))
                .await
        }
        Outcome::Gone(status) => {
            info!(log, "push subscription expired; removed"; "subscription_id" => id,
                  "status" => status.as_u16());
            d.db.write(move |c| push_subscriptions::delete_id(c, id))
                .await
        }
        Outcome::Refused(status) => {
            let why = format!("push service answered {status}");
            warn!(log, "push refused"; "subscription_id" => id, "status" => status.as_u16());
            d.db.write(move |c| push_subscriptions::record_delivery(c, id, Some(&why)))
                .await
        }
        Outcome::Failed(why) => {
            warn!(log, "push failed after retries"; "subscription_id" => id, "error" => &why);
            d.db.write(move |c| push_subscriptions::record_delivery(c, id, Some(&why)))
                .await
        }
    };
    if let Err(e) = write {
        warn!(log, "push delivery not recorded"; "subscription_id" => id, "error" => %e);
    }
}

pub(super) enum Outcome {
    Delivered,
    /// 404/410: the receiver no longer exists.
    Gone(StatusCode),
    /// Another 4xx: retrying the same request cannot help.
    Refused(StatusCode),
    /// Every attempt failed (network, timeout, 5xx, 429); the last reason.
    Failed(String),
}

/// Sends the request `make` builds, retrying transient failures after [`RETRY_DELAYS_SECS`].
pub(super) async fn send_with_retries(
    d: &Delivery,
    make: impl Fn() -> Result<Request<Full<Bytes>>, http::Error>,
) -> Outcome {
    let mut last = String::new();
    for attempt in 0..=RETRY_DELAYS_SECS.len() {
        let req = match make() {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("bad request: {e}")),
        };
        let sent = tokio::time::timeout(
            Duration::from_secs(ATTEMPT_TIMEOUT_SECS),
            d.client.request(req),
        )
        .await;
        let mut wait = RETRY_DELAYS_SECS.get(attempt).copied();
        match sent {
            Ok(Ok(resp)) => {
                let status = resp.status();
                if status.is_success() {
                    return Outcome::Delivered;
                }
                if matches!(status, StatusCode::NOT_FOUND | StatusCode::GONE) {
                    return Outcome::Gone(status);
                }
                let transient = status.is_server_error()
                    || matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT
                    );
                if !transient {
                    return Outcome::Refused(status);
                }
                if let Some(after) = retry_after_secs(resp.headers()) {
                    if after > RETRY_AFTER_MAX_SECS {
                        return Outcome::Failed(format!("{status}, Retry-After {after} s"));
                    }
                    wait = wait.map(|w| w.max(after));
                }
                last = format!("answered {status}");
            }
            Ok(Err(e)) => last = format!("{e}"),
            Err(_) => last = format!("no answer within {ATTEMPT_TIMEOUT_SECS} s"),
        }
        match wait {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => break,
        }
    }
    Outcome::Failed(last)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by push services).
fn retry_after_secs(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
