//! The auth guard: one filter in front of every route and WebSocket (`http::routes`).
//!
//! For each request it decides, from the method and path alone, what access the route needs
//! ([`access_for`]): a small explicit allow-list is public, `/api/system/health/detailed` and
//! `/metrics` need any scope, and everything else under `/api` and `/metrics` — including routes
//! added later and every WebSocket upgrade — needs `admin`. Then it authenticates:
//! `Authorization: Bearer` first, else the session cookie. Credentials are never read from the
//! query string. Failures are 401 (`unauthorized`) or 403 (`forbidden`) JSON replies; a refused
//! WebSocket upgrade gets the same reply instead of `101` (the client sees an HTTP error, not a
//! close code).
//!
//! Origin rule (cross-site request forgery and WebSocket hijacking): on an upgrade or a
//! POST/PUT/PATCH/DELETE, an `Origin` header, when present, must be the server's own origin
//! (`http(s)://<Host>`, or `public_url`'s) or one of `allowed_origins`; with a cookie it must
//! also be present, since every browser sends it and only non-browser clients (which use Bearer)
//! omit it.

use std::net::SocketAddr;
use std::time::Duration;

use warp::http::{HeaderMap, Method};
use warp::{Filter, Rejection};

use super::json::reject;
use super::server::PeerAddr;
use crate::auth::{self, Principal, Scope, Via};
use crate::db::auth as store;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::format_ts;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cm_session";
/// `last_used_at` / session expiry are written at most this often per credential, so a busy
/// client does not turn every read into a DB write.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credential: liveness, the public health summary, login, the API description, static UI
    /// assets.
    Public,
    /// Any valid credential (`/api/auth/me`, `/api/auth/logout`).
    AnyScope,
    /// Monitoring: `monitor` or `admin`.
    Monitor,
    /// Everything else.
    Admin,
}

/// Public routes, by exact method and path: the whole allow-list.
const PUBLIC: &[(&str, &[&str])] = &[
    ("GET", &["api", "health"]),
    ("GET", &["api", "auth", "session"]),
    ("GET", &["api", "system", "health"]),
    ("POST", &["api", "auth", "login"]),
    ("GET", &["api", "openapi.json"]),
];
/// Routes any authenticated caller may use.
const ANY_SCOPE: &[(&str, &[&str])] = &[
    ("GET", &["api", "auth", "me"]),
    ("POST", &["api", "auth", "logout"]),
];
/// Routes a `monitor` token may use.
const MONITOR: &[(&str, &[&str])] = &[
    ("GET", &["api", "system", "health", "detailed"]),
    ("GET", &["metrics"]),
];

/// The access `method path` needs. Classification is deliberately coarser than routing: empty
/// segments are collapsed and segments percent-decoded and lower-cased, so no spelling of an API
/// path can look public; anything that might be API is at least `Admin` unless listed above.
pub fn access_for(method: &Method, path: &str, upgrade: bool) -> Access {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s).to_ascii_lowercase())
        .collect();
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let listed = |table: &[(&str, &[&str])]| {
        table.iter().any(|(m, p)| {
            *m == method && p.len() == segs.len() && p.iter().zip(&segs).all(|(a, b)| a == b)
        })
    };
    if upgrade {
        return Access::Admin; // every WebSocket carries a shell-capable stream or live state
    }
    if listed(PUBLIC) {
        return Access::Public;
    }
    if listed(ANY_SCOPE) {
        return Access::AnyScope;
    }
    if listed(MONITOR) {
        return Access::Monitor;
    }
    let api_like = segs
        .first()
        .is_some_and(|s| s.starts_with("api") || s.starts_with("metrics"));
    if method == "GET" && !api_like {
        return Access::Public; // static UI assets: exact-name lookup in the embedded set
    }
    Access::Admin
}

/// `%XX` → byte; anything else as is (a bad escape stays literal).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The guard: passes the request on, or rejects it with 401/403.
pub fn guard(state: &AppState) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    let state = state.clone();
    request_parts()
        .and_then(move |parts: RequestParts| {
            let state = state.clone();
            async move { check(&state, &parts).await.map(|_| ()).map_err(reject) }
        })
        .untuple_one()
}

