//! Web Push and the webhook end to end. The test plays both other parties: the browser (a P-256
//! key pair and auth secret of its own, subscribed over the API) and the push service (a local
//! HTTP endpoint, allowed by `push_allow_loopback`). What arrives must carry a VAPID JWT signed
//! by the key `/api/push/key` published (RFC 8292) and decrypt (RFC 8291, aes128gcm) to the
//! notification for the run that ended.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;
use warp::Filter;

use common::runs::{agent, run, task};
use common::term::{read_until_output, send_input, Seen};
use common::{eventually, TestServer, WAIT};

/// One request the fake push service (or webhook receiver) got.
#[derive(Debug)]
struct Received {
    path: String,
    headers: warp::http::HeaderMap,
    body: Bytes,
}

/// The statuses (and `Retry-After`) the fake service answers with, in order.
type Script = Arc<Mutex<VecDeque<(u16, Option<String>)>>>;

/// A local HTTP endpoint that records every POST and answers with the scripted statuses in
/// order (then 201).
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start(script: &[(u16, Option<&str>)]) -> Receiver {
        let script: Script = Arc::new(Mutex::new(
            script
                .iter()
                .map(|(s, h)| (*s, h.map(str::to_string)))
                .collect(),
        ));
        let (tx, rx) = mpsc::unbounded_channel();
        let route = warp::post()
            .and(warp::path::full())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |path: warp::path::FullPath, headers, body| {
                let _ = tx.send(Received {
                    path: path.as_str().to_string(),
                    headers,
                    body,
                });
                let (status, retry_after) =
                    script.lock().unwrap().pop_front().unwrap_or((201, None));
                let mut resp = warp::reply::Response::new(Vec::<u8>::new().into());
                *resp.status_mut() = warp::http::StatusCode::from_u16(status).unwrap();
                if let Some(after) = retry_after {
                    resp.headers_mut()
                        .insert("retry-after", after.parse().unwrap());
                }
                resp
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Receiver {
            url: format!("http://{addr}"),
            rx,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a request reached the fake push service in time")
            .expect("receiver open")
    }
}

/// The browser's side of a subscription: its ECDH key pair and auth secret.
struct Browser {
    secret: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Browser {
        let mut bytes = [0u8; 32];
        let secret = loop {
            getrandom::fill(&mut bytes).unwrap();
            if let Ok(k) = SecretKey::from_slice(&bytes) {
                break k;
            }
        };
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).unwrap();
        Browser { secret, auth }
    }

    fn public(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// `PushSubscription.toJSON()` as a browser sends it.
    fn subscription(&self, endpoint: &str) -> Value {
        json!({"endpoint": endpoint, "expirationTime": null,
               "keys": {"p256dh": B64.encode(self.public()), "auth": B64.encode(self.auth)}})
    }

    /// RFC 8291 §3.4 / RFC 8188 §2 from the receiving end.
    fn decrypt(&self, body: &[u8]) -> Value {
        assert!(body.len() > 86, "body holds the aes128gcm header");
        let (salt, rest) = body.split_at(16);
        let rs = u32::from_be_bytes(rest[..4].try_into().unwrap());
        assert!(rs >= 18);
        let idlen = rest[4] as usize;
        assert_eq!(idlen, 65, "keyid is the sender's uncompressed public key");
        let as_public = &rest[5..5 + idlen];
        let ciphertext = &rest[5 + idlen..];
        let sender = PublicKey::from_sec1_bytes(as_public).unwrap();
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), sender.as_affine());
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(&self.public());
        key_info.extend_from_slice(as_public);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&key_info, &mut ikm)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let mut plain = Aes128Gcm::new(&cek.into())
            .decrypt(Nonce::from_slice(&nonce), ciphertext)
            .expect("the payload decrypts with the subscription's keys");
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "one record, the last: delimiter 2");
        serde_json::from_slice(&plain).expect("the payload is JSON")
    }
}

/// Checks `Authorization: vapid t=<jwt>, k=<key>` against the server's published key.
fn check_vapid(headers: &warp::http::HeaderMap, server_key: &str, audience: &str) {
    let value = headers["authorization"].to_str().unwrap();
    let rest = value.strip_prefix("vapid ").expect("vapid scheme");
    let mut t = None;
    let mut k = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v);
        } else if let Some(v) = part.strip_prefix("k=") {
            k = Some(v);
        }
    }
    let (jwt, k) = (t.expect("t="), k.expect("k="));
    assert_eq!(
        k, server_key,
        "k= is the key GET /api/push/key gave the browser"
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["aud"], audience);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "exp within 24 h: {exp}"
    );
    let sub = claims["sub"].as_str().expect("sub");
    assert!(
        sub.starts_with("mailto:") || sub.starts_with("https://"),
        "{sub}"
    );
    let key = VerifyingKey::from_sec1_bytes(&B64.decode(k).unwrap()).unwrap();
    let sig = Signature::from_slice(&B64.decode(parts[2]).unwrap()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("the JWT is signed by the server's VAPID key");
}

