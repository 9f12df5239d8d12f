//! `ls`, `new`, `run`, `logs`, and the dispatch of every client command.

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::api::{Api, ClientError};
use super::attach::attach;
use super::term::window_size;
use super::ClientCommand;

/// Exit code of `logs`/`run --follow` when the run did not succeed.
const EXIT_RUN_FAILED: u8 = 6;

pub async fn dispatch(cmd: ClientCommand) -> Result<u8, ClientError> {
    match cmd {
        ClientCommand::Ls { conn, json } => ls(&Api::from_connection(&conn)?, json).await,
        ClientCommand::Attach { conn, id, ro } => {
            let api = Api::from_connection(&conn)?;
            attach(&api, &id, ro).await.map(|_| 0)
        }
        ClientCommand::New {
            conn,
            agent,
            cwd,
            name,
            attach: then_attach,
            command,
        } => {
            let api = Api::from_connection(&conn)?;
            let session = match agent {
                Some(agent) => {
                    let id = agent_id(&api, &agent).await?;
                    api.post(&format!("/api/agents/{id}/session"), json!({}))
                        .await?
                }
                None => new_terminal(&api, command, cwd, name).await?,
            };
            let id = session["id"]
                .as_str()
                .ok_or_else(|| ClientError::Protocol(format!("no session id in {session}")))?
                .to_string();
            println!("{id}");
            if then_attach {
                attach(&api, &id, false).await?;
            }
            Ok(0)
        }
        ClientCommand::Run {
            conn,
            task,
            agent,
            follow,
            json,
        } => {
            let api = Api::from_connection(&conn)?;
            let mut body = json!({});
            if let Some(agent) = agent {
                body["agent_id"] = agent_id(&api, &agent).await?.into();
            }
            let exec = api.post(&format!("/api/tasks/{task}/run"), body).await?;
            let id = exec["id"]
                .as_i64()
                .ok_or_else(|| ClientError::Protocol(format!("no execution id in {exec}")))?;
            println!("{id}");
            if follow {
                return follow_run(&api, id, json).await;
            }
            Ok(0)
        }
        ClientCommand::Logs {
            conn,
            execution,
            json,
        } => logs(&Api::from_connection(&conn)?, execution, json).await,
        ClientCommand::Approve {
            conn,
            id,
            deny,
            message,
            json,
        } => {
            let api = Api::from_connection(&conn)?;
            super::approve::approve(&api, id, deny, message, json).await
        }
    }
}

async fn new_terminal(
    api: &Api,
    command: Vec<String>,
    cwd: Option<String>,
    name: Option<String>,
) -> Result<Value, ClientError> {
    let mut body = json!({});
    if !command.is_empty() {
        body["command"] = json!(command);
    }
    if let Some(cwd) = cwd {
        body["cwd"] = json!(cwd);
    }
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    if let Some((cols, rows)) = window_size() {
        body["cols"] = json!(cols);
        body["rows"] = json!(rows);
    }
    api.post("/api/terminals", body).await
}

/// The id of the agent called `name` (a number is taken as the id itself).
async fn agent_id(api: &Api, name: &str) -> Result<i64, ClientError> {
    if let Ok(id) = name.parse::<i64>() {
        return Ok(id);
    }
    let page = api.get("/api/agents?limit=500").await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .find(|a| a["name"] == name)
        .and_then(|a| a["id"].as_i64())
        .ok_or_else(|| {
            let names: Vec<&str> = items.iter().filter_map(|a| a["name"].as_str()).collect();
            ClientError::Usage(format!(
                "no agent named {name:?}; defined: {}",
                if names.is_empty() {
                    "none (define one in the web UI or with POST /api/agents)".to_string()
                } else {
                    names.join(", ")
                }
            ))
        })
}

