//! Claude Code's `--output-format stream-json` lines, parsed into stored events.
//!
//! One line, one event. A JSON object keeps its own `type` as the event kind (`system`,
//! `assistant`, `user`, `result`, …); anything else — a partial line, a log line, bytes that are
//! not UTF-8 — becomes a `raw` event holding the (lossy, bounded) text. Parsing never fails.
//! The `result` event also yields the run's outcome ([`RunResult`]).

use serde_json::{json, Value};

/// Text kept of a non-JSON line; more is cut (the line is noise, not data).
const RAW_LINE_MAX_CHARS: usize = 4096;
/// An event kind is a short identifier; anything longer or stranger is stored as `other`.
const KIND_MAX_CHARS: usize = 32;

/// What the agent's `result` event said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunResult {
    pub subtype: Option<String>,
    pub is_error: bool,
    pub text: Option<String>,
    pub cost_usd: Option<f64>,
    pub usage: Option<Value>,
    pub session_id: Option<String>,
}

/// One parsed line: the event kind, its JSON, and the outcome when it is the `result`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub kind: String,
    pub data: Value,
    pub result: Option<RunResult>,
}

fn raw(line: &[u8]) -> Parsed {
    let text: String = String::from_utf8_lossy(line)
        .chars()
        .take(RAW_LINE_MAX_CHARS)
        .collect();
    Parsed {
        kind: "raw".into(),
        data: json!({ "line": text }),
        result: None,
    }
}

fn kind_of(v: &Value) -> String {
    match v.get("type").and_then(Value::as_str) {
        Some(t)
            if !t.is_empty()
                && t.len() <= KIND_MAX_CHARS
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            t.to_string()
        }
        _ => "other".into(),
    }
}

/// Parses one line of output (without its newline). Empty lines yield nothing.
pub fn parse_line(line: &[u8]) -> Option<Parsed> {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return None;
    }
    let Ok(data) = serde_json::from_slice::<Value>(trimmed) else {
        return Some(raw(trimmed));
    };
    if !data.is_object() {
        return Some(raw(trimmed));
    }
    let kind = kind_of(&data);
    let result = (kind == "result").then(|| RunResult {
        subtype: data["subtype"].as_str().map(str::to_string),
        is_error: data["is_error"].as_bool().unwrap_or(false),
        text: data["result"].as_str().map(str::to_string),
        cost_usd: data["total_cost_usd"].as_f64(),
        usage: data.get("usage").filter(|u| u.is_object()).cloned(),
        session_id: data["session_id"].as_str().map(str::to_string),
    });
    Some(Parsed { kind, data, result })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_keep_their_type_and_the_result_is_read() {
        let p = parse_line(br#"{"type":"system","subtype":"init","session_id":"s"}"#).unwrap();
        assert_eq!(p.kind, "system");
        assert!(p.result.is_none());
        let p = parse_line(
            br#"{"type":"result","subtype":"success","is_error":false,"result":"ok",
                 "total_cost_usd":0.5,"usage":{"input_tokens":1},"session_id":"s"}"#,
        )
        .unwrap();
        let r = p.result.unwrap();
        assert_eq!(r.text.as_deref(), Some("ok"));
        assert_eq!(r.cost_usd, Some(0.5));
        assert_eq!(r.usage.unwrap()["input_tokens"], 1);
        assert!(!r.is_error);
    }

    #[test]
    fn anything_else_is_raw_and_never_fails() {
        assert_eq!(parse_line(b"not json").unwrap().kind, "raw");
        assert_eq!(parse_line(b"{\"half\": ").unwrap().kind, "raw");
        assert_eq!(parse_line(b"[1,2]").unwrap().kind, "raw");
        assert_eq!(parse_line(b"\xff\x00 bytes").unwrap().kind, "raw");
        assert_eq!(parse_line(br#"{"type":"a b"}"#).unwrap().kind, "other");
        assert!(parse_line(b"   ").is_none());
        let long = vec![b'x'; 10_000];
        let p = parse_line(&long).unwrap();
        assert_eq!(p.data["line"].as_str().unwrap().len(), RAW_LINE_MAX_CHARS);
    }
}
