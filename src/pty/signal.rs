//! The one place that signals process groups. A pgid whose leader has been reaped may have been
//! handed to an unrelated process since, so such a group is signalled only after checking the
//! leader's start time recorded at spawn (`/proc/<pid>/stat`).

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{getpgrp, Pid};

use super::PtyError;

/// Field number of `starttime` in `/proc/<pid>/stat` (proc(5)), counting from 1.
const STAT_FIELD_STARTTIME: usize = 22;
/// Field number of `state`, the first field after the parenthesised `comm`.
const STAT_FIELD_STATE: usize = 3;
/// Field numbers of the process group and the session id.
const STAT_FIELD_PGRP: usize = 5;
const STAT_FIELD_SESSION: usize = 6;

/// What happened to a signal sent to a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    Delivered,
    /// No process is left in the group: nothing to do.
    NoSuchGroup,
    /// The pid now belongs to a different process (its start time differs): not signalled.
    PidReused,
}

/// Sends `signal` to process group `pgid`. A group that no longer exists is
/// `Ok(SignalOutcome::NoSuchGroup)`. Refuses pgid ≤ 1 and the server's own group, where
/// `killpg` would hit the server or every process.
pub fn signal_group(pgid: i32, signal: Signal) -> Result<SignalOutcome, PtyError> {
    if pgid <= 1 || pgid == getpgrp().as_raw() {
        return Err(PtyError::ForbiddenProcessGroup(pgid));
    }
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) => Ok(SignalOutcome::Delivered),
        Err(Errno::ESRCH) => Ok(SignalOutcome::NoSuchGroup),
        Err(source) => Err(PtyError::Signal {
            pgid,
            signal,
            source,
        }),
    }
}

/// Signals a group known only by a stored pgid and its leader's recorded start time.
///
/// If a process with that pid exists but started at another time, the pid was reused: nothing
/// is sent. If none exists, the group is signalled: Linux does not hand out a pid while it is
/// still some process's group id, so the group is either ours or gone.
pub fn signal_recorded_group(
    pgid: i32,
    start_time: u64,
    signal: Signal,
) -> Result<SignalOutcome, PtyError> {
    match process_start_time(pgid) {
        Some(current) if current != start_time => Ok(SignalOutcome::PidReused),
        _ => signal_group(pgid, signal),
    }
}

/// The `starttime` of a process (clock ticks after boot), or `None` if there is no such process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|stat| stat.start_time)
}

/// The fields of `/proc/<pid>/stat` the server needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub pgrp: i32,
    pub session: i32,
    pub start_time: u64,
    /// The state letter: `R` running, `S` sleeping, `T` stopped, `Z` exited but not reaped, …
    pub state: char,
}

impl ProcStat {
    /// Exited, not yet reaped: holds nothing but its pid.
    pub fn zombie(&self) -> bool {
        self.state == 'Z'
    }
}

pub(super) fn read_stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

#[cfg(test)]
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    parse_stat(stat).map(|s| s.start_time)
}

/// Parses `/proc/<pid>/stat`. The command name in field 2 may contain spaces, `)` and even
/// non-UTF-8 bytes, so the fields are counted from the last `)`.
fn parse_stat(stat: &[u8]) -> Option<ProcStat> {
    let comm_end = stat.iter().rposition(|&b| b == b')')?;
    let after_comm = std::str::from_utf8(&stat[comm_end + 1..]).ok()?;
    let fields: Vec<&str> = after_comm.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - STAT_FIELD_STATE).copied();
    Some(ProcStat {
        pgrp: field(STAT_FIELD_PGRP)?.parse().ok()?,
        session: field(STAT_FIELD_SESSION)?.parse().ok()?,
        start_time: field(STAT_FIELD_STARTTIME)?.parse().ok()?,
        state: field(STAT_FIELD_STATE)?.chars().next()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pty::spawn;
    use crate::pty::test_support::{command, within};

    #[tokio::test]
    async fn signals_check_the_recorded_start_time() {
        let mut spawned = spawn(&command("sleep", &["30"])).expect("spawn");
        let pgid = spawned.child.pgid();
        let start_time = spawned.child.start_time().expect("start time recorded");
        assert_eq!(process_start_time(pgid), Some(start_time));
        assert_eq!(
            signal_recorded_group(pgid, start_time + 1, Signal::SIGKILL).expect("signal"),
            SignalOutcome::PidReused
        );
        assert_eq!(
            signal_recorded_group(pgid, start_time, Signal::SIGKILL).expect("signal"),
            SignalOutcome::Delivered
        );
        let exit = within("exit", spawned.child.wait()).await.expect("wait");
        assert_eq!(exit.signal, Some(libc::SIGKILL));
        assert_eq!(
            spawned.child.signal_tree(Signal::SIGTERM).expect("signal"),
            SignalOutcome::NoSuchGroup
        );
    }

    #[test]
    fn signalling_init_everyone_or_ourselves_is_refused() {
        let own_group = getpgrp().as_raw();
        for pgid in [-1, 0, 1, own_group] {
            assert!(matches!(
                signal_group(pgid, Signal::SIGTERM),
                Err(PtyError::ForbiddenProcessGroup(_))
            ));
        }
    }

    #[test]
    fn start_time_is_field_22_even_with_parens_in_the_name() {
        // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
        let stat = b"4242 (evil) (name) x) S 1 4242 4242 0 -1 4194560 \
            100 0 0 0 1 2 0 0 20 0 1 0 987654321 1000 200 18446744073709551615\n";
        assert_eq!(parse_start_time(stat), Some(987_654_321));
        let non_utf8 = b"7 (\xff\xfe)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 1 1\n";
        assert_eq!(parse_start_time(non_utf8), Some(55));
        assert_eq!(parse_start_time(b"7 (short) R 1 2"), None);
        assert_eq!(parse_start_time(b"no parens at all"), None);
    }

    #[test]
    fn start_time_of_a_live_process_and_of_none() {
        let own_pid = i32::try_from(std::process::id()).expect("pid fits");
        assert!(process_start_time(own_pid).is_some());
        assert_eq!(process_start_time(0), None);
        assert_eq!(process_start_time(-5), None);
    }
}
