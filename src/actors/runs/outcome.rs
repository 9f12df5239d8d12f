//! A finished run's status and its reason in words a person reads: what the agent said when it
//! reported an error, and how it exited when it did not say anything useful.

use super::stream::RunResult;
use crate::db::executions::ExecutionStatus;
use crate::pty::ExitInfo;

/// The longest agent message quoted in a reason, in characters; the full text stays in `result`.
const QUOTED_MAX_CHARS: usize = 300;

/// How the process ended: "exited with code 1", "was killed by signal 9 (SIGKILL)".
pub fn exit_words(exit: ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (_, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(name) => format!("was killed by signal {sig} ({name})"),
            Err(_) => format!("was killed by signal {sig}"),
        },
        (Some(code), None) => format!("exited with code {code}"),
        (None, None) => "ended with no exit status".into(),
    }
}

/// The status and reason of a run that ended by itself (no cancel, timeout or shutdown), from
/// its `result` event (if it printed one) and its exit.
pub fn ended(result: Option<&RunResult>, exit: ExitInfo) -> (ExecutionStatus, Option<String>) {
    let failed = |reason: String| (ExecutionStatus::Failed, Some(reason));
    match result {
        Some(r) if r.is_error => {
            let said = r.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
            match said {
                Some(text) => failed(format!("the agent reported an error: {}", quote(text))),
                None => failed(format!(
                    "the agent reported an error ({}) and {}",
                    r.subtype.as_deref().unwrap_or("no details"),
                    exit_words(exit)
                )),
            }
        }
        Some(_) if exit.code == Some(0) && exit.signal.is_none() => {
            (ExecutionStatus::Succeeded, None)
        }
        Some(_) => failed(format!(
            "the agent reported success but {}",
            exit_words(exit)
        )),
        None if exit.code == Some(0) => failed("exited with code 0 but printed no result".into()),
        None => failed(format!("{} and printed no result", exit_words(exit))),
    }
}

/// The status and reason of a plain-text agent's run that ended by itself: it prints no result
/// event, so its exit code alone decides.
pub fn ended_plain(exit: ExitInfo) -> (ExecutionStatus, Option<String>) {
    if exit.code == Some(0) && exit.signal.is_none() {
        (ExecutionStatus::Succeeded, None)
    } else {
        (ExecutionStatus::Failed, Some(exit_words(exit)))
    }
}

/// `text` on one line, cut at [`QUOTED_MAX_CHARS`] with an ellipsis.
fn quote(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(QUOTED_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: Option<i32>, signal: Option<i32>) -> ExitInfo {
        ExitInfo { code, signal }
    }

    fn result(is_error: bool, subtype: &str, text: Option<&str>) -> RunResult {
        RunResult {
            subtype: Some(subtype.into()),
            is_error,
            text: text.map(str::to_owned),
            cost_usd: None,
            usage: None,
            session_id: None,
        }
    }

    #[test]
    fn an_error_result_quotes_what_the_agent_said() {
        // Claude Code's not-logged-in run: subtype "success" but is_error, and the text says why.
        let r = result(true, "success", Some("Not logged in · Please run /login"));
        let (status, reason) = ended(Some(&r), exit(Some(1), None));
        assert_eq!(status, ExecutionStatus::Failed);
        assert_eq!(
            reason.as_deref(),
            Some("the agent reported an error: Not logged in · Please run /login")
        );
    }

    #[test]
    fn an_error_result_without_text_names_its_subtype_and_exit() {
        let r = result(true, "error_max_turns", None);
        let (_, reason) = ended(Some(&r), exit(Some(1), None));
        assert_eq!(
            reason.as_deref(),
            Some("the agent reported an error (error_max_turns) and exited with code 1")
        );
    }

    #[test]
    fn no_result_says_how_it_exited_without_debug_syntax() {
        let (_, reason) = ended(None, exit(Some(0), None));
        assert_eq!(
            reason.as_deref(),
            Some("exited with code 0 but printed no result")
        );
        let (_, reason) = ended(None, exit(None, Some(9)));
        assert_eq!(
            reason.as_deref(),
            Some("was killed by signal 9 (SIGKILL) and printed no result")
        );
    }

    #[test]
    fn success_needs_a_clean_exit() {
        let ok = result(false, "success", Some("done"));
        assert_eq!(
            ended(Some(&ok), exit(Some(0), None)).0,
            ExecutionStatus::Succeeded
        );
        let (status, reason) = ended(Some(&ok), exit(Some(2), None));
        assert_eq!(status, ExecutionStatus::Failed);
        assert_eq!(
            reason.as_deref(),
            Some("the agent reported success but exited with code 2")
        );
    }

    #[test]
    fn a_long_message_is_cut_on_one_line() {
        let long = format!("first\nsecond {}", "x".repeat(1000));
        let r = result(true, "error", Some(&long));
        let reason = ended(Some(&r), exit(Some(1), None)).1.unwrap_or_default();
        assert!(reason.starts_with("the agent reported an error: first second xxx"));
        assert!(reason.ends_with('…'));
        assert!(!reason.contains('\n'));
    }
}
