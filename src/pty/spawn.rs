//! Starting a child: allocating the pseudo-terminal, building the command (program, argv,
//! cwd, environment) and the code that runs in the child between fork and exec (new session,
//! controlling terminal, every fd ≥ 3 closed at exec; the environment and limits a child
//! inherits are decided in `env.rs`). [`spawn_piped`] starts a headless child
//! the same way, with pipes instead of a terminal.

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::process::Stdio;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};

use super::env::prepare_child;
use super::lookup::resolve_program;
use super::master::{register_master, set_window_size};
use super::{PtyChild, PtyCommand, PtyError, PtyReader, PtyWriter, WindowSize};

/// Upper bound for the fd loop used when `close_range` is unavailable (Linux < 5.11): the
/// kernel's default `fs.nr_open`, so a huge `RLIMIT_NOFILE` cannot stall the child for minutes.
const FALLBACK_MAX_FD_COUNT: libc::rlim_t = 1 << 20;

/// A freshly started child and the two halves of its terminal.
#[derive(Debug)]
pub struct SpawnedPty {
    pub reader: PtyReader,
    pub writer: PtyWriter,
    pub child: PtyChild,
}

/// Starts `command` on a new PTY. Must be called within a tokio runtime.
pub fn spawn(command: &PtyCommand) -> Result<SpawnedPty, PtyError> {
    let WindowSize { cols, rows } = command.size;
    if cols == 0 || rows == 0 {
        return Err(PtyError::InvalidSize { cols, rows });
    }
    if !command.cwd.is_dir() {
        return Err(PtyError::InvalidCwd {
            cwd: command.cwd.clone(),
        });
    }
    let resolved = resolve_program(&command.program, &command.cwd, &command.env)?;

    let (master, slave) = open_pty()?;
    set_window_size(master.as_fd(), command.size).map_err(|source| PtyError::Allocate {
        step: "set window size",
        source,
    })?;
    let (reader, writer) = register_master(master)?;

    let spawned = {
        let mut child_command = tokio::process::Command::new(&resolved);
        child_command
            .arg0(&command.program)
            .args(&command.args)
            .current_dir(&command.cwd);
        prepare_child(&mut child_command, &command.env);
        let stdio = |slave: &File| {
            slave
                .try_clone()
                .map(Stdio::from)
                .map_err(|source| PtyError::Allocate {
                    step: "duplicate slave",
                    source,
                })
        };
        child_command
            .stdin(stdio(&slave)?)
            .stdout(stdio(&slave)?)
            .stderr(Stdio::from(slave));
        let procs = cgroup_procs_path(command)?;
        // SAFETY: `become_session_leader` and `join_cgroup` make only async-signal-safe system
        // calls and do not allocate (the path was built before the fork), as required between
        // fork and exec.
        unsafe {
            child_command.pre_exec(move || {
                join_cgroup(procs.as_deref())?;
                become_session_leader()
            });
        }
        child_command.spawn()
        // `child_command` drops here, and with it the last parent-side copies of the slave.
    };
    let child = spawned.map_err(|source| PtyError::Spawn {
        program: command.program.clone(),
        source,
    })?;
    Ok(SpawnedPty {
        reader,
        writer,
        child: PtyChild::new(child, command.cgroup.clone()),
    })
}

/// A headless child (agent runs): stdin, stdout and stderr are pipes; no PTY.
pub struct SpawnedPiped {
    pub child: PtyChild,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub stderr: tokio::process::ChildStderr,
}

