//! How an agent definition becomes the argv of its CLI: one place, for interactive sessions and
//! headless runs alike.
//!
//! Order: `command`, the flags derived from the definition (model, system prompt, permission
//! mode, allowed tools — Claude Code's spelling), the session args with `{session_id}` expanded,
//! then the definition's own `args`. A user's prompt is never part of argv: headless runs write
//! it to stdin, so a message starting with `--` stays text.

use crate::db::agents::AgentDef;

/// Replaced by the conversation id in the session-args templates.
pub const SESSION_ID_PLACEHOLDER: &str = "{session_id}";

fn definition_flags(def: &AgentDef) -> Vec<String> {
    let mut argv = Vec::new();
    if let Some(model) = &def.model {
        argv.extend(["--model".to_string(), model.clone()]);
    }
    if let Some(prompt) = &def.system_prompt {
        argv.extend(["--append-system-prompt".to_string(), prompt.clone()]);
    }
    if let Some(mode) = &def.permission_mode {
        argv.extend(["--permission-mode".to_string(), mode.clone()]);
    }
    if !def.allowed_tools.is_empty() {
        // One comma-separated value: tool patterns may contain spaces (`Bash(git log:*)`).
        argv.extend(["--allowedTools".to_string(), def.allowed_tools.join(",")]);
    }
    argv
}

fn expand(template: &[String], conversation: &str) -> Vec<String> {
    template
        .iter()
        .map(|a| a.replace(SESSION_ID_PLACEHOLDER, conversation))
        .collect()
}

/// argv of an interactive session: the first start of a conversation or its resumption.
pub fn session_argv(def: &AgentDef, conversation: &str, resume: bool) -> Vec<String> {
    let mut argv = def.command.clone();
    argv.extend(definition_flags(def));
    let template = if resume {
        &def.session_args.resume
    } else {
        &def.session_args.first
    };
    argv.extend(expand(template, conversation));
    argv.extend(def.args.iter().cloned());
    argv
}

/// argv of a headless run (Claude Code's print mode with streamed JSON events); `resume`
/// continues an earlier conversation.
pub fn run_argv(def: &AgentDef, resume: Option<&str>) -> Vec<String> {
    let mut argv = def.command.clone();
    argv.extend(
        ["-p", "--output-format", "stream-json", "--verbose"]
            .iter()
            .map(|s| s.to_string()),
    );
    argv.extend(definition_flags(def));
    if let Some(conversation) = resume {
        argv.extend(expand(&def.session_args.resume, conversation));
    }
    argv.extend(def.args.iter().cloned());
    argv
}

/// Whether the agent's CLI is Claude Code (or a stand-in named like it, as the tests' fake), so
/// that it understands `--settings` hooks and the permission prompt tool. Until agents have a
/// `kind` (the agent-kinds issue), the program's name decides: `claude`, `…/claude`,
/// `fake-claude`, `npx @anthropic-ai/claude-code`. Anything else gets none of those flags.
pub fn speaks_claude_hooks(def: &AgentDef) -> bool {
    def.command.iter().take(3).any(|a| {
        let name = a.rsplit('/').next().unwrap_or(a);
        name == "claude" || name.ends_with("-claude") || name == "claude-code"
    })
}

/// Claude Code's flags for "agents that ask" (issue 16), appended after the rest of argv:
/// `--settings` with the hooks that report attention and permission requests, and for headless
/// runs the MCP config and the permission prompt tool (`crate::approvals::setup` builds both).
pub fn claude_attention_flags(settings_json: &str, mcp: Option<(&str, &str)>) -> Vec<String> {
    let mut argv = vec!["--settings".to_string(), settings_json.to_string()];
    if let Some((config, tool)) = mcp {
        argv.extend([
            "--mcp-config".to_string(),
            config.to_string(),
            "--permission-prompt-tool".to_string(),
            tool.to_string(),
        ]);
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::agents::{RestartPolicy, RestartPolicyKind, SessionArgs};

    fn def() -> AgentDef {
        AgentDef {
            name: "a".into(),
            description: String::new(),
            command: vec!["claude".into()],
            args: vec!["--x".into()],
            model: Some("sonnet".into()),
            system_prompt: None,
            project_dir: None,
            env: Default::default(),
            permission_mode: None,
            allowed_tools: vec!["Read".into(), "Bash(git log:*)".into()],
            idle_timeout_secs: 1800,
            restart: RestartPolicy {
                policy: RestartPolicyKind::Never,
                backoff_initial_ms: 1000,
                backoff_max_ms: 60_000,
                max_restarts: 5,
                window_secs: 600,
            },
            session_args: SessionArgs {
                first: vec!["--session-id".into(), "{session_id}".into()],
                resume: vec!["--resume".into(), "{session_id}".into()],
            },
            isolation: None,
            approval_timeout_secs: 600,
            approval_rules: Default::default(),
        }
    }

    #[test]
    fn first_start_uses_session_id_and_later_starts_resume() {
        let d = def();
        assert_eq!(
            session_argv(&d, "u1", false),
            [
                "claude",
                "--model",
                "sonnet",
                "--allowedTools",
                "Read,Bash(git log:*)",
                "--session-id",
                "u1",
                "--x"
            ]
        );
        assert!(session_argv(&d, "u1", true).ends_with(&[
            "--resume".into(),
            "u1".into(),
            "--x".into()
        ]));
    }

    #[test]
    fn runs_use_print_mode_with_stream_json() {
        let argv = run_argv(&def(), None);
        assert_eq!(
            &argv[..5],
            [
                "claude",
                "-p",
                "--output-format",
                "stream-json",
                "--verbose"
            ]
        );
    }

    #[test]
    fn only_claude_code_gets_the_hook_flags() {
        let mut d = def();
        for (command, yes) in [
            (vec!["claude"], true),
            (vec!["/usr/local/bin/claude"], true),
            (vec!["/src/tests/fixtures/fake-claude"], true),
            (vec!["aider", "--no-auto-commits"], false),
            (vec!["sleep", "600"], false),
        ] {
            d.command = command.iter().map(|s| s.to_string()).collect();
            assert_eq!(speaks_claude_hooks(&d), yes, "{command:?}");
        }
    }
}
