//! A task's status follows its latest run.

use crate::actors::db::Db;
use crate::actors::events::{EventType, Events};
use crate::db::tasks::{self, TaskPatch, TaskStatus};

/// Moves a task along its state machine toward `to`, via `pending` when it must, so that its
/// status is that of its latest run: a run started on a succeeded task re-opens it first. A task
/// that cannot get there (deleted, or cancelled by its user while the run ended) is left as it is.
pub async fn move_task(db: &Db, events: &Events, task_id: i64, to: TaskStatus) {
    let moved = db
        .write(move |c| {
            let Some(task) = tasks::get(c, task_id)? else {
                return Ok(None);
            };
            if task.status == to {
                return Ok(None);
            }
            if task.status == TaskStatus::Succeeded && to == TaskStatus::Running {
                tasks::reopen(c, task_id)?;
            }
            if !task.status.allowed_next().contains(&to)
                && task.status.allowed_next().contains(&TaskStatus::Pending)
                && task.status != TaskStatus::Pending
            {
                let via = TaskPatch {
                    status: Some(TaskStatus::Pending),
                    ..TaskPatch::default()
                };
                let _ = tasks::update(c, task_id, &via);
            }
            let patch = TaskPatch {
                status: Some(to),
                ..TaskPatch::default()
            };
            Ok::<_, tasks::TaskError>(tasks::update(c, task_id, &patch).ok())
        })
        .await;
    if let Ok(Some(task)) = moved {
        events.publish(EventType::TaskUpdated, &task);
    }
}
