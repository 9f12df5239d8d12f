//! `GET /api/terminals/{id}/recording.cast` (and `/api/agent-sessions/{id}/recording.cast`): a
//! live session's output as asciicast v2, the format asciinema's player reads. It covers the
//! output still in the session's ring (`scrollback_bytes`, 1 MiB by default), which bounds its
//! size (`src/screen/recording.rs`); a session the server no longer holds is 404.

use ractor::rpc::CallResult;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

use super::json::reject;
use crate::actors::session_types::{SessionError, SessionKind};
use crate::actors::sessions::CALL_TIMEOUT;
use crate::actors::terminal::TerminalMsg;
use crate::error::ApiError;
use crate::state::AppState;

pub fn route(state: &AppState, kind: SessionKind) -> warp::filters::BoxedFilter<(Response,)> {
    let state = state.clone();
    super::sessions::session_path(kind)
        .and(warp::path("recording.cast"))
        .and(warp::path::end())
        .and(warp::get())
        .and_then(move |id: String| {
            let state = state.clone();
            async move { recording(&state, kind, &id).await.map_err(reject) }
        })
        .boxed()
}

async fn recording(state: &AppState, kind: SessionKind, id: &str) -> Result<Response, ApiError> {
    let actor = super::sessions::find(state, kind, id).await?;
    let (timeline, ring) = match actor.call(TerminalMsg::Recording, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(source)) => source,
        // The session ended between the lookup and the question.
        _ => return Err(SessionError::NotFound.into()),
    };
    // Turning a large ring into JSON takes milliseconds; the runtime's thread serves every
    // session's keystrokes meanwhile.
    let cast = tokio::task::spawn_blocking(move || timeline.cast(ring.start, &ring.bytes))
        .await
        .map_err(|e| {
            // A panic in the cast builder: a bug, logged by the envelope with the request id.
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the recording could not be made (see the server log)",
            )
            .with_internal(format!("recording task: {e}"))
        })?;
    let mut response = Response::new(cast.into());
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        "application/x-asciicast".parse().expect("static"),
    );
    if let Ok(v) = format!("attachment; filename=\"{id}.cast\"").parse() {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
