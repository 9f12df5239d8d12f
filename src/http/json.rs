//! Request parsing and response building shared by every resource.
//!
//! Bodies: JSON only (415 otherwise), capped (413), and a parse error names the field
//! (`serde_path_to_error`). Query strings are parsed by hand per route so that a bad value gets a
//! message naming the parameter and what it accepts, not warp's generic "invalid query string".

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::error::ApiError;

/// Hands each handler the server state (cheap: handles and `Arc`s).
pub fn with_state(
    state: &crate::state::AppState,
) -> impl Filter<Extract = (crate::state::AppState,), Error = std::convert::Infallible> + Clone {
    let state = state.clone();
    warp::any().map(move || state.clone())
}

/// The head of every list route: `GET`, the state and the raw query string (parsed by the handler
/// with [`Query`], so an unknown parameter is a clear 400 rather than a silent no-op).
pub fn get_listing(
    state: &crate::state::AppState,
) -> impl Filter<Extract = (crate::state::AppState, String), Error = Rejection> + Clone {
    warp::get().and(with_state(state)).and(raw_query())
}

/// The head of every read route that needs nothing but the state: `GET` and the state.
pub fn get_with_state(
    state: &crate::state::AppState,
) -> impl Filter<Extract = (crate::state::AppState,), Error = Rejection> + Clone {
    warp::get().and(with_state(state))
}

/// Any failure becomes a rejection carrying the [`ApiError`].
pub fn reject(e: impl Into<ApiError>) -> Rejection {
    warp::reject::custom(e.into())
}

/// A JSON response with the given status.
pub fn reply_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(e) => super::errors::error_response(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("response serialisation failed: {e}"),
        )),
    }
}

/// A response whose body is already serialised JSON.
pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn ok_json<T: Serialize>(value: &T) -> Response {
    reply_json(StatusCode::OK, value)
}

/// `{items, total, limit, offset}`: every list endpoint's shape.
#[derive(Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

impl<T: Serialize> Page<T> {
    /// `200` with the page; `(limit, offset)` as [`Query::paging`] returned them.
    pub fn reply(items: Vec<T>, total: i64, (limit, offset): (i64, i64)) -> Response {
        ok_json(&Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// `200` with every item on one page (lists that are bounded by a cap, not paged).
    pub fn reply_all(items: Vec<T>) -> Response {
        let total = items.len() as i64;
        Self::reply(items, total, (total, 0))
    }
}

/// A JSON body of type `T`: Content-Type must be JSON, size at most `limit` bytes.
pub fn json_body<T: DeserializeOwned + Send>(
    limit: u64,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and_then(|ct: Option<String>| async move {
            match ct {
                Some(ct) if is_json_content_type(&ct) => Ok(()),
                Some(ct) => Err(reject(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("Content-Type {ct:?} is not accepted; send application/json"),
                ))),
                None => Err(reject(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Content-Type is missing; send application/json",
                ))),
            }
        })
        .untuple_one()
        .and(limited_body(limit))
        .and_then(|bytes: Vec<u8>| async move { parse_json::<T>(&bytes).map_err(reject) })
}

fn too_large(limit: u64) -> Rejection {
    reject(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is larger than the limit of {limit} bytes (body_limit_bytes)"),
    ))
}

/// The whole body, at most `limit` bytes: a declared Content-Length over the limit is refused
/// before reading, and a chunked body is cut off as soon as it passes the limit.
pub fn limited_body(limit: u64) -> impl Filter<Extract = (Vec<u8>,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(move |declared: Option<u64>, stream| collect_limited(declared, stream, limit))
}

async fn collect_limited<S, B>(
    declared: Option<u64>,
    stream: S,
    limit: u64,
) -> Result<Vec<u8>, Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: warp::Buf,
{
    use futures_util::StreamExt;
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut stream = std::pin::pin!(stream);
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|e| {
            reject(ApiError::bad_request(format!(
                "reading request body failed: {e}"
            )))
        })?;
        if body.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(too_large(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body)
}

fn is_json_content_type(ct: &str) -> bool {
    let main = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    main == "application/json" || (main.starts_with("application/") && main.ends_with("+json"))
}

/// Parses JSON, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "request body is empty; expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let err = if path == "." || path.is_empty() {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid JSON body at {path}: {inner}")).with_field(path)
        };
        err
    })?;
    // Parsed once more as a tree only to look for forbidden characters; bodies are small.
    if let Ok(tree) = serde_json::from_slice::<Value>(bytes) {
        if let Some((field, c)) = forbidden_char(&tree, String::new()) {
            return Err(ApiError::validation(
                &field,
                format!(
                    "must not contain U+{:04X} (NUL and bidirectional override characters are refused)",
                    c as u32
                ),
            ));
        }
    }
    Ok(value)
}

/// NUL (cut off by C APIs) and the bidirectional overrides and isolates (text that displays
/// differently from what it is, "Trojan Source") are refused in every string of a JSON body.
fn is_forbidden_char(c: char) -> bool {
    c == '\0' || ('\u{202A}'..='\u{202E}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// The path (`title`, `tags[1]`, `env.FOO`) and character of the first forbidden character in
/// any key or string of `v`.
fn forbidden_char(v: &Value, path: String) -> Option<(String, char)> {
    let found_in = |s: &str| s.chars().find(|c| is_forbidden_char(*c));
    match v {
        Value::String(s) => found_in(s).map(|c| (path, c)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| forbidden_char(item, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let field = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match found_in(k) {
                Some(c) => Some((field, c)),
                None => forbidden_char(item, field),
            }
        }),
        _ => None,
    }
}

/// The raw query string, or "" when there is none (warp's `raw()` rejects an absent one).
pub fn raw_query() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::query::raw().or(warp::any().map(String::new)).unify()
}

/// Decoded query parameters with typed, self-explaining accessors.
pub struct Query {
    params: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut params = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {k:?}; accepted: {}",
                    allowed.join(", ")
                ))
                .with_field(k.into_owned()));
            }
            if params.contains_key(k.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "query parameter {k:?} is given more than once; give it once"
                ))
                .with_field(k.into_owned()));
            }
            params.insert(k.into_owned(), v.into_owned());
        }
        Ok(Query { params })
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::bad_request(format!(
                    "query parameter {name}={v:?}: expected a whole number from {min} to {max}"
                ))
                .with_field(name)),
            },
        }
    }

    /// A value from a fixed set, parsed by `parse`.
    pub fn choice<T>(
        &self,
        name: &str,
        all: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter {name}={v:?}: expected one of {}",
                    all.join(", ")
                ))
                .with_field(name)
            }),
        }
    }

    /// `limit` (default 50, 0–500) and `offset` (default 0), as every list endpoint takes them.
    pub fn paging(&self) -> Result<(i64, i64), ApiError> {
        let limit = self
            .int("limit", 0, MAX_PAGE_LIMIT)?
            .unwrap_or(DEFAULT_PAGE_LIMIT);
        let offset = self.int("offset", 0, i64::MAX / 2)?.unwrap_or(0);
        Ok((limit, offset))
    }
}

pub const DEFAULT_PAGE_LIMIT: i64 = 50;
pub const MAX_PAGE_LIMIT: i64 = 500;

/// An id from the path; warp's `i64` path segment already rejects non-numbers with a 404.
pub fn request_id() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    warp::header::optional::<String>(super::server::REQUEST_ID_HEADER)
        .map(|id: Option<String>| id.unwrap_or_default())
        .or(warp::any().map(String::new))
        .unify()
}
