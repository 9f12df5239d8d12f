//! The WebSocket protocol's words in one place, as ttyd keeps them in one header: the close
//! codes every socket uses, and the JSON control messages, typed (serde enums) and serialised
//! here. The wire format is DESIGN "Terminal WebSocket protocol"; `docs/terminals.md` and
//! `docs/api.md` describe it for clients.

use serde::{Deserialize, Serialize};

/// Normal end: the session or run finished.
pub const CLOSE_NORMAL: u16 = 1000;
/// The server is shutting down (RFC 6455 "going away"); reconnect to the next run.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// The client broke the WebSocket protocol: an unmasked frame, RSV bits, a bad opcode.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// A text message that is not valid UTF-8 (RFC 6455 "invalid frame payload data").
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// A message or frame over the cap (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The session's actor went away under the viewer (RFC 6455 "internal error").
pub const CLOSE_SESSION_GONE: u16 = 1011;
/// The event bus restarted (RFC 6455 "service restart"); reconnect.
pub const CLOSE_SERVICE_RESTART: u16 = 1012;
/// The viewer stopped reading altogether (its socket took nothing for a minute).
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// No such session or run.
pub const CLOSE_NOT_FOUND: u16 = 4404;
/// The session has `max_viewers` viewers already.
pub const CLOSE_TOO_MANY_VIEWERS: u16 = 4429;

/// JSON text frames the server sends, `{"type": …, …}`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMsg<'a, T: Serialize = ()> {
    /// First frame of a terminal viewer: the session and the replay range that follows.
    Attached {
        session: &'a T,
        /// This viewer's id (what `resize.by` and `size_by` name).
        viewer: u64,
        /// The viewer whose size the session has (the last read-write one to type or resize),
        /// `null` when none has claimed it or the one that did has gone.
        size_by: Option<u64>,
        /// That viewer's device, as people say it ("Chrome on Android"), also once it has gone
        /// (that device holds the size again when it comes back); absent when none.
        #[serde(skip_serializing_if = "Option::is_none")]
        size_by_client: Option<&'a str>,
        offset: u64,
        end: u64,
        cols: u16,
        rows: u16,
        truncated: bool,
    },
    /// The session's process ended (sent once, after its output).
    Exit {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// The session's size changed (to every viewer; `by`: the viewer whose size it is now).
    Resize {
        cols: u16,
        rows: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<u64>,
        /// That viewer's device ("Chrome on Android").
        #[serde(skip_serializing_if = "Option::is_none")]
        by_client: Option<&'a str>,
    },
    /// Output from `offset` on follows again from the scrollback (the viewer fell behind).
    Resync {
        offset: u64,
    },
    /// The next binary frame is the screen (`cols` × `rows`) as of output offset `offset`:
    /// written to a reset terminal it reproduces screen, cursor, modes and recent scrollback;
    /// output from `offset` on follows.
    Snapshot {
        offset: u64,
        cols: u16,
        rows: u16,
    },
    Pong,
    /// A client frame was refused; the socket stays open.
    Error {
        code: &'a str,
        message: &'a str,
    },
    /// `/api/events`: this subscriber missed `missed` events.
    Lagged {
        missed: u64,
    },
}

impl<T: Serialize> ServerMsg<'_, T> {
    pub fn to_text(&self) -> String {
        // Serialising plain fields and a `Serialize` payload into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// JSON text frames of a run's event stream (WS `/api/executions/{id}/events`): each agent event
/// (replayed from the database, then live), then `end` before the socket closes.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RunFrame<'a, E: Serialize + ?Sized> {
    /// One agent event: its stored row (`seq`, `kind`, `data`, …).
    Event { data: &'a E },
    /// The run ended: its status, and its row as `GET /api/executions/{id}` shows it.
    End {
        status: &'a serde_json::Value,
        execution: &'a serde_json::Value,
    },
}

impl<E: Serialize + ?Sized> RunFrame<'_, E> {
    pub fn to_text(&self) -> String {
        // Plain fields and a `Serialize` payload: serialising into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `ServerMsg` without a payload type (every message but `attached`).
pub type Control<'a> = ServerMsg<'a, ()>;

/// JSON text frames a terminal viewer sends (and the command-line client writes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMsg {
    /// `take: false` only tells the viewer's own size (used when it types, or when no viewer
    /// holds the size); `take` (the default) makes the session this size now.
    Resize {
        cols: i64,
        rows: i64,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        take: bool,
    },
    Ping,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl ClientMsg {
    pub fn to_text(&self) -> String {
        // Two integers or a bare tag: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_keep_their_wire_shape() {
        assert_eq!(
            Control::Exit {
                code: Some(3),
                signal: None
            }
            .to_text(),
            r#"{"type":"exit","code":3,"signal":null}"#
        );
        assert_eq!(Control::Pong.to_text(), r#"{"type":"pong"}"#);
        assert_eq!(
            Control::Lagged { missed: 7 }.to_text(),
            r#"{"type":"lagged","missed":7}"#
        );
        let session = serde_json::json!({"id": "x"});
        let hello = ServerMsg::Attached {
            session: &session,
            viewer: 2,
            size_by: None,
            size_by_client: None,
            offset: 0,
            end: 5,
            cols: 80,
            rows: 24,
            truncated: false,
        };
        assert_eq!(
            hello.to_text(),
            r#"{"type":"attached","session":{"id":"x"},"viewer":2,"size_by":null,"offset":0,"end":5,"cols":80,"rows":24,"truncated":false}"#
        );
        let ping: ClientMsg = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert!(matches!(ping, ClientMsg::Ping));
    }
}