/// The principal of an authenticated request (for `/api/auth/*`), re-checked the same way.
pub fn principal(
    state: &AppState,
) -> impl Filter<Extract = (Principal, RequestParts), Error = Rejection> + Clone {
    let state = state.clone();
    request_parts()
        .and_then(move |parts: RequestParts| {
            let state = state.clone();
            async move {
                match check(&state, &parts).await {
                    Ok(Some(p)) => Ok((p, parts)),
                    Ok(None) => Err(reject(unauthorized())),
                    Err(e) => Err(reject(e)),
                }
            }
        })
        .untuple_one()
}

/// The caller's credential if it has a valid one (`None` when it has none or a bad one), for
/// public routes that answer differently when logged in. DB trouble is still an error (503).
pub fn optional_principal(
    state: &AppState,
) -> impl Filter<Extract = (Option<Principal>, RequestParts), Error = Rejection> + Clone {
    let state = state.clone();
    request_parts()
        .and_then(move |parts: RequestParts| {
            let state = state.clone();
            async move {
                if state.config.insecure_no_auth {
                    return Ok((Some(no_auth_principal()), parts));
                }
                match authenticate(&state, &parts).await {
                    Ok(p) => Ok((p, parts)),
                    Err(e) if e.status == warp::http::StatusCode::UNAUTHORIZED => Ok((None, parts)),
                    Err(e) => Err(reject(e)),
                }
            }
        })
        .untuple_one()
}

/// Everyone under `--insecure-no-auth` (loopback only): an admin without a token.
fn no_auth_principal() -> Principal {
    Principal {
        scope: Scope::Admin,
        token_id: None,
        via: Via::NoAuth,
    }
}

/// What the guard looks at.
#[derive(Debug, Clone)]
pub struct RequestParts {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub host: Option<String>,
    pub peer: Option<SocketAddr>,
}

impl RequestParts {
    pub fn is_upgrade(&self) -> bool {
        self.headers
            .get_all(warp::http::header::UPGRADE)
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.eq_ignore_ascii_case("websocket"))
            })
    }

    fn changes_state(&self) -> bool {
        !matches!(
            self.method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        )
    }

    pub fn origin(&self) -> Option<&str> {
        self.headers
            .get(warp::http::header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("\u{0}invalid"))
    }

    /// The session secret from the cookie, if it has the right shape.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(warp::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, v)| *k == SESSION_COOKIE && auth::has_secret_shape(v, auth::SESSION_PREFIX))
            .map(|(_, v)| v.to_string())
    }
}

fn request_parts() -> impl Filter<Extract = (RequestParts,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::host::optional())
        .and(warp::ext::optional::<PeerAddr>())
        .map(
            |method,
             path: warp::path::FullPath,
             headers,
             host: Option<warp::host::Authority>,
             peer: Option<PeerAddr>| {
                RequestParts {
                    method,
                    path: path.as_str().to_string(),
                    headers,
                    host: host.map(|h| h.as_str().to_ascii_lowercase()),
                    peer: peer.map(|p| p.0),
                }
            },
        )
}

fn unauthorized() -> ApiError {
    ApiError::unauthorized(
        "authentication required: send `Authorization: Bearer <token>`, or log in with POST /api/auth/login",
    )
}

/// Whether `origin` is this server's own or an allowed one.
pub fn origin_allowed(state: &AppState, parts: &RequestParts, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if state.config.public_origin().is_some_and(|o| o == origin) {
        return true;
    }
    if state.config.allowed_origins.contains(&origin) {
        return true;
    }
    parts
        .host
        .as_deref()
        .is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"))
}

/// Decides one request: `Ok(Some)` authenticated, `Ok(None)` a public route, `Err` refused.
async fn check(state: &AppState, parts: &RequestParts) -> Result<Option<Principal>, ApiError> {
    let upgrade = parts.is_upgrade();
    let sensitive = upgrade || parts.changes_state();
    if sensitive {
        if let Some(origin) = parts.origin() {
            if !origin_allowed(state, parts, origin) {
                return Err(ApiError::forbidden(
                    "Origin is not this server's origin nor in allowed_origins (CM_ALLOWED_ORIGINS)",
                ));
            }
        }
    }
    let access = access_for(&parts.method, &parts.path, upgrade);
    if access == Access::Public {
        return Ok(None);
    }
    let principal = if state.config.insecure_no_auth {
        no_auth_principal()
    } else {
        authenticate(state, parts).await?.ok_or_else(unauthorized)?
    };
    if principal.via == Via::Cookie && sensitive && parts.origin().is_none() {
        return Err(ApiError::forbidden(
            "a cookie-authenticated WebSocket or change needs an Origin header; non-browser clients use Authorization: Bearer",
        ));
    }
    let allowed = match access {
        Access::Public | Access::AnyScope | Access::Monitor => true,
        Access::Admin => principal.scope == Scope::Admin,
    };
    if !allowed {
        return Err(ApiError::forbidden(format!(
            "a {} credential may not use {} {}; it may read /api/system/health/detailed and /metrics only",
            principal.scope, parts.method, parts.path
        )));
    }
    Ok(Some(principal))
}

