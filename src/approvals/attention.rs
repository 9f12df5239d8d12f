//! Attention: whether an agent session or run needs its user (`null`, `input`, `approval`,
//! `done`), a column of its execution, announced as `attention.changed`.

use serde::{Deserialize, Serialize};
use slog::warn;

use super::Approvals;
use crate::actors::events::{EventType, Events};
use crate::db::approvals::{self as store, TokenOwner};

/// `attention` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    Input,
    Approval,
    Done,
}

impl Attention {
    pub fn as_str(self) -> &'static str {
        match self {
            Attention::Input => "input",
            Attention::Approval => "approval",
            Attention::Done => "done",
        }
    }
}

/// The `attention.changed` event (the push notifier relies on these three fields).
#[derive(Debug, Serialize)]
pub struct AttentionChanged<'a> {
    pub session_id: Option<&'a str>,
    pub execution_id: Option<i64>,
    pub attention: Option<Attention>,
    pub agent_id: Option<i64>,
}

/// `attention.changed` for an agent session or run that just ended (see
/// `db::approvals::settle_attention`).
pub fn publish_settled(events: &Events, row: &crate::db::executions::ExecutionSummary) {
    use crate::db::executions::ExecutionType;
    if row.kind == ExecutionType::Terminal {
        return;
    }
    let attention = match row.attention.as_deref() {
        Some("done") => Some(Attention::Done),
        _ => None,
    };
    events.publish_about(
        EventType::AttentionChanged,
        Some(row.id),
        None,
        &AttentionChanged {
            session_id: row.session_id.as_deref(),
            execution_id: Some(row.id),
            attention,
            agent_id: row.agent_id,
        },
    );
}

impl Approvals {
    /// Sets an execution's attention; publishes `attention.changed` when it changed.
    pub async fn set_attention(&self, owner: &TokenOwner, attention: Option<Attention>) {
        let Some(id) = owner.execution_id else { return };
        let value = attention.map(Attention::as_str);
        match self
            .inner
            .db
            .write(move |c| store::set_attention(c, id, value))
            .await
        {
            Ok(true) => self.events().publish_about(
                EventType::AttentionChanged,
                Some(id),
                None,
                &AttentionChanged {
                    session_id: owner.session_id.as_deref(),
                    execution_id: Some(id),
                    attention,
                    agent_id: owner.agent_id,
                },
            ),
            Ok(false) => {}
            Err(e) => warn!(self.log(), "recording attention failed"; "error" => %e),
        }
    }
}
