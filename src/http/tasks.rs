//! `/api/tasks`: create, list, read, change and delete tasks.
//!
//! Handlers validate the request into a domain value, hand it to the DB actor, publish the
//! resulting `task.*` event and reply. Rules (from the issue): title 1–200 chars, description
//! ≤ 20 000, priority 1–10 (default 5), tags ≤ 32 of 1–64 chars, meta a JSON object ≤ 64 KiB,
//! status changes only along [`TaskStatus::allowed_next`].

use crate::actors::events::EventType;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{get_listing, json_body, json_bytes, ok_json, reject, reply_json, Query};
use crate::db::tasks::{self, NewTask, TaskError, TaskFilter, TaskPatch, TaskStatus};
use crate::error::ApiError;
use crate::state::AppState;

const TITLE_MAX_CHARS: usize = 200;
const DESCRIPTION_MAX_CHARS: usize = 20_000;
const TAGS_MAX: usize = 32;
const TAG_MAX_CHARS: usize = 64;
const META_MAX_BYTES: usize = 64 * 1024;
const PATH_MAX_BYTES: usize = 4096; // PATH_MAX on Linux
const DEFAULT_PRIORITY: i64 = 5;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    let with_state = super::json::with_state(state);
    let limit = state.config.body_limit_bytes;
    let base = warp::path!("api" / "tasks");
    let one = warp::path!("api" / "tasks" / i64);

    let list = base.and(get_listing(state)).and_then(list);
    let create = base
        .and(warp::post())
        .and(with_state.clone())
        .and(json_body::<CreateTask>(limit))
        .and_then(create);
    let get = one.and(warp::get()).and(with_state.clone()).and_then(get);
    let patch = one
        .and(warp::patch())
        .and(with_state.clone())
        .and(json_body::<PatchTask>(limit))
        .and_then(patch);
    let delete = one.and(warp::delete()).and(with_state).and_then(delete);
    list.or(create)
        .unify()
        .or(get)
        .unify()
        .or(patch)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound(id) => ApiError::not_found("task", id),
            TaskError::IllegalTransition { from, to, .. } => {
                let allowed: Vec<&str> = from.allowed_next().iter().map(|s| s.as_str()).collect();
                ApiError::conflict(
                    "illegal_transition",
                    format!(
                        "status cannot go from {from} to {to}; allowed from {from}: {}",
                        if allowed.is_empty() {
                            "none (final)".to_string()
                        } else {
                            allowed.join(", ")
                        }
                    ),
                )
                .with_field("status")
            }
            TaskError::Busy(id) => ApiError::conflict(
                "task_busy",
                format!("task {id} has a pending or running execution; cancel it first"),
            ),
            TaskError::UnknownAgent(id) => {
                ApiError::validation("agent_id", format!("no agent with id {id}"))
            }
            TaskError::Db(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTask {
    title: String,
    description: Option<String>,
    priority: Option<i64>,
    status: Option<TaskStatus>,
    tags: Option<Vec<String>>,
    project_path: Option<String>,
    agent_id: Option<i64>,
    meta: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTask {
    title: Option<String>,
    description: Option<String>,
    priority: Option<i64>,
    status: Option<TaskStatus>,
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    project_path: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    agent_id: Option<Option<i64>>,
    meta: Option<Value>,
}

/// Tells "absent" (`None`) from "null" (`Some(None)`) so PATCH can clear a field.
fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_title(title: &str) -> Result<String, ApiError> {
    let n = title.trim().chars().count();
    if n == 0 || n > TITLE_MAX_CHARS {
        return Err(ApiError::validation(
            "title",
            format!(
                "must be 1-{TITLE_MAX_CHARS} characters (not counting surrounding spaces), got {n}"
            ),
        ));
    }
    Ok(title.trim().to_string())
}

fn check_description(d: &str) -> Result<(), ApiError> {
    let n = d.chars().count();
    if n > DESCRIPTION_MAX_CHARS {
        return Err(ApiError::validation(
            "description",
            format!("must be at most {DESCRIPTION_MAX_CHARS} characters, got {n}"),
        ));
    }
    Ok(())
}

fn check_priority(p: i64) -> Result<(), ApiError> {
    if !(1..=10).contains(&p) {
        return Err(ApiError::validation(
            "priority",
            format!("must be 1-10, got {p}"),
        ));
    }
    Ok(())
}

fn check_tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    if tags.len() > TAGS_MAX {
        return Err(ApiError::validation(
            "tags",
            format!("at most {TAGS_MAX} tags, got {}", tags.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let t = tag.trim();
        let n = t.chars().count();
        if n == 0 || n > TAG_MAX_CHARS || t.chars().any(char::is_control) {
            return Err(ApiError::validation(
                "tags",
                format!("each tag must be 1-{TAG_MAX_CHARS} printable characters, got {tag:?}"),
            ));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

fn check_project_path(p: &str) -> Result<(), ApiError> {
    if !p.starts_with('/') || p.len() > PATH_MAX_BYTES || p.contains('\0') {
        return Err(ApiError::validation(
            "project_path",
            format!("must be an absolute path of at most {PATH_MAX_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

fn check_agent_id(id: i64) -> Result<(), ApiError> {
    if id < 1 {
        return Err(ApiError::validation(
            "agent_id",
            format!("must be a positive id, got {id}"),
        ));
    }
    Ok(())
}

fn check_meta(meta: Value) -> Result<Value, ApiError> {
    if !meta.is_object() {
        return Err(ApiError::validation("meta", "must be a JSON object"));
    }
    let size = meta.to_string().len();
    if size > META_MAX_BYTES {
        return Err(ApiError::validation(
            "meta",
            format!("must serialise to at most {META_MAX_BYTES} bytes, got {size}"),
        ));
    }
    Ok(meta)
}

impl CreateTask {
    fn validate(self) -> Result<NewTask, ApiError> {
        let title = check_title(&self.title)?;
        let description = self.description.unwrap_or_default();
        check_description(&description)?;
        let priority = self.priority.unwrap_or(DEFAULT_PRIORITY);
        check_priority(priority)?;
        let status = self.status.unwrap_or(TaskStatus::Pending);
        if !matches!(status, TaskStatus::Draft | TaskStatus::Pending) {
            return Err(ApiError::validation(
                "status",
                format!("a new task starts as draft or pending, not {status}"),
            ));
        }
        let tags = check_tags(self.tags.unwrap_or_default())?;
        if let Some(p) = &self.project_path {
            check_project_path(p)?;
        }
        if let Some(a) = self.agent_id {
            check_agent_id(a)?;
        }
        let meta = check_meta(
            self.meta
                .unwrap_or_else(|| Value::Object(Default::default())),
        )?;
        Ok(NewTask {
            title,
            description,
            priority,
            status,
            tags,
            project_path: self.project_path,
            agent_id: self.agent_id,
            meta,
        })
    }
}

impl PatchTask {
    fn validate(self) -> Result<TaskPatch, ApiError> {
        let title = self.title.as_deref().map(check_title).transpose()?;
        if let Some(d) = &self.description {
            check_description(d)?;
        }
        if let Some(p) = self.priority {
            check_priority(p)?;
        }
        let tags = self.tags.map(check_tags).transpose()?;
        if let Some(Some(p)) = &self.project_path {
            check_project_path(p)?;
        }
        if let Some(Some(a)) = self.agent_id {
            check_agent_id(a)?;
        }
        let meta = self.meta.map(check_meta).transpose()?;
        Ok(TaskPatch {
            title,
            description: self.description,
            priority: self.priority,
            status: self.status,
            tags,
            project_path: self.project_path,
            agent_id: self.agent_id,
            meta,
        })
    }
}

const STATUS_NAMES: [&str; 6] = [
    "draft",
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
];

async fn list(state: AppState, raw: String) -> Result<Response, Rejection> {
    let q = Query::parse(&raw, &["status", "tag", "q", "agent_id", "limit", "offset"])
        .map_err(reject)?;
    let (limit, offset) = q.paging().map_err(reject)?;
    let filter = TaskFilter {
        status: q
            .choice("status", &STATUS_NAMES, TaskStatus::parse)
            .map_err(reject)?,
        tag: q.str("tag").map(str::to_string),
        q: q.str("q").map(str::to_string),
        agent_id: q.int("agent_id", 1, i64::MAX).map_err(reject)?,
        limit,
        offset,
    };
    let (items, total) = state
        .db
        .read(move |c| tasks::list_json(c, &filter))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    // `{items,total,limit,offset}` around the array the query serialised in place.
    let mut body = Vec::with_capacity(items.len() + 64);
    body.extend_from_slice(b"{\"items\":");
    body.extend_from_slice(&items);
    body.extend_from_slice(
        format!(",\"total\":{total},\"limit\":{limit},\"offset\":{offset}}}").as_bytes(),
    );
    Ok(json_bytes(StatusCode::OK, body))
}

async fn create(state: AppState, body: CreateTask) -> Result<Response, Rejection> {
    let new = body.validate().map_err(reject)?;
    let task = state
        .db
        .write(move |c| tasks::insert(c, &new))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    state.events.publish(EventType::TaskCreated, &task);
    Ok(reply_json(StatusCode::CREATED, &task))
}

async fn get(id: i64, state: AppState) -> Result<Response, Rejection> {
    let task = state
        .db
        .read(move |c| tasks::get(c, id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?
        .ok_or_else(|| reject(ApiError::not_found("task", id)))?;
    Ok(ok_json(&task))
}

async fn patch(id: i64, state: AppState, body: PatchTask) -> Result<Response, Rejection> {
    let patch = body.validate().map_err(reject)?;
    let task = state
        .db
        .write(move |c| tasks::update(c, id, &patch))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    state.events.publish(EventType::TaskUpdated, &task);
    Ok(ok_json(&task))
}

async fn delete(id: i64, state: AppState) -> Result<Response, Rejection> {
    let task = state
        .db
        .write(move |c| tasks::delete(c, id))
        .await
        .map_err(|e| reject(ApiError::from(e)))?;
    state.events.publish(
        EventType::TaskDeleted,
        &serde_json::json!({ "id": task.id }),
    );
    let mut resp = Response::new(Vec::<u8>::new().into());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}
