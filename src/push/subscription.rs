//! A browser's `PushSubscription` as `POST /api/push/subscriptions` receives it, and the rules it
//! must pass before the server will ever send to it: the endpoint is an `https://` URL (a push
//! service), or — only with `push_allow_loopback`, for tests — `http://` on a loopback address;
//! the keys are a P-256 point and a 16-byte secret, so encryption cannot fail later.

use std::net::IpAddr;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;

use crate::error::ApiError;

/// Real push endpoints are ~200 characters; this leaves room and bounds what is stored.
const ENDPOINT_MAX_CHARS: usize = 2048;

/// The browser's `PushSubscription.toJSON()`; `expirationTime` and anything else are ignored.
#[derive(Debug, Deserialize)]
pub struct SubscriptionJson {
    pub endpoint: String,
    pub keys: KeysJson,
}

#[derive(Debug, Deserialize)]
pub struct KeysJson {
    pub p256dh: String,
    pub auth: String,
}

/// Checks an endpoint against the rules above; the error names `endpoint`.
pub fn check_endpoint(endpoint: &str, allow_loopback: bool) -> Result<(), ApiError> {
    let refuse = |rule: &str| ApiError::validation("endpoint", rule);
    if endpoint.len() > ENDPOINT_MAX_CHARS {
        return Err(refuse(&format!("at most {ENDPOINT_MAX_CHARS} characters")));
    }
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| refuse("expected the push service's https:// URL"))?;
    let authority = uri
        .authority()
        .filter(|a| !a.host().is_empty() && !a.as_str().contains('@'))
        .ok_or_else(|| refuse("expected the push service's https:// URL"))?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_loopback && is_loopback(authority.host()) => Ok(()),
        Some("http") if allow_loopback => Err(refuse(
            "http:// is accepted only on a loopback address (push_allow_loopback); use https://",
        )),
        Some("http") => Err(refuse(
            "must be https://: push services are reached over TLS only",
        )),
        _ => Err(refuse("expected the push service's https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

/// Base64url with or without padding (browsers send it without; some libraries add it).
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .ok()
}

/// The decoded `(p256dh, auth)`, checked; the message says which key is wrong.
pub fn decoded_keys(p256dh: &str, auth: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let p = decode_b64(p256dh).ok_or("keys.p256dh: expected base64url")?;
    let a = decode_b64(auth).ok_or("keys.auth: expected base64url")?;
    super::encrypt::check_keys(&p, &a).map_err(|e| match e {
        super::encrypt::EncryptError::BadAuth => format!("keys.auth: {e}"),
        _ => format!("keys.p256dh: {e}"),
    })?;
    Ok((p, a))
}

/// Checks the keys for the API: a 422 naming the key.
pub fn check_keys(keys: &KeysJson) -> Result<(), ApiError> {
    decoded_keys(&keys.p256dh, &keys.auth)
        .map(|_| ())
        .map_err(|why| {
            let (field, rule) = why.split_once(": ").unwrap_or(("keys", why.as_str()));
            ApiError::validation(field, rule)
        })
}

/// `scheme://host[:port]` of an endpoint: the VAPID `aud`.
pub fn origin(endpoint: &str) -> Option<String> {
    let uri: http::Uri = endpoint.parse().ok()?;
    Some(format!(
        "{}://{}",
        uri.scheme_str()?,
        uri.authority()?.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback_http_when_allowed() {
        let ok = |e: &str, lo: bool| check_endpoint(e, lo).is_ok();
        assert!(ok("https://fcm.googleapis.com/fcm/send/abc", false));
        assert!(!ok("http://127.0.0.1:9000/push", false));
        assert!(ok("http://127.0.0.1:9000/push", true));
        assert!(ok("http://[::1]:9000/push", true));
        assert!(ok("http://localhost/push", true));
        assert!(!ok("http://10.0.0.5/push", true));
        assert!(!ok("http://example.com/push", true));
        assert!(!ok("ftp://example.com/push", true));
        assert!(!ok("https://user@example.com/push", false));
        assert!(!ok("not a url", true));
        assert!(!ok("", true));
        assert_eq!(
            check_endpoint("nope", false).unwrap_err().field.as_deref(),
            Some("endpoint")
        );
    }

    #[test]
    fn origin_keeps_a_port_and_drops_the_path() {
        assert_eq!(
            origin("https://push.example.com/a/b?c").as_deref(),
            Some("https://push.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:9000/x").as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }
}
