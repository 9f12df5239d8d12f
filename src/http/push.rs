//! `/api/push`: Web Push for the browser — the server's VAPID key, the subscriptions of the
//! browsers that asked for notifications, and a test notification. Sending lives in `src/push/`.

use serde::{Deserialize, Serialize};
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{json_body, ok_json, reject, reply_json, Page};
use crate::db::push_subscriptions::{self, NewSubscription};
use crate::db::DbError;
use crate::error::ApiError;
use crate::push::subscription::{check_endpoint, check_keys, SubscriptionJson};
use crate::push::Notification;
use crate::state::AppState;

/// Browsers (phones, laptops) one owner subscribes: far more is a script gone wrong, and each one
/// costs an encryption and a request per notification.
const MAX_SUBSCRIPTIONS: i64 = 50;
/// A `User-Agent` kept to tell devices apart in the list, cut to this many characters.
const USER_AGENT_MAX_CHARS: usize = 200;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let limit = state.config.body_limit_bytes;
    let key = warp::path!("api" / "push" / "key")
        .and(warp::get())
        .and(with_state.clone())
        .map(|s: AppState| ok_json(&json!({ "public_key": s.push.public_key() })));
    let list = warp::path!("api" / "push" / "subscriptions")
        .and(warp::get())
        .and(with_state.clone())
        .and_then(list);
    let subscribe = warp::path!("api" / "push" / "subscriptions")
        .and(warp::post())
        .and(with_state.clone())
        .and(warp::header::optional::<String>("user-agent"))
        .and(json_body::<SubscriptionJson>(limit))
        .and_then(subscribe);
    let unsubscribe = warp::path!("api" / "push" / "subscriptions")
        .and(warp::delete())
        .and(with_state.clone())
        .and(json_body::<Unsubscribe>(limit))
        .and_then(unsubscribe);
    let test = warp::path!("api" / "push" / "test")
        .and(warp::post())
        .and(with_state)
        .and_then(test);
    key.or(list)
        .unify()
        .or(subscribe)
        .unify()
        .or(unsubscribe)
        .unify()
        .or(test)
        .unify()
        .boxed()
}

async fn list(state: AppState) -> Result<Response, Rejection> {
    let items = state
        .db
        .read(|c| push_subscriptions::list(c))
        .await
        .map_err(|e: DbError| reject(e))?;
    Ok(ok_json(&Page {
        total: items.len() as i64,
        limit: MAX_SUBSCRIPTIONS,
        offset: 0,
        items,
    }))
}

async fn subscribe(
    state: AppState,
    user_agent: Option<String>,
    body: SubscriptionJson,
) -> Result<Response, Rejection> {
    check_endpoint(&body.endpoint, state.push.allow_loopback).map_err(reject)?;
    check_keys(&body.keys).map_err(reject)?;
    let new = NewSubscription {
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh.trim().to_string(),
        auth: body.keys.auth.trim().to_string(),
        user_agent: user_agent.map(|u| u.chars().take(USER_AGENT_MAX_CHARS).collect()),
    };
    let saved = state
        .db
        .write(move |c| push_subscriptions::upsert(c, &new, MAX_SUBSCRIPTIONS))
        .await
        .map_err(|e: DbError| reject(e))?;
    match saved {
        Some((row, true)) => Ok(reply_json(StatusCode::CREATED, &row)),
        Some((row, false)) => Ok(ok_json(&row)),
        None => Err(reject(ApiError::conflict(
            "too_many_subscriptions",
            format!(
                "{MAX_SUBSCRIPTIONS} browsers are subscribed already; unsubscribe one (DELETE /api/push/subscriptions)"
            ),
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsubscribe {
    endpoint: String,
}

async fn unsubscribe(state: AppState, body: Unsubscribe) -> Result<Response, Rejection> {
    let endpoint = body.endpoint;
    let removed = state
        .db
        .write(move |c| push_subscriptions::delete_endpoint(c, &endpoint))
        .await
        .map_err(|e: DbError| reject(e))?;
    if !removed {
        return Err(reject(
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no push subscription with this endpoint",
            )
            .with_field("endpoint"),
        ));
    }
    let mut resp = Response::new(Vec::<u8>::new().into());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

#[derive(Serialize)]
struct TestQueued {
    subscriptions: usize,
    webhook: bool,
}

/// Sends a test notification to every subscription and the webhook: "does my phone get these?"
async fn test(state: AppState) -> Result<Response, Rejection> {
    let subscriptions = state
        .db
        .read(|c| push_subscriptions::list(c))
        .await
        .map_err(|e: DbError| reject(e))?
        .len();
    state.push.notify(Notification::test());
    Ok(reply_json(
        StatusCode::ACCEPTED,
        &TestQueued {
            subscriptions,
            webhook: state.config.notifications.webhook_url.is_some(),
        },
    ))
}
