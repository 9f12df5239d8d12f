//! HTTP and WebSocket routes: one file per resource, plus the shared plumbing.
//!
//! `routes` assembles the tree. The auth guard (`auth.rs`) runs once in front of all of it, so
//! every route and WebSocket added to the tree is authenticated without further edits; only the
//! allow-list in `auth.rs` is public. Every route yields a `Response` or a rejection; the final
//! step (`errors::recover`) turns rejections into JSON errors, so an unknown `/api/...` path is a
//! JSON 404 and nothing falls through to a default warp body.

pub mod agent_kinds;
pub mod agent_sessions;
pub mod agents;
pub mod approvals;
pub mod assets;
pub mod auth;
pub mod connections;
pub mod device;
pub mod errors;
pub mod events;
pub mod executions;
pub mod files;
pub mod health;
pub mod json;
pub mod login;
pub mod metrics;
pub mod openapi;
pub mod parser_errors;
pub mod push;
pub mod recording;
pub mod review;
pub mod runs;
pub mod server;
pub mod session_ws;
pub mod sessions;
pub mod tasks;
pub mod terminals;
pub mod ws_frames;
pub mod ws_upgrade;

use std::convert::Infallible;

use warp::reply::Response;
use warp::{Filter, Rejection};

use crate::state::AppState;

pub fn routes(state: &AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let api = health::routes(state)
        .or(login::routes(state))
        .unify()
        .or(tasks::routes(state))
        .unify()
        .or(executions::routes(state))
        .unify()
        .or(events::routes(state))
        .unify()
        .or(metrics::routes(state))
        .unify()
        .or(terminals::routes(state))
        .unify()
        .or(agents::routes(state))
        .unify()
        .or(agent_kinds::routes())
        .unify()
        .or(agent_sessions::routes(state))
        .unify()
        .or(runs::routes(state))
        .unify()
        .or(openapi::routes())
        .unify()
        .or(review::routes(state))
        .unify()
        .or(files::routes(state))
        .unify()
        .or(approvals::routes(state))
        .unify()
        .or(push::routes(state))
        .unify()
        .or(assets::routes())
        .unify();
    // Auth once, around everything above: new routes are covered without edits.
    let attempt = auth::guard(state)
        .and(api)
        .map(Ok::<Response, Rejection>)
        .or_else(|rej: Rejection| async move {
            Ok::<_, Infallible>((Err::<Response, Rejection>(rej),))
        });
    warp::method()
        .and(warp::path::full())
        .and(attempt)
        .then(errors::recover)
        .map(|r: Result<Response, Infallible>| match r {
            Ok(resp) => resp,
            Err(never) => match never {},
        })
}