async fn ls(api: &Api, as_json: bool) -> Result<u8, ClientError> {
    let terminals = api.get("/api/terminals").await?;
    let agents = api.get("/api/agent-sessions").await?;
    let runs = api.get("/api/executions?type=agent_run&limit=20").await?;
    let items = |v: &Value| v["items"].as_array().cloned().unwrap_or_default();
    let sessions: Vec<Value> = items(&terminals)
        .into_iter()
        .chain(items(&agents))
        .collect();
    let runs = items(&runs);
    if as_json {
        println!("{}", json!({"sessions": sessions, "runs": runs}));
        return Ok(0);
    }
    println!(
        "{:<32}  {:<13}  {:<11}  {:<9}  {:<24}  NAME",
        "ID", "KIND", "STATUS", "ATTENTION", "CREATED"
    );
    for s in &sessions {
        row(&s["id"], &s["kind"], s, &session_name(s));
    }
    for r in &runs {
        let name = match r["task_id"].as_i64() {
            Some(t) => json!(format!("task {t}")),
            None => Value::Null,
        };
        row(&r["id"], &json!("agent_run"), r, &name);
    }
    Ok(0)
}

/// A session's name, and the window title its program set when it says something else
/// (`runner — Fixing the login test`).
fn session_name(s: &Value) -> Value {
    match (s["name"].as_str(), s["title"].as_str()) {
        (Some(name), Some(title)) if !title.is_empty() && title != name => {
            json!(format!("{name} — {title}"))
        }
        (None, Some(title)) if !title.is_empty() => json!(title),
        _ => s["name"].clone(),
    }
}

fn row(id: &Value, kind: &Value, v: &Value, name: &Value) {
    let text = |x: &Value| match x {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!(
        "{:<32}  {:<13}  {:<11}  {:<9}  {:<24}  {}",
        text(id),
        text(kind),
        text(&v["status"]),
        text(&v["attention"]),
        text(&v["created_at"]),
        text(name)
    );
}

async fn logs(api: &Api, execution: i64, as_json: bool) -> Result<u8, ClientError> {
    let exec = api.get(&format!("/api/executions/{execution}")).await?;
    if exec["type"] == "agent_run" {
        return follow_run(api, execution, as_json).await;
    }
    let out = api
        .get(&format!("/api/executions/{execution}/output"))
        .await?;
    print!("{}", out["output"].as_str().unwrap_or(""));
    Ok(0)
}

/// Prints a run's events (stored, then live) until it ends; exit 0 only if it succeeded.
async fn follow_run(api: &Api, execution: i64, as_json: bool) -> Result<u8, ClientError> {
    let mut ws = api
        .websocket(&format!("/api/executions/{execution}/events?since=0"))
        .await?;
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| ClientError::Failed(format!("the event stream broke: {e}")))?;
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match v["type"].as_str() {
            Some("event") if as_json => println!("{}", v["data"]),
            Some("event") => print_event(&v["data"]),
            Some("end") => {
                let status = v["status"].as_str().unwrap_or("unknown");
                eprintln!("[run {execution} {status}]");
                return Ok(if status == "succeeded" {
                    0
                } else {
                    EXIT_RUN_FAILED
                });
            }
            _ => {}
        }
    }
    Err(ClientError::Failed(format!(
        "the event stream of run {execution} closed before the run ended; `claude-manager logs \
         {execution}` resumes"
    )))
}

/// One run event for a person: the assistant's text and tool calls, the result, raw lines.
fn print_event(event: &Value) {
    let data = &event["data"];
    match event["kind"].as_str().unwrap_or("") {
        "assistant" => {
            for part in data["message"]["content"].as_array().into_iter().flatten() {
                match part["type"].as_str() {
                    Some("text") => println!("{}", part["text"].as_str().unwrap_or("")),
                    Some("tool_use") => println!(
                        "→ {} {}",
                        part["name"].as_str().unwrap_or("?"),
                        part["input"]
                    ),
                    _ => {}
                }
            }
        }
        "result" => println!(
            "= {} (cost ${}, {} turns)",
            data["result"].as_str().unwrap_or(""),
            data["total_cost_usd"],
            data["num_turns"]
        ),
        "raw" => println!("{}", data["line"].as_str().unwrap_or("")),
        _ => {}
    }
}
