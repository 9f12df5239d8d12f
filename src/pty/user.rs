//! The server user's login shell and home directory, from the passwd entry (NSS), which is right
//! even where `$SHELL` or `$HOME` is unset (under systemd, for instance).

use std::path::PathBuf;

use nix::unistd::{getuid, User};

/// The current user's login shell from the passwd entry, else `$SHELL`, else `/bin/sh`.
pub fn login_shell() -> String {
    current_user()
        .map(|user| user.shell)
        .filter(|shell| !shell.as_os_str().is_empty())
        .and_then(|shell| shell.into_os_string().into_string().ok())
        .or_else(|| {
            std::env::var("SHELL")
                .ok()
                .filter(|shell| !shell.is_empty())
        })
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

/// The current user's home directory from the passwd entry if it exists, else `$HOME`, else `/`.
pub fn home_dir() -> PathBuf {
    current_user()
        .map(|user| user.dir)
        .filter(|dir| dir.is_dir())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// The passwd entry of the current uid, through NSS (nix grows the buffer for long entries).
fn current_user() -> Option<User> {
    User::from_uid(getuid()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_shell_and_home_dir_are_absolute() {
        assert!(login_shell().starts_with('/'));
        assert!(home_dir().is_absolute());
    }
}
