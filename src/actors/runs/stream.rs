//! A headless run's stdout, parsed into stored events and the run's result, in the format its
//! agent kind prints ([`OutputFormat`]): Claude Code's `--output-format stream-json`, `codex exec
//! --json`, Gemini CLI's `--output-format stream-json`, or plain text.
//!
//! One line, one event. A JSON object keeps its own `type` as the event kind (`system`,
//! `assistant`, `result`, `thread.started`, …); anything else — a partial line, a log line,
//! bytes that are not UTF-8, every line of a plain-text agent — becomes a `raw` event holding
//! the (lossy, bounded) text. Parsing never fails. What ends a run's output (Claude's `result`,
//! Codex's `turn.completed`/`turn.failed`, Gemini's `result`) yields its outcome
//! ([`RunResult`]); a plain-text agent's result is the end of its output.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::agent_cli::OutputFormat;

/// Text kept of a non-JSON line; more is cut (the line is noise, not data).
const RAW_LINE_MAX_CHARS: usize = 4096;
/// An event kind is a short identifier; anything longer or stranger is stored as `other`.
const KIND_MAX_CHARS: usize = 32;

/// What the agent's `result` event said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
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

/// The agent's last words kept as a plain-text run's result, in characters.
const TEXT_RESULT_MAX_CHARS: usize = 4096;

/// Reads one run's output in its kind's format, remembering across lines what the format
/// spreads over several (Codex's last message, Gemini's streamed answer, a text agent's tail).
/// Serialised into a reload's handover record: the parser's position goes on in the next image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputReader {
    format: OutputFormat,
    session_id: Option<String>,
    /// The agent's answer so far: Codex's last `agent_message`, Gemini's assistant deltas.
    answer: String,
    /// A plain-text agent's last lines, at most [`TEXT_RESULT_MAX_CHARS`] in all.
    tail: VecDeque<String>,
    tail_chars: usize,
    /// The last `error` event's message (Codex prints one before failing).
    error: Option<String>,
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

impl OutputReader {
    pub fn new(format: OutputFormat) -> Self {
        OutputReader {
            format,
            session_id: None,
            answer: String::new(),
            tail: VecDeque::new(),
            tail_chars: 0,
            error: None,
        }
    }

    /// One line of output (without its newline): its event, if it is not empty.
    pub fn line(&mut self, line: &[u8]) -> Option<Parsed> {
        match self.format {
            OutputFormat::ClaudeStreamJson => parse_line(line),
            OutputFormat::Text => {
                let parsed = parse_text(line)?;
                self.keep_tail(parsed.data["line"].as_str().unwrap_or_default());
                Some(parsed)
            }
            OutputFormat::CodexJson => {
                let mut parsed = parse_text_or_json(line)?;
                parsed.result = self.codex(&parsed.kind, &parsed.data);
                Some(parsed)
            }
            OutputFormat::GeminiStreamJson => {
                let mut parsed = parse_text_or_json(line)?;
                parsed.result = self.gemini(&parsed.kind, &parsed.data);
                Some(parsed)
            }
        }
    }

    /// What a plain-text agent said last, once its output ended (other formats carry their
    /// result in an event). Success is then decided by the exit code alone.
    pub fn text_result(&self) -> Option<RunResult> {
        (self.format == OutputFormat::Text).then(|| RunResult {
            subtype: Some("text".into()),
            text: (!self.tail.is_empty()).then(|| Vec::from(self.tail.clone()).join("\n")),
            ..RunResult::default()
        })
    }

    fn keep_tail(&mut self, text: &str) {
        self.tail_chars += text.chars().count();
        self.tail.push_back(text.to_string());
        while self.tail_chars > TEXT_RESULT_MAX_CHARS && self.tail.len() > 1 {
            if let Some(old) = self.tail.pop_front() {
                self.tail_chars -= old.chars().count();
            }
        }
    }

    fn result(
        &self,
        is_error: bool,
        subtype: &str,
        text: Option<String>,
        usage: Option<&Value>,
    ) -> RunResult {
        RunResult {
            subtype: Some(subtype.into()),
            is_error,
            text,
            cost_usd: None,
            usage: usage.filter(|u| u.is_object()).cloned(),
            session_id: self.session_id.clone(),
        }
    }

    /// `codex exec --json`: `thread.started` names the conversation, `item.completed` of an
    /// `agent_message` is the answer so far, `turn.completed` / `turn.failed` end the run.
    fn codex(&mut self, kind: &str, data: &Value) -> Option<RunResult> {
        match kind {
            "thread.started" => self.session_id = str_of(data, "thread_id"),
            "item.completed" if data["item"]["type"] == "agent_message" => {
                self.answer = str_of(&data["item"], "text").unwrap_or_default();
            }
            "error" => self.error = str_of(data, "message"),
            "turn.completed" => {
                let answer = (!self.answer.is_empty()).then(|| self.answer.clone());
                return Some(self.result(false, "success", answer, data.get("usage")));
            }
            "turn.failed" => {
                let said = str_of(&data["error"], "message").or(self.error.clone());
                return Some(self.result(true, "error", said, data.get("usage")));
            }
            _ => {}
        }
        None
    }

