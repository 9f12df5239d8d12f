//! What a child inherits from the server: a clean environment, an ordinary open-file limit and
//! no shell history on disk. Every session kind (terminal, agent session, headless run) is built
//! through [`prepare_child`], so the policy lives in one place (documented in docs/security.md).
//!
//! - **Environment**: an allow-list of the server's variables ([`INHERITED_ENV`] and `LC_*`),
//!   then the terminal defaults, then the session's own variables (which win). Nothing of the
//!   server's configuration (`CM_*`) or its service manager (`NOTIFY_SOCKET`, `WATCHDOG_*`,
//!   `INVOCATION_ID`, `JOURNAL_STREAM`, `LISTEN_*`, credentials paths) reaches a child.
//! - **Open files**: the server raises its own soft `RLIMIT_NOFILE` to the hard limit; a child
//!   gets back the soft limit the server was started with, so programs that size tables or use
//!   `select()` by it behave as they would in a login shell.
//! - **umask**: the server creates its files with umask 077; a child gets the umask the server
//!   was started with, so files a user makes in a terminal have their usual modes.
//! - **History**: `HISTFILE` is set empty, so bash keeps history in memory for the session and
//!   writes none to the server user's home — a secret typed at a prompt is not left on disk.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Variables passed on from the server's environment when set: who the user is, where things
/// are, how to speak (locale, time zone) and how to reach the network (proxies, CA bundles).
pub const INHERITED_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "XDG_RUNTIME_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];
/// Locale categories (`LC_ALL`, `LC_CTYPE`, …) are passed on as a family.
const INHERITED_PREFIX: &str = "LC_";

/// `TERM` for every child: what xterm.js emulates.
const CHILD_TERM: &str = "xterm-256color";
/// `COLORTERM` for every child: xterm.js renders 24-bit colour.
const CHILD_COLORTERM: &str = "truecolor";
/// `LANG` when the server itself has none: output must be UTF-8 for the browser.
const DEFAULT_LANG: &str = "C.UTF-8";
/// Empty `HISTFILE`: bash keeps the session's history in memory and saves none at exit.
const CHILD_HISTFILE: &str = "";

/// The kernel's default soft open-file limit (and `FD_SETSIZE`), used when the server's own
/// starting limit was not recorded (the server embedded in tests).
const DEFAULT_SOFT_NOFILE: u64 = 1024;
/// The soft `RLIMIT_NOFILE` the process was started with, before the server raised it.
static INHERITED_SOFT_NOFILE: AtomicU64 = AtomicU64::new(DEFAULT_SOFT_NOFILE);

/// The umask the process was started with (the server runs with 077, see `permissions`).
static STARTING_UMASK: AtomicU32 = AtomicU32::new(0o022);

/// Passes the starting umask and soft open-file limit across a reload's exec (the new image
/// starts with the values this process set for itself, not the ones it was given).
const ENV_STARTING: &str = "CM_HANDOVER_STARTING";

/// Records the umask the process was started with, for children to get back (across a reload:
/// the first start's).
pub fn remember_starting_umask(mask: libc::mode_t) {
    let mask = starting_from_env().map_or(mask, |(m, _)| m);
    STARTING_UMASK.store(mask, Ordering::Relaxed);
}

/// Records the soft open-file limit the process was started with; call before raising it.
pub fn remember_starting_nofile(soft: u64) {
    let soft = starting_from_env().map_or(soft, |(_, n)| n);
    INHERITED_SOFT_NOFILE.store(soft, Ordering::Relaxed);
}

/// Sets what the next image reads back as the starting umask and limit (before a reload's exec).
pub fn pass_starting_values() {
    std::env::set_var(
        ENV_STARTING,
        format!(
            "{} {}",
            STARTING_UMASK.load(Ordering::Relaxed),
            INHERITED_SOFT_NOFILE.load(Ordering::Relaxed)
        ),
    );
}

fn starting_from_env() -> Option<(libc::mode_t, u64)> {
    let v = std::env::var(ENV_STARTING).ok()?;
    let (m, n) = v.split_once(' ')?;
    Some((m.parse().ok()?, n.parse().ok()?))
}

/// Whether a server variable named `name` is passed on to children.
pub fn is_inherited(name: &str) -> bool {
    INHERITED_ENV.contains(&name) || name.starts_with(INHERITED_PREFIX)
}

/// Replaces `command`'s environment with the allow-listed part of the server's, the terminal
/// defaults and `session_env` (in that order, later wins), and restores the child's soft
/// open-file limit between fork and exec.
pub fn prepare_child(command: &mut tokio::process::Command, session_env: &[(String, String)]) {
    command.env_clear();
    command.envs(std::env::vars_os().filter(|(name, _)| name.to_str().is_some_and(is_inherited)));
    if std::env::var_os("LANG").is_none() {
        command.env("LANG", DEFAULT_LANG);
    }
    command
        .env("TERM", CHILD_TERM)
        .env("COLORTERM", CHILD_COLORTERM)
        .env("HISTFILE", CHILD_HISTFILE);
    command.envs(session_env.iter().map(|(k, v)| (k, v)));
    let soft = INHERITED_SOFT_NOFILE.load(Ordering::Relaxed);
    let umask = STARTING_UMASK.load(Ordering::Relaxed) as libc::mode_t;
    // SAFETY: `restore_soft_nofile` and `umask` are async-signal-safe system calls on stack
    // values and do not allocate, as required between fork and exec.
    unsafe {
        command.pre_exec(move || {
            restore_soft_nofile(soft);
            libc::umask(umask);
            Ok(())
        });
    }
}

/// Lowers the soft open-file limit to `soft` (never above the hard limit). Best effort: a child
/// that keeps the server's higher limit still works.
fn restore_soft_nofile(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a stack-allocated struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur > soft {
            limit.rlim_cur = soft.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Raises the soft open-file limit to the hard limit: every session holds a PTY master and
/// sockets, and the default soft limit of 1024 caps a server at a few hundred sessions.
/// Returns the soft limit in force.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
        remember_starting_nofile(soft);
    }
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_configuration_and_service_manager_are_not_inherited() {
        for name in [
            "CM_DATA_DIR",
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "INVOCATION_ID",
            "JOURNAL_STREAM",
            "LISTEN_FDS",
            "LISTEN_FDNAMES",
            "CREDENTIALS_DIRECTORY",
            "ANTHROPIC_API_KEY",
        ] {
            assert!(!is_inherited(name), "{name}");
        }
    }

    #[test]
    fn identity_paths_and_locale_are_inherited() {
        for name in ["HOME", "USER", "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"] {
            assert!(is_inherited(name), "{name}");
        }
    }
}