async fn push_server() -> TestServer {
    TestServer::start_with(|c| c.notifications.push_allow_loopback = true).await
}

#[tokio::test]
async fn a_run_that_ends_reaches_the_phone_signed_and_encrypted() {
    let s = push_server().await;
    let mut service = Receiver::start(&[]).await;
    let browser = Browser::new();
    let key = s.get("/api/push/key").await;
    assert_eq!(key.status, 200);
    let server_key = key.body["public_key"].as_str().unwrap().to_string();
    assert_eq!(B64.decode(&server_key).unwrap().len(), 65);
    let endpoint = format!("{}/push/browser-1", service.url);
    let r = s
        .post("/api/push/subscriptions", browser.subscription(&endpoint))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["endpoint"], endpoint);
    assert!(r.body.get("auth").is_none(), "keys are never sent back");

    let ok_agent = agent(&s, "fine", json!({})).await;
    let ok_task = task(&s, "Fix the build", Some(ok_agent), 5).await;
    let ok_run = run(&s, ok_task).await;
    let push = service.next().await;
    assert_eq!(push.path, "/push/browser-1");
    assert_eq!(push.headers["content-encoding"], "aes128gcm");
    assert_eq!(push.headers["urgency"], "normal");
    assert!(
        push.headers["ttl"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    check_vapid(&push.headers, &server_key, &service.url);
    let n = browser.decrypt(&push.body);
    assert_eq!(n["kind"], "run_finished", "{n}");
    assert_eq!(n["execution_id"], ok_run);
    assert_eq!(n["url"], format!("/executions/{ok_run}"));
    assert!(
        n["title"].as_str().unwrap().contains("Fix the build"),
        "{n}"
    );

    let bad_agent = agent(&s, "broken", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    let bad_task = task(&s, "Break the build", Some(bad_agent), 5).await;
    let bad_run = run(&s, bad_task).await;
    let push = service.next().await;
    check_vapid(&push.headers, &server_key, &service.url);
    let n = browser.decrypt(&push.body);
    assert_eq!(n["kind"], "run_failed", "{n}");
    assert_eq!(n["url"], format!("/executions/{bad_run}"));
    assert!(
        n["title"].as_str().unwrap().starts_with("Run failed"),
        "{n}"
    );

    // The delivery is recorded on the subscription.
    let list = s.get("/api/push/subscriptions").await;
    assert_eq!(list.body["total"], 1);
    assert!(
        list.body["items"][0]["last_success_at"].is_string(),
        "{}",
        list.text
    );
    s.stop().await;
}

/// An agent session that waits for its user (Claude Code's Notification hook, attention
/// `input`) reaches the phone at once, with a link to that session's page.
#[tokio::test]
async fn an_agent_that_waits_for_its_user_reaches_the_phone() {
    let s = push_server().await;
    let mut service = Receiver::start(&[]).await;
    let browser = Browser::new();
    let endpoint = format!("{}/push/browser-1", service.url);
    let r = s
        .post("/api/push/subscriptions", browser.subscription(&endpoint))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = agent(&s, "waits", json!({})).await;
    let r = s.post(&format!("/api/agents/{a}/session"), json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let mut ws = s.ws(&format!("/api/agent-sessions/{id}/ws")).await;
    let mut seen = Seen::default();
    read_until_output(&mut ws, &mut seen, "> ").await;
    // The fake agent runs its Notification hook ("waiting for your input") on `idle`.
    send_input(&mut ws, b"idle\r").await;
    let push = service.next().await;
    assert_eq!(push.headers["urgency"], "high");
    let n = browser.decrypt(&push.body);
    assert_eq!(n["kind"], "input", "{n}");
    assert_eq!(n["url"], format!("/agent-sessions/{id}"), "{n}");
    s.stop().await;
}

#[tokio::test]
async fn subscriptions_are_refused_unless_the_endpoint_is_https() {
    let s = TestServer::start().await;
    let browser = Browser::new();
    for endpoint in [
        "http://127.0.0.1:9/push",
        "http://example.com/push",
        "ftp://example.com/push",
        "garbage",
        "https://user:pw@example.com/push",
    ] {
        let r = s
            .post("/api/push/subscriptions", browser.subscription(endpoint))
            .await;
        assert_eq!(r.status, 422, "{endpoint}: {}", r.text);
        assert_eq!(r.body["error"]["field"], "endpoint", "{endpoint}");
    }
    let mut bad_key = browser.subscription("https://push.example.com/a");
    bad_key["keys"]["p256dh"] = json!(B64.encode([4u8; 65]));
    let r = s.post("/api/push/subscriptions", bad_key).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].clone()),
        (422, json!("keys.p256dh"))
    );
    let mut bad_auth = browser.subscription("https://push.example.com/a");
    bad_auth["keys"]["auth"] = json!("c2hvcnQ");
    let r = s.post("/api/push/subscriptions", bad_auth).await;
    assert_eq!(
        (r.status, r.body["error"]["field"].clone()),
        (422, json!("keys.auth"))
    );
    let r = s
        .post(
            "/api/push/subscriptions",
            json!({"endpoint": "https://push.example.com/a"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // https is accepted; subscribing again updates the same row; unsubscribing ends it.
    let ok = browser.subscription("https://push.example.com/a");
    assert_eq!(
        s.post("/api/push/subscriptions", ok.clone()).await.status,
        201
    );
    assert_eq!(s.post("/api/push/subscriptions", ok).await.status, 200);
    let body = json!({"endpoint": "https://push.example.com/a"});
    let del = s
        .send(
            s.req(reqwest::Method::DELETE, "/api/push/subscriptions")
                .json(&body),
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.text);
    let again = s
        .send(
            s.req(reqwest::Method::DELETE, "/api/push/subscriptions")
                .json(&body),
        )
        .await;
    assert_eq!(again.status, 404);
    s.stop().await;

    // With the loopback exception, http:// is still refused anywhere but loopback.
    let s = push_server().await;
    let r = s
        .post(
            "/api/push/subscriptions",
            browser.subscription("http://10.1.2.3/push"),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"]["field"].clone()),
        (422, json!("endpoint"))
    );
    let r = s
        .post(
            "/api/push/subscriptions",
            browser.subscription("http://127.0.0.1:9/push"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    s.stop().await;
}

#[tokio::test]
async fn a_subscription_the_push_service_says_is_gone_is_dropped() {
    let s = push_server().await;
    let mut service = Receiver::start(&[(410, None)]).await;
    let browser = Browser::new();
    let sub = browser.subscription(&format!("{}/push/expired", service.url));
    assert_eq!(s.post("/api/push/subscriptions", sub).await.status, 201);
    assert_eq!(s.post("/api/push/test", json!({})).await.status, 202);
    let push = service.next().await;
    assert_eq!(browser.decrypt(&push.body)["kind"], "test");
    eventually("the expired subscription is removed", || async {
        (s.get("/api/push/subscriptions").await.body["total"] == 0).then_some(())
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn a_push_refused_for_now_is_retried_until_delivered() {
    let s = push_server().await;
    let mut service = Receiver::start(&[(500, None), (429, Some("1"))]).await;
    let browser = Browser::new();
    let sub = browser.subscription(&format!("{}/push/flaky", service.url));
    assert_eq!(s.post("/api/push/subscriptions", sub).await.status, 201);
    assert_eq!(s.post("/api/push/test", json!({})).await.status, 202);
    for _ in 0..3 {
        let push = service.next().await;
        // Every attempt is a complete, decryptable push.
        assert_eq!(browser.decrypt(&push.body)["kind"], "test");
    }
    let item = eventually("the third attempt is recorded as delivered", || async {
        let list = s.get("/api/push/subscriptions").await;
        let item = list.body["items"][0].clone();
        item["last_success_at"].is_string().then_some(item)
    })
    .await;
    assert!(
        item["last_failure_at"].is_null(),
        "retries are not failures: {item}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_webhook_gets_json_or_ntfy() {
    let mut hook = Receiver::start(&[]).await;
    let url = format!("{}/hook", hook.url);
    let s = TestServer::start_with(|c| {
        c.notifications.webhook_url = Some(url);
        c.public_url = Some("https://cm.example.com".into());
    })
    .await;
    let a = agent(&s, "fine", json!({})).await;
    let t = task(&s, "Write the docs", Some(a), 5).await;
    let id = run(&s, t).await;
    let got = hook.next().await;
    assert_eq!(got.path, "/hook");
    assert_eq!(got.headers["content-type"], "application/json");
    let n: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(n["kind"], "run_finished", "{n}");
    assert_eq!(n["execution_id"], id);
    assert_eq!(n["link"], format!("https://cm.example.com/executions/{id}"));
    assert!(n["title"].as_str().unwrap().contains("Write the docs"));
    s.stop().await;

    let mut ntfy = Receiver::start(&[]).await;
    let url = format!("{}/my-topic", ntfy.url);
    let s = TestServer::start_with(|c| {
        c.notifications.webhook_url = Some(url);
        c.notifications.webhook_format = claude_manager::config::WebhookFormat::Ntfy;
        c.public_url = Some("https://cm.example.com".into());
    })
    .await;
    let a = agent(&s, "broken", json!({"FAKE_CLAUDE_MODE": "error"})).await;
    let t = task(&s, "Deploy", Some(a), 5).await;
    let id = run(&s, t).await;
    let got = ntfy.next().await;
    assert_eq!(got.path, "/my-topic");
    assert!(got.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(got.headers["title"], "Run failed: Deploy");
    assert_eq!(got.headers["tags"], "x");
    assert_eq!(got.headers["priority"], "default");
    assert_eq!(
        got.headers["click"].to_str().unwrap(),
        format!("https://cm.example.com/executions/{id}")
    );
    assert!(!got.body.is_empty() && !got.body.starts_with(b"{"));
    s.stop().await;
}