/// Starts `command` with pipes instead of a PTY, leader of its own session and process group
/// (stopped as a group like every session), holding fds 0-2 only. `size` is ignored.
pub fn spawn_piped(command: &PtyCommand) -> Result<SpawnedPiped, PtyError> {
    if !command.cwd.is_dir() {
        return Err(PtyError::InvalidCwd {
            cwd: command.cwd.clone(),
        });
    }
    let resolved = resolve_program(&command.program, &command.cwd, &command.env)?;
    let mut child_command = tokio::process::Command::new(&resolved);
    child_command
        .arg0(&command.program)
        .args(&command.args)
        .current_dir(&command.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    prepare_child(&mut child_command, &command.env);
    let procs = cgroup_procs_path(command)?;
    // SAFETY: as in `spawn`: async-signal-safe system calls only, no allocation.
    unsafe {
        child_command.pre_exec(move || {
            join_cgroup(procs.as_deref())?;
            become_session_leader_without_tty()
        });
    }
    let mut child = child_command.spawn().map_err(|source| PtyError::Spawn {
        program: command.program.clone(),
        source,
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        // Unreachable with Stdio::piped(); the child is killed by PtyChild's drop below.
        drop(PtyChild::new(child, command.cgroup.clone()));
        return Err(PtyError::Spawn {
            program: command.program.clone(),
            source: io::Error::other("pipes missing"),
        });
    };
    Ok(SpawnedPiped {
        child: PtyChild::new(child, command.cgroup.clone()),
        stdin,
        stdout,
        stderr,
    })
}

/// Opens a master/slave pair, both close-on-exec from the first instant.
fn open_pty() -> Result<(File, File), PtyError> {
    let step = |step: &'static str| {
        move |errno: Errno| PtyError::Allocate {
            step,
            source: errno.into(),
        }
    };
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(step("posix_openpt"))?;
    grantpt(&master).map_err(step("grantpt"))?;
    unlockpt(&master).map_err(step("unlockpt"))?;
    let slave_path = ptsname_r(&master).map_err(step("ptsname_r"))?;
    // std adds O_CLOEXEC to every open; it is spelled out because it is the point.
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(&slave_path)
        .map_err(|source| PtyError::Allocate {
            step: "open slave",
            source,
        })?;
    Ok((File::from(OwnedFd::from(master)), slave))
}

/// `<cgroup>/cgroup.procs` as a C string, built before the fork (the child may not allocate).
fn cgroup_procs_path(command: &PtyCommand) -> Result<Option<CString>, PtyError> {
    let Some(dir) = &command.cgroup else {
        return Ok(None);
    };
    CString::new(dir.join("cgroup.procs").into_os_string().into_vec())
        .map(Some)
        .map_err(|e| PtyError::Cgroup {
            dir: dir.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })
}

/// Runs in the child between fork and exec: moves it into its session's cgroup (writing `0`
/// to `cgroup.procs` moves the writer), before it can start anything that could escape.
fn join_cgroup(procs: Option<&CStr>) -> io::Result<()> {
    let Some(procs) = procs else {
        return Ok(());
    };
    // SAFETY: open/write/close on a NUL-terminated path built before the fork and a static
    // buffer: async-signal-safe, no allocation.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let error = io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(error);
        }
    }
    Ok(())
}

/// Runs in the child between fork and exec, after std has put the slave on fds 0, 1 and 2:
/// new session, the slave as its controlling terminal, every other fd closed at exec.
fn become_session_leader() -> io::Result<()> {
    // SAFETY: plain system calls on integers and a stack-allocated struct; no allocation, no
    // locks (async-signal-safe, as fork in a threaded process requires).
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    default_signal_dispositions();
    mark_fds_cloexec();
    Ok(())
}

