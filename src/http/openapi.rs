//! `GET /api/openapi.json`: the API described in OpenAPI 3.1, served without auth.
//!
//! The document is written by hand in `docs/openapi.json` and compiled in. It cannot drift
//! silently: `tests/auth_routes.rs` fails when its operations differ from the router's route
//! table, and `scripts/schemathesis` checks every response of the real server against it.

use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| super::json::json_bytes(StatusCode::OK, DOCUMENT.as_bytes().to_vec()))
        .boxed()
}
