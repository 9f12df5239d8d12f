//! What is worth telling someone who stepped away from the desk, decided in one place
//! ([`notification_for`]) from the events every other part of the server already publishes:
//! an agent waits for input or for a permission (`attention.changed` to `input`/`approval`), or a
//! headless run ended (`execution.finished`, succeeded or failed). Nothing else notifies: a
//! terminal that exits, a run the user cancelled, an agent that became `done` (its run's end says
//! it) are all things the user did or will see anyway.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actors::events::EventType;

/// Why a notification was sent; its `kind` in the payload and webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Input,
    Approval,
    RunFinished,
    RunFailed,
    /// `POST /api/push/test`: "does my phone get these?"
    Test,
}

/// One notification as the browser's service worker, the webhook and ntfy receive it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    /// The UI page to open, as a path (`/executions/12`); the webhook makes it absolute when
    /// `public_url` is set.
    pub url: String,
    /// Notifications with the same tag replace each other on the phone (one per session/run).
    pub tag: String,
    pub execution_id: Option<i64>,
    pub session_id: Option<String>,
}

impl Notification {
    /// Needs the user now (RFC 8030 `Urgency: high` wakes a sleeping phone); a finished run can
    /// wait for the phone's next wake-up.
    pub fn urgent(&self) -> bool {
        matches!(
            self.kind,
            NotificationKind::Input | NotificationKind::Approval
        )
    }

    pub fn test() -> Notification {
        Notification {
            kind: NotificationKind::Test,
            title: "Notifications work".into(),
            body: "This device will tell you when an agent needs you or a run ends.".into(),
            url: "/".into(),
            tag: "test".into(),
            execution_id: None,
            session_id: None,
        }
    }
}

/// The longest body text, in characters: a phone shows two or three lines.
const BODY_MAX_CHARS: usize = 180;

/// The one decision: should this event reach the user's phone, and saying what?
pub fn notification_for(kind: EventType, data: &str) -> Option<Notification> {
    match kind {
        EventType::AttentionChanged => attention(serde_json::from_str(data).ok()?),
        EventType::ExecutionFinished => run_end(serde_json::from_str(data).ok()?),
        _ => None,
    }
}

#[derive(Deserialize)]
struct AttentionData {
    session_id: Option<Value>,
    execution_id: Option<i64>,
    attention: Option<String>,
}

fn attention(d: AttentionData) -> Option<Notification> {
    let kind = match d.attention.as_deref()? {
        "input" => NotificationKind::Input,
        "approval" => NotificationKind::Approval,
        _ => return None,
    };
    // An interactive session is answered on its terminal page; a headless run on its page.
    let session_id = d.session_id.and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let (what, url, tag) = match (&session_id, d.execution_id) {
        (Some(s), _) => (
            format!("Agent session {s}"),
            format!("/agent-sessions/{s}"),
            format!("session-{s}"),
        ),
        (None, Some(id)) => (
            format!("Run #{id}"),
            format!("/executions/{id}"),
            format!("execution-{id}"),
        ),
        (None, None) => return None,
    };
    let (title, body) = match kind {
        NotificationKind::Input => (
            "An agent needs you".to_string(),
            format!("{what} is waiting for your answer."),
        ),
        _ => (
            "An agent asks for permission".to_string(),
            format!("{what} wants to use a tool: allow or deny it."),
        ),
    };
    Some(Notification {
        kind,
        title,
        body,
        url,
        tag,
        execution_id: d.execution_id,
        session_id,
    })
}

#[derive(Deserialize)]
struct RunEnd {
    id: i64,
    #[serde(rename = "type")]
    kind: String,
    status: String,
    reason: Option<String>,
    exit_code: Option<i64>,
    result: Option<String>,
    task_title: Option<String>,
}

fn run_end(r: RunEnd) -> Option<Notification> {
    if r.kind != "agent_run" {
        return None;
    }
    let (kind, verb) = match r.status.as_str() {
        "succeeded" => (NotificationKind::RunFinished, "finished"),
        "failed" => (NotificationKind::RunFailed, "failed"),
        "interrupted" => (NotificationKind::RunFailed, "was interrupted"),
        // Cancelled: the user did it. Anything else is not an end.
        _ => return None,
    };
    let title = match &r.task_title {
        Some(t) => format!("Run {verb}: {}", clip(t, 60)),
        None => format!("Run #{} {verb}", r.id),
    };
    let detail = match kind {
        NotificationKind::RunFinished => r
            .result
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| "The agent finished its task.".into()),
        _ => match (&r.reason, r.exit_code) {
            (Some(reason), _) => format!("Reason: {reason}."),
            (None, Some(code)) => format!("The agent exited with code {code}."),
            (None, None) => "The agent stopped before finishing.".into(),
        },
    };
    Some(Notification {
        kind,
        title,
        body: clip(&detail, BODY_MAX_CHARS),
        url: format!("/executions/{}", r.id),
        tag: format!("execution-{}", r.id),
        execution_id: Some(r.id),
        session_id: None,
    })
}

/// At most `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(status: &str, kind: &str) -> String {
        json!({"id": 7, "type": kind, "status": status, "reason": null, "exit_code": 1,
               "result": null, "task_title": "Fix the build"})
        .to_string()
    }

    #[test]
    fn runs_that_end_notify_and_everything_else_does_not() {
        let ok = notification_for(EventType::ExecutionFinished, &run("succeeded", "agent_run"));
        assert_eq!(ok.map(|n| n.kind), Some(NotificationKind::RunFinished));
        let failed =
            notification_for(EventType::ExecutionFinished, &run("failed", "agent_run")).unwrap();
        assert_eq!(failed.kind, NotificationKind::RunFailed);
        assert_eq!(failed.url, "/executions/7");
        assert_eq!(failed.body, "The agent exited with code 1.");
        for quiet in [run("cancelled", "agent_run"), run("failed", "terminal")] {
            assert_eq!(notification_for(EventType::ExecutionFinished, &quiet), None);
        }
        assert_eq!(notification_for(EventType::TaskCreated, "{}"), None);
    }

    #[test]
    fn attention_notifies_for_input_and_approval_only() {
        let ev = |a: Value| {
            let d = json!({"session_id": "ab12", "execution_id": 3, "attention": a});
            notification_for(EventType::AttentionChanged, &d.to_string())
        };
        let input = ev(json!("input")).unwrap();
        assert_eq!(input.url, "/agent-sessions/ab12");
        assert!(input.urgent());
        assert_eq!(
            ev(json!("approval")).unwrap().kind,
            NotificationKind::Approval
        );
        assert_eq!(ev(json!("done")), None);
        assert_eq!(ev(Value::Null), None);
        let run = json!({"session_id": null, "execution_id": 9, "attention": "approval"});
        let n = notification_for(EventType::AttentionChanged, &run.to_string()).unwrap();
        assert_eq!(n.url, "/executions/9");
    }

    #[test]
    fn long_text_is_clipped_to_one_line() {
        let long = "word ".repeat(100);
        let c = clip(&long, 20);
        assert_eq!(c.chars().count(), 20);
        assert!(c.ends_with('…'));
    }
}
