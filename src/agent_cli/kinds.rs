//! The agent CLIs claude-manager knows by name, and how each one spells what a definition asks
//! for: model, system prompt, permission mode, allowed tools, a conversation to start or resume,
//! and headless (machine-readable) output. One static table ([`spec`]); `docs/agents.md` shows
//! it as a table and `GET /api/agent-kinds` serves it.
//!
//! A field a kind cannot express is refused when the agent is saved (422 naming the field) rather
//! than silently dropped: the user learns at once to put that CLI's own flag in `args`. The
//! `command` kind expresses nothing, so it gets no flag its user did not write.
//!
//! Flags were checked against the CLIs' own `--help` (Claude Code 2.1, Codex CLI 0.171, Gemini
//! CLI 0.61) and documentation (aider, opencode).

use serde::{Deserialize, Serialize};

/// Which agent CLI a definition runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    Claude,
    Codex,
    Gemini,
    Aider,
    Opencode,
    /// Any program: no flag is added, `args` and `session_args` are all it gets.
    Command,
}

/// How a headless run's stdout is read (`crate::actors::runs::stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutputFormat {
    /// Claude Code's `--output-format stream-json`: JSON lines ending with a `result` event.
    ClaudeStreamJson,
    /// `codex exec --json`: JSON lines (`thread.started`, `item.completed`, `turn.completed`, …).
    CodexJson,
    /// Gemini CLI's `--output-format stream-json`: `init`, `message`, …, `result`.
    GeminiStreamJson,
    /// Plain text: each line an event, the last lines the result, success by exit code.
    Text,
}

/// What one kind knows. Templates may hold `{session_id}` (the conversation id).
#[derive(Debug, Serialize)]
pub struct KindSpec {
    pub kind: AgentKind,
    /// The CLI's name as people say it.
    pub label: &'static str,
    /// Used when a definition of this kind names no command (`[]`: a command is required).
    pub default_command: &'static [&'static str],
    /// `--model <model>`, or `None` when the kind has no model flag.
    pub model_flag: Option<&'static str>,
    pub system_prompt_flag: Option<&'static str>,
    /// Each accepted `permission_mode` and the flags it becomes.
    pub permission_modes: &'static [(&'static str, &'static [&'static str])],
    /// One comma-separated value after this flag.
    pub allowed_tools_flag: Option<&'static str>,
    /// Default `session_args` of an interactive session: first start, and later starts.
    pub session_first: &'static [&'static str],
    pub session_resume: &'static [&'static str],
    /// Put right after `command` in a headless run (print mode, JSON output).
    pub headless_args: &'static [&'static str],
    /// How a headless run continues an earlier conversation (`resume` of a run); `None` with
    /// `resume_from_session_args`: the definition's `session_args.resume`.
    pub run_resume: Option<&'static [&'static str]>,
    pub resume_from_session_args: bool,
    pub output: OutputFormat,
}

const CLAUDE_MODES: &[(&str, &[&str])] = &[
    ("default", &["--permission-mode", "default"]),
    ("acceptEdits", &["--permission-mode", "acceptEdits"]),
    (
        "bypassPermissions",
        &["--permission-mode", "bypassPermissions"],
    ),
    ("plan", &["--permission-mode", "plan"]),
    ("dontAsk", &["--permission-mode", "dontAsk"]),
];

