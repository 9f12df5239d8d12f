//! Turning every warp rejection into an [`ApiError`].
//!
//! The response produced here has an empty body and the error in its extensions; the server
//! envelope (`server.rs`) renders it with the request id. So there is exactly one place that
//! writes error bodies, and no warp default text body can leak out.

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::reject::Rejection;
use warp::reply::Response;

use crate::error::ApiError;

/// Carries the request's method and path so a 404 can say what was asked for.
pub fn to_api_error(rej: &Rejection, method: &str, path: &str) -> ApiError {
    if let Some(e) = rej.find::<ApiError>() {
        return e.clone();
    }
    if rej.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the configured limit (body_limit_bytes)",
        );
    }
    if rej.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request body must be JSON (Content-Type: application/json)",
        );
    }
    if rej.find::<warp::reject::LengthRequired>().is_some() {
        return ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "request body needs a Content-Length header",
        );
    }
    if let Some(e) = rej.find::<warp::reject::InvalidQuery>() {
        return ApiError::bad_request(format!("invalid query string: {e}"));
    }
    if let Some(e) = rej.find::<warp::reject::MissingHeader>() {
        return ApiError::bad_request(format!("missing header {}", e.name()));
    }
    if let Some(e) = rej.find::<warp::reject::InvalidHeader>() {
        return ApiError::bad_request(format!("invalid header {}", e.name()));
    }
    // warp prefers "method not allowed" from any branch over "not found"; a path that names no
    // resource (`/api/tasks/abc`) is a 404 whatever the method, as a GET on it is.
    if rej.find::<warp::reject::MethodNotAllowed>().is_some() && names_a_resource(path) {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        );
    }
    if rej.is_not_found() || rej.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        );
    }
    // The remaining rejections (e.g. a WebSocket route asked without an upgrade) are all the
    // client's doing; say so without inventing a 500.
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("request not understood: {}", rej_text(rej)),
    )
}

/// Resources whose ids are numbers; the others (sessions) have opaque string ids.
const NUMERIC_ID_RESOURCES: &[&str] = &["/api/tasks/", "/api/executions/", "/api/agents/"];

/// Whether `path` matches a route template, with a number where a numeric id belongs.
fn names_a_resource(path: &str) -> bool {
    let template = crate::metrics::route_template(path);
    if !crate::metrics::ROUTE_TEMPLATES.contains(&template) {
        return false;
    }
    match NUMERIC_ID_RESOURCES.iter().find(|p| path.starts_with(*p)) {
        Some(prefix) => path[prefix.len()..]
            .split('/')
            .next()
            .is_some_and(|id| id.parse::<i64>().is_ok()),
        None => true,
    }
}

fn rej_text(rej: &Rejection) -> String {
    let text = format!("{rej:?}");
    text.chars().take(200).collect()
}

/// A response carrying `err` for the envelope to render.
pub fn error_response(err: ApiError) -> Response {
    let mut resp = Response::new(Vec::<u8>::new().into());
    *resp.status_mut() = err.status;
    resp.extensions_mut().insert(err);
    resp
}

/// The last step of the route tree: a rejection becomes an error response, never a warp default.
pub async fn recover(
    method: warp::http::Method,
    path: warp::path::FullPath,
    result: Result<Response, Rejection>,
) -> Result<Response, Infallible> {
    Ok(match result {
        Ok(resp) => resp,
        Err(rej) => error_response(to_api_error(&rej, method.as_str(), path.as_str())),
    })
}
