//! `/api/auth`: browser login with a token, logout, and who am I.
//!
//! `POST /api/auth/login {"token"}` checks the token (rate limited per client address: 5
//! failures a minute, then 429 with `Retry-After`), creates a session whose id is stored only
//! hashed, and sets it as an HttpOnly, SameSite=Strict cookie (`Secure` when configured or
//! served over https). The session has the token's scope, ends when the token is revoked, and
//! expires after `session_ttl_secs` without use. `POST /api/auth/logout` deletes it;
//! `GET /api/auth/me` shows the caller's scope (and renews the cookie's lifetime).

use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use warp::http::header::{HeaderValue, SET_COOKIE};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::auth::{optional_principal, principal, session_expiry, RequestParts, SESSION_COOKIE};
use super::json::{ok_json, reject, reply_json};
use super::server::PeerAddr;
use crate::auth::client_addr::{client_ip, forwarded_https};
use crate::auth::{self, Principal, Scope, Via};
use crate::db::auth as store;
use crate::error::ApiError;
use crate::state::AppState;

/// A login body is `{"token":"cmt_…"}`: a few hundred bytes at most.
const LOGIN_BODY_MAX_BYTES: u64 = 4096;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let login = warp::path!("api" / "auth" / "login")
        .and(warp::post())
        .and(with_state.clone())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::body::content_length_limit(LOGIN_BODY_MAX_BYTES))
        .and(warp::body::bytes())
        .and_then(login);
    let logout = warp::path!("api" / "auth" / "logout")
        .and(warp::post())
        .and(with_state.clone())
        .and(principal(state))
        .and_then(logout);
    let me = warp::path!("api" / "auth" / "me")
        .and(warp::get())
        .and(with_state)
        .and(principal(state))
        .and_then(me);
    let session = warp::path!("api" / "auth" / "session")
        .and(warp::get())
        .and(super::json::with_state(state))
        .and(optional_principal(state))
        .and_then(session);
    login
        .or(logout)
        .unify()
        .or(me)
        .unify()
        .or(session)
        .unify()
        .boxed()
}

/// Whether the caller is logged in, always `200`: the web UI asks this on load, so a visitor
/// who is not logged in sees the login form without a failed request. When logged in, the
/// answer is `me`'s (and renews the cookie's lifetime the same way).
async fn session(
    state: AppState,
    who: Option<Principal>,
    parts: RequestParts,
) -> Result<Response, Rejection> {
    match who {
        Some(who) => me(state, who, parts).await,
        None => Ok(ok_json(&serde_json::json!({ "authenticated": false }))),
    }
}

#[derive(Serialize)]
struct Me {
    /// Always true here; `/api/auth/session` says `false` when not logged in.
    authenticated: bool,
    scope: Scope,
    via: Via,
    token_id: Option<i64>,
}

/// The token from the body. Parsed by hand so no error message can ever echo the value.
fn token_from_body(bytes: &[u8]) -> Result<String, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| ApiError::bad_request("body must be a JSON object {\"token\": \"...\"}"))?;
    v.get("token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::bad_request("body must be a JSON object {\"token\": \"...\"}")
                .with_field("token")
        })
}

async fn login(
    state: AppState,
    headers: warp::http::HeaderMap,
    peer: Option<PeerAddr>,
    body: bytes::Bytes,
) -> Result<Response, Rejection> {
    let peer = peer
        .map(|p| p.0)
        .unwrap_or_else(|| (Ipv4Addr::UNSPECIFIED, 0).into());
    let client: IpAddr = client_ip(peer, &headers, &state.config.trusted_proxies);
    if let Err(wait) = state.login_limiter.check(client) {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err(reject(ApiError::rate_limited(
            format!("too many failed logins from this address; try again in {secs} s"),
            secs,
        )));
    }
    let token = token_from_body(&body).map_err(reject)?;
    let hash = auth::hash_secret(&token);
    let found = if auth::has_secret_shape(&token, auth::TOKEN_PREFIX) {
        let h = hash.clone();
        state
            .db
            .read(move |c| store::find_token(c, &h))
            .await
            .map_err(reject)?
            .filter(|f| auth::hashes_equal(&f.stored_hash, &hash))
    } else {
        None
    };
    let Some(found) = found else {
        state.login_limiter.fail(client);
        slog::warn!(state.log, "login failed"; "client" => %client);
        return Err(reject(ApiError::unauthorized(
            "the token is invalid or revoked",
        )));
    };
    state.login_limiter.succeed(client);
    let session = auth::new_secret(auth::SESSION_PREFIX).map_err(|e| {
        let err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "cannot create a session now",
        );
        reject(err.with_internal(e.to_string()))
    })?;
    let session_hash = auth::hash_secret(&session);
    let expires_at = session_expiry(&state);
    let token_id = found.token_id;
    {
        let expires_at = expires_at.clone();
        state
            .db
            .write(move |c| store::insert_session(c, &session_hash, token_id, &expires_at))
            .await
            .map_err(reject)?;
    }
    slog::info!(state.log, "login"; "client" => %client, "token_id" => token_id);
    let secure = state.config.cookie_secure_for(forwarded_https(
        peer,
        &headers,
        &state.config.trusted_proxies,
    ));
    let mut resp = reply_json(
        StatusCode::OK,
        &serde_json::json!({ "scope": found.scope, "expires_at": expires_at }),
    );
    set_cookie(
        &mut resp,
        &session,
        state.config.session_ttl.as_secs(),
        secure,
    );
    Ok(resp)
}

async fn logout(
    state: AppState,
    who: Principal,
    parts: RequestParts,
) -> Result<Response, Rejection> {
    if who.via == Via::Cookie {
        if let Some(secret) = parts.session_cookie() {
            let hash = auth::hash_secret(&secret);
            state
                .db
                .write(move |c| store::delete_session(c, &hash))
                .await
                .map_err(reject)?;
        }
    }
    let mut resp = Response::new(Vec::<u8>::new().into());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let secure = cookie_secure(&state, &parts);
    set_cookie(&mut resp, "", 0, secure);
    Ok(resp)
}

async fn me(state: AppState, who: Principal, parts: RequestParts) -> Result<Response, Rejection> {
    let mut resp = ok_json(&Me {
        authenticated: true,
        scope: who.scope,
        via: who.via,
        token_id: who.token_id,
    });
    if who.via == Via::Cookie {
        if let Some(secret) = parts.session_cookie() {
            let secure = cookie_secure(&state, &parts);
            set_cookie(
                &mut resp,
                &secret,
                state.config.session_ttl.as_secs(),
                secure,
            );
        }
    }
    Ok(resp)
}

fn cookie_secure(state: &AppState, parts: &RequestParts) -> bool {
    let https = parts
        .peer
        .is_some_and(|p| forwarded_https(p, &parts.headers, &state.config.trusted_proxies));
    state.config.cookie_secure_for(https)
}

fn set_cookie(resp: &mut Response, value: &str, max_age_secs: u64, secure: bool) {
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}
