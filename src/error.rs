//! The one error type the HTTP layer speaks, and its JSON shape.
//!
//! Every failure a client can see — a handler's own error, a warp rejection, a DB that is busy —
//! becomes an [`ApiError`] and is rendered once, by the server wrapper, as
//! `{"error":{"code","message","request_id"[,"field"]}}` with the right status (DESIGN "HTTP API").
//! Handlers never build error bodies themselves.

use std::borrow::Cow;

use serde::Serialize;
use warp::http::StatusCode;

use crate::db::DbError;

/// A client-visible failure: an HTTP status, a stable machine-readable code and a sentence for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    /// The request field the error is about, when there is one (validation and bad input).
    pub field: Option<String>,
    /// The cause of a server-side failure: logged once by the server envelope, never sent.
    pub internal: Option<String>,
    /// Sent as `Retry-After` (seconds) with 429 and 503.
    pub retry_after_secs: Option<u64>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            internal: None,
            retry_after_secs: None,
        }
    }

    /// 401: no credential, or one that is not (or no longer) valid. Never echoes the credential.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: a valid credential that may not do this (scope, origin).
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429 with `Retry-After`.
    pub fn rate_limited(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The cause, for the server's log only (the envelope logs it once; the client never sees it).
    pub fn with_internal(mut self, cause: impl Into<String>) -> Self {
        self.internal = Some(cause.into());
        self
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422: the request parsed but a field breaks a rule; the message names the field and the rule.
    pub fn validation(field: &str, rule: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {rule}"),
        )
        .with_field(field)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no {what} with id {id}"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The JSON body, with the request id the server wrapper assigned.
    pub fn body(&self, request_id: &str) -> Vec<u8> {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            request_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        let outer = Outer {
            error: Inner {
                code: self.code,
                message: &self.message,
                request_id,
                field: self.field.as_deref(),
            },
        };
        // Serialising plain strings cannot fail; fall back to a fixed body rather than panic.
        serde_json::to_vec(&outer).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"error rendering failed"}}"#.to_vec()
        })
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Busy { timeout_ms } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "db_busy",
                format!("no database connection free within {timeout_ms} ms; try again"),
            ),
            DbError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "db_unavailable",
                "the database worker is restarting; try again",
            ),
            // The cause is logged once by the server envelope; the client gets no internals.
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "database error (see the server log)",
            )
            .with_internal(other.to_string()),
        }
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
