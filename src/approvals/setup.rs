//! What an agent is given so that it can ask: Claude Code `--settings` whose hooks run
//! `claude-manager hook EVENT`, and for headless runs an MCP config whose server is
//! `claude-manager mcp` plus `--permission-prompt-tool` naming its tool.
//!
//! The secret travels only in the agent's environment (which other users cannot read), never
//! in argv (which they can, in /proc). A run's MCP config names its env explicitly — an MCP
//! server need not inherit the agent's environment — so it is a 0600 file in `<data>/run/`,
//! removed when the run ends.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::client::{MCP_SERVER, MCP_TOOL};
use super::Approvals;

/// Added to a permission hook's timeout over the approval timeout, so that the server's own
/// deadline (a denial with its reason) always comes before Claude Code gives up on the hook.
const HOOK_TIMEOUT_MARGIN_SECS: u64 = 60;

/// The extra argv and env of one agent session or run. Serialised only into a reload's handover
/// record (a run's hooks outlive the exec); its `Debug` never shows the secret.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct AgentHooks {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    token: String,
    mcp_file: Option<PathBuf>,
}

impl std::fmt::Debug for AgentHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHooks")
            .field("args", &self.args.len())
            .field("env", &"<redacted>")
            .field("mcp_file", &self.mcp_file)
            .finish_non_exhaustive()
    }
}

impl AgentHooks {
    /// Adds the flags to an agent's argv (after the rest) and the channel to its environment.
    pub fn apply(&self, args: &mut Vec<String>, env: &mut Vec<(String, String)>) {
        args.extend(self.args.iter().cloned());
        env.extend(self.env.iter().cloned());
    }
}

/// `'…'` for `sh -c`: hook commands are run by a shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The `--settings` JSON: one command hook per event we listen to.
pub fn settings(program: &str, timeout_secs: u64, permission_hook: bool) -> Value {
    let cmd = |event: &str| format!("{} hook {event}", shell_quote(program));
    let plain = |event: &str| json!([{ "hooks": [{ "type": "command", "command": cmd(event) }] }]);
    let mut hooks = json!({
        "Notification": plain("Notification"),
        "Stop": plain("Stop"),
        "UserPromptSubmit": plain("UserPromptSubmit"),
        "SessionStart": plain("SessionStart"),
    });
    if permission_hook {
        hooks["PermissionRequest"] = json!([{
            "matcher": "*",
            "hooks": [{
                "type": "command",
                "command": cmd("PermissionRequest"),
                "timeout": timeout_secs + HOOK_TIMEOUT_MARGIN_SECS,
            }],
        }]);
    }
    json!({ "hooks": hooks })
}

/// The `--mcp-config` JSON of a run: our stdio MCP server, with the channel in its env.
pub fn mcp_config(program: &str, env: &[(String, String)]) -> Value {
    let env: serde_json::Map<String, Value> = env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({ "mcpServers": { MCP_SERVER: {
        "type": "stdio", "command": program, "args": ["mcp"], "env": env,
    } } })
}

impl Approvals {
    /// Issues a secret and builds the flags; `None` (the agent runs without them) only if the
    /// OS gave no randomness or the MCP file could not be written.
    pub async fn prepare(
        &self,
        agent_id: i64,
        timeout_secs: u64,
        headless: bool,
    ) -> Option<AgentHooks> {
        let access = self.issue(agent_id, timeout_secs)?;
        let program = self.program().display().to_string();
        let settings = settings(&program, timeout_secs, !headless).to_string();
        let mut env = access.env;
        let mut mcp_file = None;
        let mut mcp = None;
        if headless {
            let file = self
                .socket()
                .with_file_name(format!("mcp-{}.json", uuid::Uuid::new_v4().simple()));
            let body = mcp_config(&program, &env).to_string();
            let path = file.clone();
            let written = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .and_then(|mut f| std::io::Write::write_all(&mut f, body.as_bytes()))
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                return None;
            }
            mcp = Some(file.display().to_string());
            mcp_file = Some(file);
            // Claude Code's own limit on one MCP tool call, in ms: longer than our deadline.
            env.push((
                "MCP_TOOL_TIMEOUT".into(),
                ((timeout_secs + HOOK_TIMEOUT_MARGIN_SECS) * 1000).to_string(),
            ));
        }
        let tool = format!("mcp__{MCP_SERVER}__{MCP_TOOL}");
        Some(AgentHooks {
            args: crate::agent_cli::claude_attention_flags(
                &settings,
                mcp.as_deref().map(|m| (m, tool.as_str())),
            ),
            env,
            token: access.token,
            mcp_file,
        })
    }

    /// [`Approvals::prepare`] for a headless run whose agent takes hooks (`timeout_secs` set).
    pub async fn prepare_run(
        &self,
        agent_id: i64,
        timeout_secs: Option<u64>,
    ) -> Option<AgentHooks> {
        self.prepare(agent_id, timeout_secs?, true).await
    }

    /// The session or run exists: its secret now names it.
    pub async fn started(&self, hooks: &AgentHooks, execution_id: i64, session_id: Option<String>) {
        self.bind(&hooks.token, execution_id, session_id).await;
    }

    /// The run ended (or never started): its secret and MCP file go.
    pub async fn ended(&self, hooks: AgentHooks, execution_id: Option<i64>) {
        self.revoke(&hooks.token, execution_id).await;
        if let Some(file) = hooks.mcp_file {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(file)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_quote_the_program_and_wait_longer_than_the_deadline() {
        let s = settings("/opt/it's here/claude-manager", 600, true);
        assert_eq!(
            s["hooks"]["Stop"][0]["hooks"][0]["command"],
            r"'/opt/it'\''s here/claude-manager' hook Stop"
        );
        assert_eq!(
            s["hooks"]["PermissionRequest"][0]["hooks"][0]["timeout"],
            660
        );
        assert!(settings("x", 1, false)["hooks"]
            .get("PermissionRequest")
            .is_none());
    }
}
