//! Session cgroups: one cgroup2 directory per session, so its whole process tree — background
//! jobs in other process groups, processes that called `setsid()`, ones that ignore every
//! catchable signal — is ended at once by writing `1` to its `cgroup.kill`.
//!
//! Where they go (`session_cgroups`): `auto` takes the server's own cgroup (the `0::` line of
//! `/proc/self/cgroup`) under the cgroup2 mount named in `/proc/self/mountinfo` (`/sys/fs/cgroup`
//! on a unified host, `/sys/fs/cgroup/unified` on a hybrid one) and creates
//! [`SESSIONS_DIR`] in it; under systemd that is the service's own cgroup, delegated to it by
//! `Delegate=yes`. A directory named in the setting is used as it is. When `auto` finds nothing
//! writable the server runs without cgroups (the `/proc` walk in `tree.rs`) and says so in its
//! start log. All of this is a few small reads and writes in a kernel filesystem: quick enough
//! for async code.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::caps::Controllers;
use crate::config::CgroupSetting;

/// The directory made in the server's own cgroup (`auto`) to hold one cgroup per session.
pub const SESSIONS_DIR: &str = "claude-manager-sessions";

/// Where session cgroups are created.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
    /// What the session cgroups can be capped with (`caps.rs`).
    controllers: Controllers,
}

impl CgroupRoot {
    /// The root `setting` names: `Ok(None)` for `off`, an error saying why for a directory that
    /// cannot be used (`auto` callers fall back to running without cgroups).
    pub fn discover(setting: &CgroupSetting) -> Result<Option<CgroupRoot>, String> {
        let dir = match setting {
            CgroupSetting::Off => return Ok(None),
            CgroupSetting::Dir(dir) => dir.clone(),
            CgroupSetting::Auto => own_cgroup()?.join(SESSIONS_DIR),
        };
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if !dir.join("cgroup.procs").is_file() {
            return Err(format!("{} is not in a cgroup2 hierarchy", dir.display()));
        }
        let controllers = Controllers::enable(&dir);
        Ok(Some(CgroupRoot { dir, controllers }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn controllers(&self) -> Controllers {
        self.controllers
    }

    /// Creates the (empty) cgroup `name` for one session; the child joins it before `exec`.
    pub fn create(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(name);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(dir),
        }
    }
}

/// The server's own cgroup2 directory.
fn own_cgroup() -> Result<PathBuf, String> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("the server is in no cgroup2 hierarchy (no 0:: line in /proc/self/cgroup)")?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 filesystem is mounted")?;
    Ok(mount.join(own.trim().trim_start_matches('/')))
}

/// The mount point of the cgroup2 filesystem in `/proc/self/mountinfo` (proc(5): the fifth
/// field is the mount point; the filesystem type follows the ` - ` separator).
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        (rest.split_whitespace().next()? == "cgroup2")
            .then(|| fields.split_whitespace().nth(4).map(PathBuf::from))?
    })
}

/// Kills every process in the cgroup at once (`cgroup.kill`, Linux ≥ 5.14).
pub fn kill(dir: &Path) -> io::Result<()> {
    fs::write(dir.join("cgroup.kill"), b"1")
}

/// The pids in the cgroup now (empty when it is gone).
pub fn procs(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Whether any live process is left in the cgroup (`populated` in `cgroup.events`).
pub fn populated(dir: &Path) -> bool {
    fs::read_to_string(dir.join("cgroup.events"))
        .map(|s| s.lines().any(|l| l.trim() == "populated 1"))
        .unwrap_or(false)
}

/// Removes an empty cgroup; one already gone is not an error.
pub fn remove(dir: &Path) -> io::Result<()> {
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_among_v1_mounts() {
        let hybrid = "\
35 25 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
41 35 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 35 0:39 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let unified = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        assert_eq!(
            cgroup2_mount("42 35 0:39 / /x rw - cgroup cgroup rw\n"),
            None
        );
    }
}
