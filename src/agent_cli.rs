//! How an agent definition becomes the argv of its CLI: one place, for interactive sessions and
//! headless runs alike, spelled per agent kind ([`kinds`]).
//!
//! Order: `command`, in a headless run the kind's headless flags (Claude Code's print mode with
//! stream-json, `codex exec --json`, …), the flags derived from the definition (model, system
//! prompt, permission mode, allowed tools — each in the kind's own spelling), the session args
//! with `{session_id}` expanded, then the definition's own `args`. A `command` agent gets no
//! flag its user did not write. A user's prompt is never part of argv: headless runs write it
//! to stdin, so a message starting with `--` stays text.

mod kinds;

pub use kinds::{all as all_kinds, owned, spec, AgentKind, KindSpec, OutputFormat};

use crate::db::agents::AgentDef;

/// Replaced by the conversation id in the session-args templates.
pub const SESSION_ID_PLACEHOLDER: &str = "{session_id}";

/// The definition's fields in its kind's flags. A field the kind cannot express was refused
/// when the agent was saved; one read from an older record is left out here.
fn definition_flags(def: &AgentDef) -> Vec<String> {
    let kind = spec(def.kind);
    let mut argv = Vec::new();
    if let (Some(flag), Some(model)) = (kind.model_flag, &def.model) {
        argv.extend([flag.to_string(), model.clone()]);
    }
    if let (Some(flag), Some(prompt)) = (kind.system_prompt_flag, &def.system_prompt) {
        argv.extend([flag.to_string(), prompt.clone()]);
    }
    if let Some(mode) = &def.permission_mode {
        if let Some((_, flags)) = kind.permission_modes.iter().find(|(m, _)| m == mode) {
            argv.extend(owned(flags));
        }
    }
    if let (Some(flag), false) = (kind.allowed_tools_flag, def.allowed_tools.is_empty()) {
        // One comma-separated value: tool patterns may contain spaces (`Bash(git log:*)`).
        argv.extend([flag.to_string(), def.allowed_tools.join(",")]);
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

/// The flags that continue conversation `id` in a headless run, or `None` when the agent's
/// kind has no way to (the run is refused, naming `resume`).
pub fn run_resume_args(def: &AgentDef, id: &str) -> Option<Vec<String>> {
    let kind = spec(def.kind);
    let template = match kind.run_resume {
        Some(t) => owned(t),
        None if kind.resume_from_session_args => def.session_args.resume.clone(),
        None => Vec::new(),
    };
    (!template.is_empty()).then(|| expand(&template, id))
}

/// argv of a headless run (the kind's machine-readable print mode); `resume` continues an
/// earlier conversation, and must be one the kind can continue ([`run_resume_args`]).
pub fn run_argv(def: &AgentDef, resume: Option<&str>) -> Vec<String> {
    let mut argv = def.command.clone();
    argv.extend(owned(spec(def.kind).headless_args));
    argv.extend(definition_flags(def));
    if let Some(conversation) = resume {
        argv.extend(run_resume_args(def, conversation).unwrap_or_default());
    }
    argv.extend(def.args.iter().cloned());
    argv
}

/// Whether the agent's CLI is Claude Code, so that it understands `--settings` hooks and the
/// permission prompt tool: its kind says so (`claude`, the default for `claude`, `…/claude`,
/// `fake-claude`, `npx @anthropic-ai/claude-code`). Every other kind gets none of those flags.
pub fn speaks_claude_hooks(def: &AgentDef) -> bool {
    def.kind == AgentKind::Claude
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
            kind: AgentKind::Claude,
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
            memory_max_bytes: None,
            pids_max: None,
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

    /// `def()` as an agent of `kind` with that kind's default command and session args, and
    /// only the fields the kind can express.
    fn of_kind(kind: AgentKind) -> AgentDef {
        let s = spec(kind);
        let mut d = def();
        d.kind = kind;
        d.command = if s.default_command.is_empty() {
            vec!["my-agent".into()]
        } else {
            owned(s.default_command)
        };
        d.args = vec![];
        d.model = s.model_flag.map(|_| "m1".into());
        d.allowed_tools = vec![];
        d.session_args = crate::db::agents::SessionArgs {
            first: owned(s.session_first),
            resume: owned(s.session_resume),
        };
        d
    }

    #[test]
    fn each_kind_spells_its_headless_run_its_own_way() {
        let run = |k| run_argv(&of_kind(k), None);
        assert_eq!(
            run(AgentKind::Codex),
            ["codex", "exec", "--json", "--model", "m1"]
        );
        assert_eq!(
            run(AgentKind::Gemini),
            ["gemini", "--output-format", "stream-json", "--model", "m1"]
        );
        assert_eq!(
            run(AgentKind::Aider),
            [
                "aider",
                "--message-file",
                "/dev/stdin",
                "--yes-always",
                "--no-pretty",
                "--model",
                "m1"
            ]
        );
        assert_eq!(
            run(AgentKind::Opencode),
            ["opencode", "run", "--model", "m1"]
        );
        assert_eq!(run(AgentKind::Command), ["my-agent"]);
    }

    #[test]
    fn runs_resume_with_the_kinds_own_flags_or_not_at_all() {
        let resume = |k| run_resume_args(&of_kind(k), "c1");
        assert_eq!(resume(AgentKind::Claude).unwrap(), ["--resume", "c1"]);
        assert_eq!(resume(AgentKind::Codex).unwrap(), ["resume", "c1", "-"]);
        assert_eq!(resume(AgentKind::Gemini).unwrap(), ["--resume", "c1"]);
        assert_eq!(resume(AgentKind::Opencode).unwrap(), ["--session", "c1"]);
        assert_eq!(
            resume(AgentKind::Command),
            None,
            "no flags the user did not write"
        );
        let argv = run_argv(&of_kind(AgentKind::Codex), Some("c1"));
        assert_eq!(argv[3..], ["--model", "m1", "resume", "c1", "-"]);
    }

    #[test]
    fn a_command_agent_gets_only_what_its_user_wrote() {
        let mut d = of_kind(AgentKind::Command);
        assert_eq!(session_argv(&d, "u1", false), ["my-agent"]);
        assert_eq!(session_argv(&d, "u1", true), ["my-agent"]);
        d.args = vec!["--flag".into()];
        d.session_args.resume = vec!["--thread".into(), "{session_id}".into()];
        assert_eq!(
            session_argv(&d, "u1", true),
            ["my-agent", "--thread", "u1", "--flag"]
        );
        // A model stored before kinds existed is not turned into a flag it never asked for.
        d.model = Some("sonnet".into());
        assert_eq!(run_argv(&d, None), ["my-agent", "--flag"]);
    }

    #[test]
    fn permission_modes_map_to_each_kinds_flags() {
        let with_mode = |k, m: &str| {
            let mut d = of_kind(k);
            d.model = None;
            d.permission_mode = Some(m.into());
            session_argv(&d, "u", false)
        };
        assert_eq!(
            with_mode(AgentKind::Codex, "plan")[1..],
            ["--sandbox", "read-only"]
        );
        assert_eq!(
            with_mode(AgentKind::Gemini, "acceptEdits")[1..3],
            ["--approval-mode", "auto_edit"]
        );
        assert_eq!(
            with_mode(AgentKind::Aider, "bypassPermissions")[1..],
            ["--yes-always"]
        );
        let first = session_argv(&of_kind(AgentKind::Gemini), "u", false);
        assert_eq!(first[3..], ["--session-id", "u"]);
    }

    #[test]
    fn only_claude_code_gets_the_hook_flags() {
        for kind in kinds::all() {
            let yes = kind.kind == AgentKind::Claude;
            assert_eq!(
                speaks_claude_hooks(&of_kind(kind.kind)),
                yes,
                "{:?}",
                kind.kind
            );
        }
    }
}
