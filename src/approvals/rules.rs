//! Per-agent approval rules, applied before anyone is asked: `deny` wins over `allow`, and a
//! request no rule matches is put to the user.
//!
//! A rule is `Tool` (every use of the tool) or `Tool(pattern)`, in Claude Code's own spelling:
//! the pattern is matched against the tool's main argument — the command of `Bash`, the file
//! path of `Read`/`Edit`/`Write`/`MultiEdit`/`NotebookEdit`, the URL of `WebFetch`, the pattern
//! of `Glob`/`Grep` — where `*` matches any run of characters (a trailing `:*`, Claude Code's
//! prefix form, too). `Bash(rm *)` denies every `rm` with arguments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Decision;

/// Rules longer than this are refused by validation (they are user input).
pub const RULE_MAX_CHARS: usize = 500;
pub const RULES_MAX: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl Rules {
    /// The decision of the first matching rule (deny rules first), with the rule.
    pub fn verdict(&self, tool: &str, input: &Value) -> Option<(Decision, String)> {
        let hit = |rules: &[String]| rules.iter().find(|r| matches(r, tool, input)).cloned();
        hit(&self.deny)
            .map(|r| (Decision::Deny, r))
            .or_else(|| hit(&self.allow).map(|r| (Decision::Allow, r)))
    }

    /// Why the rules are not acceptable, if they are not.
    pub fn check(&self) -> Result<(), String> {
        if self.allow.len() + self.deny.len() > RULES_MAX {
            return Err(format!("at most {RULES_MAX} rules"));
        }
        for r in self.allow.iter().chain(&self.deny) {
            if parse(r).is_none() || r.chars().count() > RULE_MAX_CHARS {
                return Err(format!(
                    "{r:?} is not a rule: write Tool or Tool(pattern), e.g. Read or Bash(rm *), \
                     at most {RULE_MAX_CHARS} characters"
                ));
            }
        }
        Ok(())
    }
}

/// (tool, pattern) of a rule.
fn parse(rule: &str) -> Option<(&str, Option<&str>)> {
    let rule = rule.trim();
    match rule.split_once('(') {
        None => (!rule.is_empty() && rule.chars().all(is_tool_char)).then_some((rule, None)),
        Some((tool, rest)) => {
            let pattern = rest.strip_suffix(')')?;
            (!tool.is_empty() && tool.chars().all(is_tool_char)).then_some((tool, Some(pattern)))
        }
    }
}

fn is_tool_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// The argument a pattern is matched against.
pub fn subject(tool: &str, input: &Value) -> String {
    let field = match tool {
        "Bash" => "command",
        "Read" | "Edit" | "Write" | "MultiEdit" => "file_path",
        "NotebookEdit" => "notebook_path",
        "WebFetch" => "url",
        "Glob" | "Grep" => "pattern",
        _ => return input.to_string(),
    };
    input[field].as_str().unwrap_or_default().to_string()
}

fn matches(rule: &str, tool: &str, input: &Value) -> bool {
    match parse(rule) {
        Some((t, None)) => t == tool,
        Some((t, Some(pattern))) => t == tool && glob(pattern, &subject(tool, input)),
        None => false,
    }
}

/// `*` matches any run of characters; everything else is literal. `prefix:*` = `prefix*`.
fn glob(pattern: &str, text: &str) -> bool {
    let pattern = match pattern.strip_suffix(":*") {
        Some(prefix) => format!("{prefix}*"),
        None => pattern.to_string(),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    if !text.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            allow: vec!["Read".into(), "Bash(git log:*)".into()],
            deny: vec!["Bash(rm *)".into()],
        }
    }

    #[test]
    fn deny_wins_and_patterns_match_the_main_argument() {
        let r = rules();
        let bash = |c: &str| json!({ "command": c });
        assert_eq!(
            r.verdict("Read", &json!({"file_path": "/x"})).unwrap().0,
            Decision::Allow
        );
        assert_eq!(
            r.verdict("Bash", &bash("rm -rf /tmp/x")).unwrap().0,
            Decision::Deny
        );
        assert_eq!(
            r.verdict("Bash", &bash("git log --oneline")).unwrap().0,
            Decision::Allow
        );
        assert!(r.verdict("Bash", &bash("ls")).is_none());
        assert!(
            r.verdict("Bash", &bash("rm")).is_none(),
            "`rm *` needs an argument"
        );
        assert!(r.verdict("Edit", &json!({"file_path": "a"})).is_none());
    }

    #[test]
    fn malformed_rules_are_refused() {
        let bad = Rules {
            allow: vec!["Bash(ls".into()],
            deny: vec![],
        };
        assert!(bad.check().is_err());
        assert!(rules().check().is_ok());
    }

    #[test]
    fn glob_is_literal_except_star() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(!glob("a*c", "ab"));
        assert!(glob("a.b", "a.b"));
        assert!(!glob("a.b", "axb"));
        assert!(glob("*x*y*", "0x1y2"));
    }
}