/// Finds the caller's credential: Bearer, else the session cookie. A Bearer header that is
/// present but wrong is a 401 (no fallback to the cookie).
async fn authenticate(
    state: &AppState,
    parts: &RequestParts,
) -> Result<Option<Principal>, ApiError> {
    let invalid = || ApiError::unauthorized("the credential is invalid, expired or revoked");
    let mut authorization = parts
        .headers
        .get_all(warp::http::header::AUTHORIZATION)
        .iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(ApiError::unauthorized(
                "send one Authorization header, not several",
            ));
        }
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| auth::has_secret_shape(t, auth::TOKEN_PREFIX))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "Authorization must be `Bearer <token>` with a claude-manager token",
                )
            })?;
        let hash = auth::hash_secret(token);
        let found = state
            .db
            .read({
                let hash = hash.clone();
                move |c| store::find_token(c, &hash)
            })
            .await?;
        let found = found
            .filter(|f| auth::hashes_equal(&f.stored_hash, &hash))
            .ok_or_else(invalid)?;
        if is_stale(found.last_seen_at.as_deref()) {
            let id = found.token_id;
            state.db.write(move |c| store::touch_token(c, id)).await?;
        }
        return Ok(Some(Principal {
            scope: found.scope,
            token_id: Some(found.token_id),
            via: Via::Bearer,
        }));
    }
    let Some(secret) = parts.session_cookie() else {
        return Ok(None);
    };
    let hash = auth::hash_secret(&secret);
    let found = state
        .db
        .read({
            let hash = hash.clone();
            move |c| store::find_session(c, &hash)
        })
        .await?;
    let found = found
        .filter(|f| auth::hashes_equal(&f.stored_hash, &hash))
        .ok_or_else(invalid)?;
    if is_stale(found.last_seen_at.as_deref()) {
        let expires = session_expiry(state);
        state
            .db
            .write(move |c| store::touch_session(c, &hash, &expires))
            .await?;
    }
    Ok(Some(Principal {
        scope: found.scope,
        token_id: Some(found.token_id),
        via: Via::Cookie,
    }))
}

fn is_stale(last: Option<&str>) -> bool {
    let threshold = format_ts(time::OffsetDateTime::now_utc() - TOUCH_INTERVAL);
    last.is_none_or(|l| l < threshold.as_str())
}

/// When a session used now expires (sliding).
pub fn session_expiry(state: &AppState) -> String {
    format_ts(time::OffsetDateTime::now_utc() + state.config.session_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_spelling_of_an_api_path_is_public() {
        let get = Method::GET;
        assert_eq!(access_for(&get, "/api/health", false), Access::Public);
        assert_eq!(access_for(&get, "/api/health", true), Access::Admin);
        assert_eq!(access_for(&get, "/", false), Access::Public);
        assert_eq!(access_for(&get, "/index.html", false), Access::Public);
        assert_eq!(percent_decode("%61p%69%2f%zz%"), "api/%zz%");
        for p in [
            "/api/tasks",
            "//api/tasks",
            "/%61pi/tasks",
            "/API/tasks",
            "/api",
            "/metrics",
            "/api/new-thing",
        ] {
            assert_ne!(access_for(&get, p, false), Access::Public, "{p}");
        }
        assert_eq!(
            access_for(&Method::POST, "/index.html", false),
            Access::Admin
        );
        assert_eq!(
            access_for(&get, "/api/system/health/detailed", false),
            Access::Monitor
        );
        assert_eq!(
            access_for(&Method::POST, "/api/auth/login", false),
            Access::Public
        );
        assert_eq!(access_for(&get, "/api/auth/login", false), Access::Admin);
    }
}
