//! `claude-manager approve`: the pending permission requests of agents, and answering one
//! (docs/approvals.md). Without an id it lists what waits; with one it allows (or `--deny`s).

use serde_json::{json, Value};

use super::api::{Api, ClientError};

/// A Bash command or a file path: what the request is about, on one line.
fn what(a: &Value) -> String {
    let input = &a["tool_input"];
    let subject = input["command"]
        .as_str()
        .or_else(|| input["file_path"].as_str())
        .or_else(|| input["url"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| input.to_string());
    subject.replace('\n', " ")
}

pub async fn approve(
    api: &Api,
    id: Option<i64>,
    deny: bool,
    message: Option<String>,
    as_json: bool,
) -> Result<u8, ClientError> {
    let Some(id) = id else {
        let list = api.get("/api/approvals?status=pending&limit=100").await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if as_json {
            println!("{}", Value::Array(items));
            return Ok(0);
        }
        println!("{:<6}  {:<12}  {:<24}  ASKS", "ID", "TOOL", "ASKED");
        for a in &items {
            println!(
                "{:<6}  {:<12}  {:<24}  {}",
                a["id"],
                a["tool_name"].as_str().unwrap_or("-"),
                a["created_at"].as_str().unwrap_or("-"),
                what(a)
            );
        }
        return Ok(0);
    };
    let mut body = json!({ "decision": if deny { "deny" } else { "allow" } });
    if let Some(m) = message {
        body["message"] = json!(m);
    }
    let row = api.post(&format!("/api/approvals/{id}"), body).await?;
    if as_json {
        println!("{row}");
    } else {
        println!(
            "approval {id}: {} ({} {})",
            row["status"].as_str().unwrap_or("?"),
            row["tool_name"].as_str().unwrap_or("?"),
            what(&row)
        );
    }
    Ok(0)
}