/// Every signal back to its default action. A signal ignored by whoever started the server
/// (`nohup`, `cmd &` in a script: SIGINT and SIGQUIT ignored) stays ignored across exec, and a
/// shell that starts with SIGINT ignored can never undo it: ^C would do nothing in any session.
/// std resets only SIGPIPE (and the mask). Async-signal-safe: runs between fork and exec.
fn default_signal_dispositions() {
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: `signal` with SIG_DFL is async-signal-safe; failures (numbers the kernel
            // reserves) change nothing and are ignored.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
}

/// `pre_exec` of a headless child (pipes, no PTY): a new session (so its own process group,
/// signalled as a whole), no controlling terminal, every fd ≥ 3 closed at exec.
fn become_session_leader_without_tty() -> io::Result<()> {
    // SAFETY: as in `become_session_leader`: async-signal-safe system calls only.
    unsafe {
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    default_signal_dispositions();
    mark_fds_cloexec();
    Ok(())
}

/// Marks every fd ≥ 3 close-on-exec (`close_range`, or a loop on kernels before 5.11).
/// Async-signal-safe: runs between fork and exec.
fn mark_fds_cloexec() {
    // SAFETY: plain system calls on integers and a stack-allocated struct; no allocation.
    unsafe {
        let first_fd: libc::c_uint = 3;
        let marked = libc::syscall(
            libc::SYS_close_range,
            first_fd,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if marked != 0 {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            let fd_count = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(FALLBACK_MAX_FD_COUNT)
            } else {
                FALLBACK_MAX_FD_COUNT
            };
            for fd in first_fd as libc::c_int..fd_count as libc::c_int {
                // EBADF for fds that are not open is expected and harmless.
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::test_support::{command, kill_and_reap, read_to_end, read_until, sh, within};
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use nix::fcntl::{fcntl, FcntlArg};

    /// A server started with SIGINT and SIGQUIT ignored (`nohup`, `cmd &` in a script) still
    /// gives its sessions a terminal where ^C works: the child starts with default actions.
    #[tokio::test]
    async fn a_child_starts_with_default_signal_actions_even_if_the_server_ignores_some() {
        // SAFETY: process-wide dispositions, restored right after the spawn.
        let (int, quit) = unsafe {
            (
                libc::signal(libc::SIGINT, libc::SIG_IGN),
                libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            )
        };
        let spawned = spawn(&sh("grep SigIgn /proc/self/status; echo END"));
        // SAFETY: as above.
        unsafe {
            libc::signal(libc::SIGINT, int);
            libc::signal(libc::SIGQUIT, quit);
        }
        let SpawnedPty {
            mut reader,
            mut child,
            ..
        } = spawned.expect("spawn");
        let mut out = Vec::new();
        read_until(&mut reader, &mut out, b"END").await;
        let text = String::from_utf8_lossy(&out);
        let mask = text
            .lines()
            .find_map(|l| l.strip_prefix("SigIgn:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).expect("hex mask"))
            .expect("a SigIgn line");
        for signal in [libc::SIGINT, libc::SIGQUIT] {
            assert_eq!(
                mask & (1 << (signal - 1)),
                0,
                "signal {signal} ignored: {text}"
            );
        }
        kill_and_reap(&mut child).await;
    }

    fn open_fds(pid: i32) -> BTreeSet<i32> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("list child fds")
            .map(|entry| {
                let name = entry.expect("fd entry").file_name();
                name.to_string_lossy().parse().expect("numeric fd")
            })
            .collect()
    }

    /// Waits until `cat` has echoed a line: past its start-up (where libc opens locale files
    /// for a moment) and blocked reading its terminal, so its fd table is settled.
    async fn settle_cat(spawned: &mut SpawnedPty) {
        spawned.writer.write_all(b"ping\n").await.expect("write");
        let mut out = Vec::new();
        read_until(&mut spawned.reader, &mut out, b"ping\r\nping\r\n").await;
    }

    fn assert_holds_only_its_terminal(pid: i32) {
        let fds = open_fds(pid);
        let targets: Vec<_> = fds
            .iter()
            .map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")))
            .collect();
        assert_eq!(fds, BTreeSet::from([0, 1, 2]), "fds of {pid}: {targets:?}");
        let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("readlink fd 0");
        assert!(stdin.starts_with("/dev/pts/"), "fd 0 is {stdin:?}");
    }

    #[tokio::test]
    async fn zero_sizes_are_rejected() {
        let mut cmd = command("true", &[]);
        cmd.size = WindowSize { cols: 0, rows: 24 };
        assert!(matches!(spawn(&cmd), Err(PtyError::InvalidSize { .. })));
    }

    #[tokio::test]
    async fn child_holds_only_its_terminal_even_when_the_server_leaks_fds() {
        // An fd without close-on-exec, as a careless library or the launcher could leave.
        // SAFETY: open(2) with a NUL-terminated path; the fd is closed below.
        let leaked = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(leaked >= 3);
        let spawned = spawn(&command("cat", &[]));
        // SAFETY: `leaked` was opened above and nothing else owns it.
        unsafe { libc::close(leaked) };
        let mut spawned = spawned.expect("spawn cat");
        settle_cat(&mut spawned).await;
        assert_holds_only_its_terminal(spawned.child.pid());
        kill_and_reap(&mut spawned.child).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_spawns_from_threads_each_hold_only_their_terminal() {
        const THREAD_COUNT: usize = 5;
        let runtime = tokio::runtime::Handle::current();
        let start = std::sync::Barrier::new(THREAD_COUNT);
        let mut spawned: Vec<SpawnedPty> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREAD_COUNT)
                .map(|_| {
                    scope.spawn(|| {
                        let _runtime = runtime.enter();
                        start.wait();
                        spawn(&command("cat", &[])).expect("spawn cat")
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|thread| thread.join().expect("spawning thread"))
                .collect()
        });
        for each in &mut spawned {
            settle_cat(each).await;
            assert_holds_only_its_terminal(each.child.pid());
        }
        for each in &mut spawned {
            kill_and_reap(&mut each.child).await;
        }
    }

    #[tokio::test]
    async fn environment_has_terminal_defaults_and_session_overrides() {
        let mut cmd = sh(r#"printf '%s|%s|%s|%s|' "$TERM" "$COLORTERM" "$SESSION_VAR" "$LANG""#);
        cmd.env = vec![
            ("SESSION_VAR".to_owned(), "from session".to_owned()),
            ("COLORTERM".to_owned(), "overridden".to_owned()),
        ];
        let mut spawned = spawn(&cmd).expect("spawn");
        let out = String::from_utf8(read_to_end(&mut spawned.reader).await).expect("utf-8");
        let fields: Vec<&str> = out.split('|').collect();
        assert_eq!(
            &fields[..3],
            ["xterm-256color", "overridden", "from session"]
        );
        assert!(!fields[3].is_empty(), "LANG is set: {out:?}");
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[tokio::test]
    async fn child_runs_in_cwd_with_argv_passed_verbatim() {
        let mut cmd = command(
            "sh",
            &["-c", r#"printf '%s|%s|' "$PWD" "$1""#, "argv0", "a b;$(x)"],
        );
        cmd.cwd = PathBuf::from("/tmp");
        let mut spawned = spawn(&cmd).expect("spawn");
        let out = read_to_end(&mut spawned.reader).await;
        assert_eq!(out, b"/tmp|a b;$(x)|");
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[tokio::test]
    async fn missing_command_and_cwd_fail_before_spawning() {
        let missing = command("no-such-command-claude-manager", &[]);
        assert!(matches!(
            spawn(&missing),
            Err(PtyError::CommandNotFound { .. })
        ));
        let mut bad_cwd = command("true", &[]);
        bad_cwd.cwd = PathBuf::from("/no/such/dir");
        assert!(matches!(spawn(&bad_cwd), Err(PtyError::InvalidCwd { .. })));
    }

    #[tokio::test]
    async fn child_is_session_leader_with_the_pty_as_controlling_terminal() {
        // `ps` prints the session id, process group and controlling tty of the shell itself.
        let mut spawned = spawn(&sh("ps -o sid=,pgid=,tty= -p $$")).expect("spawn");
        let pid = spawned.child.pid();
        let out = String::from_utf8(read_to_end(&mut spawned.reader).await).expect("utf-8");
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(fields[..2], [pid.to_string(), pid.to_string()]);
        assert!(fields[2].starts_with("pts/"), "tty is {out:?}");
        assert_eq!(spawned.child.pgid(), pid);
        within("exit", spawned.child.wait()).await.expect("wait");
    }

    #[test]
    fn pty_fds_are_close_on_exec_from_the_start() {
        let (master, slave) = open_pty().expect("open pty");
        for fd in [master.as_fd(), slave.as_fd()] {
            let flags = fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD");
            assert_ne!(flags & libc::FD_CLOEXEC, 0);
        }
    }
}