    /// Gemini CLI's stream-json: `init` names the session, assistant `message` deltas are the
    /// answer, `result` (`status` success or error) ends the run.
    fn gemini(&mut self, kind: &str, data: &Value) -> Option<RunResult> {
        match kind {
            "init" => self.session_id = str_of(data, "session_id"),
            "message" if data["role"] == "assistant" => {
                let text = data["content"].as_str().unwrap_or_default();
                if data["delta"].as_bool() == Some(true) {
                    self.answer.push_str(text);
                } else {
                    self.answer = text.to_string();
                }
            }
            "result" => {
                let is_error = data["status"].as_str() != Some("success");
                let text = match str_of(&data["error"], "message") {
                    Some(message) if is_error => Some(message),
                    _ => (!self.answer.is_empty()).then(|| self.answer.clone()),
                };
                let subtype = data["status"].as_str().unwrap_or("error").to_string();
                return Some(self.result(is_error, &subtype, text, data.get("stats")));
            }
            _ => {}
        }
        None
    }
}

/// A line of a plain-text agent: always `raw`, even when it looks like JSON.
fn parse_text(line: &[u8]) -> Option<Parsed> {
    let trimmed = line.trim_ascii_end();
    (!trimmed.trim_ascii().is_empty()).then(|| raw(trimmed))
}

/// A JSON-lines line: an object keeps its `type` as kind, anything else is `raw`.
fn parse_text_or_json(line: &[u8]) -> Option<Parsed> {
    let mut parsed = parse_line(line)?;
    parsed.result = None;
    Some(parsed)
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

    fn read_all(format: OutputFormat, lines: &[&str]) -> (Vec<Parsed>, Option<RunResult>) {
        let mut reader = OutputReader::new(format);
        let parsed: Vec<Parsed> = lines
            .iter()
            .filter_map(|l| reader.line(l.as_bytes()))
            .collect();
        let result = parsed
            .iter()
            .rev()
            .find_map(|p| p.result.clone())
            .or(reader.text_result());
        (parsed, result)
    }

    #[test]
    fn codex_events_keep_their_names_and_the_turn_gives_the_result() {
        let (parsed, result) = read_all(
            OutputFormat::CodexJson,
            &[
                r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}"#,
                r#"{"type":"turn.started"}"#,
                r#"{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}"#,
                r#"{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"All done."}}"#,
                r#"{"type":"turn.completed","usage":{"input_tokens":10,"cached_input_tokens":0,"output_tokens":3}}"#,
            ],
        );
        assert_eq!(parsed[0].kind, "thread.started");
        let r = result.unwrap();
        assert!(!r.is_error);
        assert_eq!(r.text.as_deref(), Some("All done."));
        assert_eq!(r.usage.unwrap()["output_tokens"], 3);
        assert_eq!(
            r.session_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
    }

    #[test]
    fn a_failed_codex_turn_is_an_error_with_its_message() {
        let (_, result) = read_all(
            OutputFormat::CodexJson,
            &[
                r#"{"type":"error","message":"stream disconnected"}"#,
                r#"{"type":"turn.failed","error":{"message":"401 Unauthorized"}}"#,
            ],
        );
        let r = result.unwrap();
        assert!(r.is_error);
        assert_eq!(r.text.as_deref(), Some("401 Unauthorized"));
    }

    #[test]
    fn gemini_deltas_make_the_answer_and_result_status_decides() {
        let (_, result) = read_all(
            OutputFormat::GeminiStreamJson,
            &[
                r#"{"type":"init","session_id":"s-1","model":"gemini-2.5-pro"}"#,
                r#"{"type":"message","role":"user","content":"hi"}"#,
                r#"{"type":"message","role":"assistant","content":"Hel","delta":true}"#,
                r#"{"type":"message","role":"assistant","content":"lo","delta":true}"#,
                r#"{"type":"result","status":"success","stats":{"total_tokens":5}}"#,
            ],
        );
        let r = result.unwrap();
        assert_eq!((r.is_error, r.text.as_deref()), (false, Some("Hello")));
        assert_eq!(r.session_id.as_deref(), Some("s-1"));
        let (_, result) = read_all(
            OutputFormat::GeminiStreamJson,
            &[
                r#"{"type":"result","status":"error","error":{"type":"auth","message":"Please set an Auth method"}}"#,
            ],
        );
        let r = result.unwrap();
        assert!(r.is_error);
        assert_eq!(r.text.as_deref(), Some("Please set an Auth method"));
    }

    #[test]
    fn plain_text_is_raw_lines_and_its_tail_is_the_result() {
        let (parsed, result) = read_all(
            OutputFormat::Text,
            &["first", r#"{"type":"result"}"#, "", "last"],
        );
        assert!(parsed.iter().all(|p| p.kind == "raw" && p.result.is_none()));
        assert_eq!(parsed.len(), 3);
        assert_eq!(
            result.unwrap().text.as_deref(),
            Some("first\n{\"type\":\"result\"}\nlast")
        );
        let mut reader = OutputReader::new(OutputFormat::Text);
        for _ in 0..100 {
            reader.line(&[b'x'; 100]);
        }
        let text = reader.text_result().unwrap().text.unwrap();
        assert!(text.len() <= TEXT_RESULT_MAX_CHARS && text.len() > 3000);
    }
}
