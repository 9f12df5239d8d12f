//! Finding the executable a command names, before forking: a missing or non-executable program
//! is a clear error at once rather than a child that fails at `exec`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use super::PtyError;

/// Search path when neither the session nor the server has `PATH` (glibc's `execvp` default).
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The program's path: relative to `cwd` if it has a `/`, else looked up on the session's PATH.
pub(super) fn resolve_program(
    program: &str,
    cwd: &Path,
    env: &[(String, String)],
) -> Result<PathBuf, PtyError> {
    let session_path = env
        .iter()
        .rev()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| OsString::from(value));
    let program_path = if program.contains('/') {
        cwd.join(program).into_os_string()
    } else {
        OsString::from(program)
    };
    program_path
        .to_str()
        .and_then(|p| resolve_command(p, session_path.as_deref()))
        .ok_or_else(|| PtyError::CommandNotFound {
            program: program.to_string(),
        })
}

/// Finds the executable `program` would run: a name containing `/` is checked as a path
/// (relative to the server's cwd), any other name is searched in `path_env` (absolute
/// entries only), or in the server's `PATH` when `None`. `None` if nothing executable matches.
pub fn resolve_command(program: &str, path_env: Option<&OsStr>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable_file(&path).then_some(path);
    }
    let server_path = std::env::var_os("PATH");
    let search = path_env
        .or(server_path.as_deref())
        .unwrap_or(OsStr::new(DEFAULT_PATH));
    std::env::split_paths(search)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    path.is_file() && access(path, AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_resolve_through_path_or_as_paths() {
        let path = OsStr::new("relative/dir::/bin:/usr/bin");
        let sh = resolve_command("sh", Some(path)).expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"));
        assert_eq!(
            resolve_command("sh", Some(OsStr::new("/nonexistent"))),
            None
        );
        assert_eq!(
            resolve_command("no-such-command-claude-manager", None),
            None
        );
        assert_eq!(resolve_command("", None), None);
        assert_eq!(
            resolve_command("/bin/sh", None),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve_command("/tmp", None), None, "a directory");
        let script = std::env::temp_dir().join(format!("pty-resolve-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").expect("write script");
        let script_str = script.to_str().expect("utf-8 temp path");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(resolve_command(script_str, None), None, "not executable");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(resolve_command(script_str, None), Some(script.clone()));
        std::fs::remove_file(&script).expect("remove script");
    }
}