const SPECS: [KindSpec; 6] = [
    KindSpec {
        kind: AgentKind::Claude,
        label: "Claude Code",
        default_command: &["claude"],
        model_flag: Some("--model"),
        system_prompt_flag: Some("--append-system-prompt"),
        permission_modes: CLAUDE_MODES,
        allowed_tools_flag: Some("--allowedTools"),
        session_first: &["--session-id", "{session_id}"],
        session_resume: &["--resume", "{session_id}"],
        headless_args: &["-p", "--output-format", "stream-json", "--verbose"],
        run_resume: None,
        resume_from_session_args: true,
        output: OutputFormat::ClaudeStreamJson,
    },
    KindSpec {
        kind: AgentKind::Codex,
        label: "OpenAI Codex CLI",
        default_command: &["codex"],
        model_flag: Some("--model"),
        system_prompt_flag: None,
        permission_modes: &[
            ("default", &[]),
            ("plan", &["--sandbox", "read-only"]),
            ("acceptEdits", &["--sandbox", "workspace-write"]),
            (
                "bypassPermissions",
                &["--dangerously-bypass-approvals-and-sandbox"],
            ),
        ],
        allowed_tools_flag: None,
        // Codex names its own sessions: a first start cannot be given ours.
        session_first: &[],
        session_resume: &["resume", "--last"],
        headless_args: &["exec", "--json"],
        // `codex exec resume <id> -`: `-` reads the prompt from stdin.
        run_resume: Some(&["resume", "{session_id}", "-"]),
        resume_from_session_args: false,
        output: OutputFormat::CodexJson,
    },
    KindSpec {
        kind: AgentKind::Gemini,
        label: "Gemini CLI",
        default_command: &["gemini"],
        model_flag: Some("--model"),
        system_prompt_flag: None,
        permission_modes: &[
            ("default", &["--approval-mode", "default"]),
            ("acceptEdits", &["--approval-mode", "auto_edit"]),
            ("bypassPermissions", &["--approval-mode", "yolo"]),
            ("plan", &["--approval-mode", "plan"]),
        ],
        allowed_tools_flag: Some("--allowed-tools"),
        session_first: &["--session-id", "{session_id}"],
        session_resume: &["--resume", "{session_id}"],
        // Headless because stdin is a pipe: the prompt is read from it.
        headless_args: &["--output-format", "stream-json"],
        run_resume: Some(&["--resume", "{session_id}"]),
        resume_from_session_args: false,
        output: OutputFormat::GeminiStreamJson,
    },
    KindSpec {
        kind: AgentKind::Aider,
        label: "Aider",
        default_command: &["aider"],
        model_flag: Some("--model"),
        system_prompt_flag: None,
        permission_modes: &[("bypassPermissions", &["--yes-always"])],
        allowed_tools_flag: None,
        session_first: &[],
        session_resume: &["--restore-chat-history"],
        // One message read from stdin; nobody is there to answer its questions.
        headless_args: &[
            "--message-file",
            "/dev/stdin",
            "--yes-always",
            "--no-pretty",
        ],
        run_resume: Some(&["--restore-chat-history"]),
        resume_from_session_args: false,
        output: OutputFormat::Text,
    },
    KindSpec {
        kind: AgentKind::Opencode,
        label: "opencode",
        default_command: &["opencode"],
        model_flag: Some("--model"),
        system_prompt_flag: None,
        permission_modes: &[],
        allowed_tools_flag: None,
        session_first: &[],
        session_resume: &["--continue"],
        headless_args: &["run"],
        run_resume: Some(&["--session", "{session_id}"]),
        resume_from_session_args: false,
        output: OutputFormat::Text,
    },
    KindSpec {
        kind: AgentKind::Command,
        label: "Any command",
        default_command: &[],
        model_flag: None,
        system_prompt_flag: None,
        permission_modes: &[],
        allowed_tools_flag: None,
        session_first: &[],
        session_resume: &[],
        headless_args: &[],
        run_resume: None,
        resume_from_session_args: true,
        output: OutputFormat::Text,
    },
];

/// Every kind, in the order the UI offers them.
pub fn all() -> &'static [KindSpec] {
    &SPECS
}

/// What `kind` knows.
pub fn spec(kind: AgentKind) -> &'static KindSpec {
    // SPECS lists every variant once, in declaration order.
    &SPECS[kind as usize]
}

impl AgentKind {
    /// The kind a definition has when it names none: `claude` when the program is Claude Code
    /// (named `claude`, a wrapper named `*-claude`, or npx's `@anthropic-ai/claude-code`), else
    /// `command`.
    pub fn default_for(command: &[String]) -> AgentKind {
        let program = command.first().map(String::as_str).unwrap_or("claude");
        let base = program.rsplit('/').next().unwrap_or(program);
        let npx = command
            .iter()
            .any(|a| a.starts_with("@anthropic-ai/claude-code"));
        if base == "claude" || base.ends_with("-claude") || npx {
            AgentKind::Claude
        } else {
            AgentKind::Command
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
            AgentKind::Aider => "aider",
            AgentKind::Opencode => "opencode",
            AgentKind::Command => "command",
        }
    }
}

/// Strings of a static template.
pub fn owned(template: &[&str]) -> Vec<String> {
    template.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_kind_once_in_order() {
        for (i, s) in all().iter().enumerate() {
            assert_eq!(s.kind as usize, i);
            assert_eq!(spec(s.kind).kind, s.kind);
        }
    }

    #[test]
    fn claude_code_is_recognised_by_its_name_and_anything_else_is_a_command() {
        let k = |c: &[&str]| AgentKind::default_for(&owned(c));
        assert_eq!(k(&["claude"]), AgentKind::Claude);
        assert_eq!(k(&["/home/me/.local/bin/claude"]), AgentKind::Claude);
        assert_eq!(k(&["/opt/tests/fake-claude"]), AgentKind::Claude);
        assert_eq!(
            k(&["npx", "-y", "@anthropic-ai/claude-code@2"]),
            AgentKind::Claude
        );
        assert_eq!(k(&["codex"]), AgentKind::Command);
        assert_eq!(k(&["tiny-agent"]), AgentKind::Command);
        assert_eq!(k(&["claude-wrapper.sh"]), AgentKind::Command);
    }
}
