//! The server user's login shell and home directory, from the passwd entry (NSS), which is right
//! even where `$SHELL` or `$HOME` is unset (under systemd, for instance).

use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// First buffer for `getpwuid_r`, doubled on `ERANGE` up to the maximum: entries are small,
/// but NSS backends (LDAP, sssd) may return long ones.
const PASSWD_BUF_INITIAL_BYTES: usize = 1024;
const PASSWD_BUF_MAX_BYTES: usize = 1 << 20;

/// The current user's login shell from the passwd entry, else `$SHELL`, else `/bin/sh`.
pub fn login_shell() -> String {
    current_user_entry()
        .map(|entry| entry.shell)
        .filter(|shell| !shell.is_empty())
        .and_then(|shell| shell.into_string().ok())
        .or_else(|| {
            std::env::var("SHELL")
                .ok()
                .filter(|shell| !shell.is_empty())
        })
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

/// The current user's home directory from the passwd entry, else `$HOME`, else `/`.
pub fn home_dir() -> PathBuf {
    current_user_entry()
        .map(|entry| entry.dir)
        .filter(|dir| !dir.is_empty())
        .or_else(|| std::env::var_os("HOME").filter(|home| !home.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

struct PasswdEntry {
    dir: OsString,
    shell: OsString,
}

/// The passwd entry of the current uid, through NSS. (nix's `User` would do this, but needs
/// nix's `user` feature, which the crate does not enable.)
fn current_user_entry() -> Option<PasswdEntry> {
    let mut buf_len = PASSWD_BUF_INITIAL_BYTES;
    loop {
        let mut buf: Vec<libc::c_char> = vec![0; buf_len];
        // SAFETY: `passwd` is plain data (integers and pointers), valid when zeroed.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local; `buf.len()` is the buffer's true size.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::getuid(),
                &mut entry,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf_len < PASSWD_BUF_MAX_BYTES {
            buf_len *= 2;
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        let field = |ptr: *const libc::c_char| {
            if ptr.is_null() {
                return OsString::new();
            }
            // SAFETY: getpwuid_r filled `entry` with NUL-terminated strings inside `buf`,
            // which is still alive here.
            OsStr::from_bytes(unsafe { CStr::from_ptr(ptr) }.to_bytes()).to_owned()
        };
        return Some(PasswdEntry {
            dir: field(entry.pw_dir),
            shell: field(entry.pw_shell),
        });
    }
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
