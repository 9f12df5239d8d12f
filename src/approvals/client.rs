//! The asking side, run by the agent: `claude-manager hook EVENT` (a Claude Code hook command)
//! and `claude-manager mcp` (a stdio MCP server offering the permission prompt tool of headless
//! runs). Both find the server through `CM_HOOK_SOCKET` and prove who they are with
//! `CM_HOOK_TOKEN`, which the server put in the agent's environment.
//!
//! Plain blocking code: each is a short-lived process of its own. A hook never makes the agent
//! fail: without the channel (not started by our server, server down for good) it prints
//! nothing and exits 0, so Claude Code carries on as it would without the hook (for a
//! permission request: its own prompt in the terminal).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::channel::{Reply, Request, LINE_MAX_BYTES};
use super::{DEFAULT_TIMEOUT_SECS, ENV_SOCKET, ENV_TIMEOUT, ENV_TOKEN};

/// The tool name our MCP server offers; Claude Code calls it `mcp__<server>__approval_prompt`.
pub const MCP_TOOL: &str = "approval_prompt";
/// The server name in the MCP config we generate.
pub const MCP_SERVER: &str = "claude_manager";
/// Between reconnection attempts while the server restarts.
const RECONNECT_EVERY: Duration = Duration::from_millis(500);

struct Channel {
    socket: String,
    token: String,
    /// How long a permission request may take in all (reconnects included).
    patience: Duration,
}

fn channel() -> Option<Channel> {
    let socket = std::env::var(ENV_SOCKET).ok()?;
    let token = std::env::var(ENV_TOKEN).ok()?;
    let secs = std::env::var(ENV_TIMEOUT)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    Some(Channel {
        socket,
        token,
        patience: Duration::from_secs(secs + 30),
    })
}

impl Channel {
    /// Sends one request and reads its reply; `None` if the server could not be reached or
    /// hung up without answering.
    fn once(&self, req: &Request) -> Option<Reply> {
        let mut stream = UnixStream::connect(&self.socket).ok()?;
        let mut line = serde_json::to_vec(req).ok()?;
        line.push(b'\n');
        stream.write_all(&line).ok()?;
        let mut reply = Vec::new();
        BufReader::new(stream.take(LINE_MAX_BYTES))
            .read_until(b'\n', &mut reply)
            .ok()?;
        serde_json::from_slice(&reply).ok()
    }

    /// A permission request: retried under the same key until answered or out of patience, so a
    /// server restart in between finds the same request again.
    fn ask(&self, event: &str, input: Value) -> Option<Reply> {
        let req = Request {
            token: self.token.clone(),
            event: event.to_string(),
            key: Some(uuid::Uuid::new_v4().to_string()),
            input,
        };
        let started = Instant::now();
        loop {
            if let Some(reply) = self.once(&req) {
                return Some(reply);
            }
            if started.elapsed() > self.patience {
                return None;
            }
            std::thread::sleep(RECONNECT_EVERY);
        }
    }
}

/// `claude-manager hook EVENT`: reads the hook's JSON from stdin, reports it, and for
/// `PermissionRequest` prints the decision in Claude Code's hook output format. Exit 0 always.
pub fn hook(event: &str) -> i32 {
    let mut input = Vec::new();
    if std::io::stdin()
        .take(LINE_MAX_BYTES)
        .read_to_end(&mut input)
        .is_err()
    {
        return 0;
    }
    let Ok(input) = serde_json::from_slice::<Value>(&input) else {
        eprintln!("claude-manager hook: stdin is not the hook's JSON; ignored");
        return 0;
    };
    let Some(ch) = channel() else { return 0 };
    if event != "PermissionRequest" {
        let req = Request {
            token: ch.token.clone(),
            event: event.to_string(),
            key: None,
            input,
        };
        let _ = ch.once(&req);
        return 0;
    }
    let Some(verdict) = ch.ask(event, input).and_then(|r| r.decision) else {
        return 0;
    };
    let mut decision = json!({ "behavior": verdict.behavior });
    if verdict.behavior == "deny" {
        decision["message"] = json!(verdict
            .message
            .unwrap_or_else(|| "denied from claude-manager".into()));
    }
    let out = json!({
        "hookSpecificOutput": { "hookEventName": "PermissionRequest", "decision": decision }
    });
    println!("{out}");
    0
}

/// `claude-manager mcp`: a stdio MCP server (JSON-RPC 2.0, one message per line) with one tool,
/// [`MCP_TOOL`], for `--permission-prompt-tool`. Tool calls run on their own threads, so
/// parallel permission prompts wait side by side.
pub fn mcp() -> i32 {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            send(&out, &rpc_error(Value::Null, -32700, "parse error"));
            continue;
        };
        let Some(id) = msg.get("id").cloned() else {
            continue; // a notification (`notifications/initialized`, …): nothing to answer
        };
        let method = msg["method"].as_str().unwrap_or_default();
        let result = match method {
            "initialize" => json!({
                "protocolVersion": msg["params"]["protocolVersion"].as_str().unwrap_or("2025-06-18"),
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "claude-manager", "version": env!("CARGO_PKG_VERSION") },
            }),
            "ping" => json!({}),
            "tools/list" => json!({ "tools": [tool_description()] }),
            "tools/call" if msg["params"]["name"] == MCP_TOOL => {
                let out = out.clone();
                let args = msg["params"]["arguments"].clone();
                std::thread::spawn(move || {
                    let result = permission(args);
                    send(&out, &json!({"jsonrpc": "2.0", "id": id, "result": result}));
                });
                continue;
            }
            "tools/call" => {
                send(&out, &rpc_error(id, -32602, "unknown tool"));
                continue;
            }
            _ => {
                send(&out, &rpc_error(id, -32601, "method not found"));
                continue;
            }
        };
        send(&out, &json!({"jsonrpc": "2.0", "id": id, "result": result}));
    }
    0
}

fn tool_description() -> Value {
    json!({
        "name": MCP_TOOL,
        "description": "Asks the claude-manager user to allow or deny a tool use.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "tool_name": { "type": "string" },
                "input": { "type": "object" },
                "tool_use_id": { "type": "string" }
            },
            "required": ["tool_name", "input"]
        }
    })
}

/// The permission prompt tool's answer: a text content holding Claude Code's JSON
/// (`{"behavior":"allow","updatedInput":…}` or `{"behavior":"deny","message":…}`).
fn permission(args: Value) -> Value {
    let original = args["input"].clone();
    let verdict = channel()
        .and_then(|ch| ch.ask("mcp_permission", args))
        .and_then(|r| r.decision);
    let answer = match verdict {
        Some(v) if v.behavior == "allow" => json!({"behavior": "allow", "updatedInput": original}),
        Some(v) => json!({
            "behavior": "deny",
            "message": v.message.unwrap_or_else(|| "denied from claude-manager".into()),
        }),
        None => json!({
            "behavior": "deny",
            "message": "claude-manager could not be reached to ask for permission",
        }),
    };
    json!({ "content": [{ "type": "text", "text": answer.to_string() }] })
}

fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn send(out: &Mutex<std::io::Stdout>, msg: &Value) {
    if let Ok(mut out) = out.lock() {
        let _ = writeln!(out, "{msg}");
        let _ = out.flush();
    }
}
