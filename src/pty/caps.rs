//! Per-session caps: `memory_max_bytes` and `pids_max` (a terminal request's, or an agent
//! definition's for its sessions), written to the session's own cgroup (`memory.max`,
//! `pids.max`) before its child joins it, so they hold for the whole process tree.
//!
//! They need the cgroup v2 `memory` and `pids` controllers on the session cgroups: the server
//! enables them in its sessions directory when that directory is offered them (a delegated
//! subtree: `Delegate=yes` with the controllers enabled above it). Where they are not, a request
//! with a cap is refused (422 naming the field) — never silently run uncapped. A session the
//! kernel's OOM killer ended inside its cap is recorded with that reason (`memory.events`
//! `oom_kill`).

use std::fs;
use std::io;
use std::path::Path;

/// The caps of one session; `None` = not capped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub memory_max_bytes: Option<u64>,
    pub pids_max: Option<u64>,
}

/// Smallest memory cap accepted: below this not even a shell starts (4 MiB).
pub const MEMORY_MAX_BYTES_MIN: u64 = 4 << 20;
/// Largest memory cap accepted (1 TiB): more is a typo, not a machine.
pub const MEMORY_MAX_BYTES_MAX: u64 = 1 << 40;
/// Largest `pids_max` accepted: the kernel's own limit on pids (`PID_MAX_LIMIT`, 2^22).
pub const PIDS_MAX_MAX: u64 = 1 << 22;

impl Caps {
    pub fn is_empty(&self) -> bool {
        self.memory_max_bytes.is_none() && self.pids_max.is_none()
    }
}

/// The controllers a session cgroup has (its parent's `cgroup.subtree_control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controllers {
    pub memory: bool,
    pub pids: bool,
}

impl Controllers {
    /// Enables `memory` and `pids` for the children of `dir` where `dir` is offered them, and
    /// says which the children have. `dir` holds no process of its own (cgroup v2's "no
    /// internal processes" rule would refuse), so this fails only for lack of delegation.
    pub fn enable(dir: &Path) -> Controllers {
        let offered = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        for name in ["memory", "pids"] {
            if offered.split_whitespace().any(|c| c == name) {
                let _ = fs::write(dir.join("cgroup.subtree_control"), format!("+{name}"));
            }
        }
        let on = fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        let has = |name: &str| on.split_whitespace().any(|c| c == name);
        Controllers {
            memory: has("memory"),
            pids: has("pids"),
        }
    }

    /// The first cap in `caps` these controllers cannot enforce: `(field, controller)`.
    pub fn missing_for(&self, caps: &Caps) -> Option<(&'static str, &'static str)> {
        if caps.memory_max_bytes.is_some() && !self.memory {
            return Some(("memory_max_bytes", "memory"));
        }
        if caps.pids_max.is_some() && !self.pids {
            return Some(("pids_max", "pids"));
        }
        None
    }
}

/// Writes `caps` into the (still empty) session cgroup `dir`. With a memory cap, swap is capped
/// at 0 too where the kernel has swap accounting: a capped session is stopped at its cap, not
/// slowed down into swap.
pub fn apply(dir: &Path, caps: &Caps) -> io::Result<()> {
    if let Some(bytes) = caps.memory_max_bytes {
        fs::write(dir.join("memory.max"), bytes.to_string())?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            fs::write(swap, "0")?;
        }
    }
    if let Some(n) = caps.pids_max {
        fs::write(dir.join("pids.max"), n.to_string())?;
    }
    Ok(())
}

/// Processes of the cgroup the kernel's OOM killer ended (`oom_kill` in `memory.events`).
pub fn oom_kills(dir: &Path) -> u64 {
    fs::read_to_string(dir.join("memory.events"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Why a session whose cgroup is `dir` ended, when its memory cap did it.
pub fn cap_kill_reason(dir: &Path) -> Option<String> {
    let kills = oom_kills(dir);
    if kills == 0 {
        return None;
    }
    let max = fs::read_to_string(dir.join("memory.max")).unwrap_or_default();
    Some(format!(
        "killed by its memory cap (memory_max_bytes = {}): the kernel's OOM killer ended {kills} \
         of its processes",
        max.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_names_the_controller_it_lacks() {
        let none = Controllers::default();
        let memory_only = Controllers {
            memory: true,
            pids: false,
        };
        let caps = Caps {
            memory_max_bytes: Some(1 << 30),
            pids_max: Some(100),
        };
        assert_eq!(
            none.missing_for(&caps),
            Some(("memory_max_bytes", "memory"))
        );
        assert_eq!(memory_only.missing_for(&caps), Some(("pids_max", "pids")));
        assert_eq!(none.missing_for(&Caps::default()), None);
    }

    #[test]
    fn oom_kills_are_read_from_memory_events() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(oom_kills(dir.path()), 0);
        fs::write(
            dir.path().join("memory.events"),
            "low 0\nhigh 0\nmax 5\noom 1\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        fs::write(dir.path().join("memory.max"), "8388608\n").unwrap();
        assert_eq!(oom_kills(dir.path()), 2);
        let why = cap_kill_reason(dir.path()).unwrap();
        assert!(why.contains("memory_max_bytes = 8388608"), "{why}");
    }
}
