//! The deployment files: the systemd unit verifies, the scripts pass bash -n and shellcheck,
//! the example config is accepted by the binary.

mod common;
use std::path::Path;
use std::process::Command;

fn repo(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn systemd_unit_verifies() {
    // The unit names the installed path; point it at the binary under test.
    let unit = std::fs::read_to_string(repo("deploy/claude-manager.service")).unwrap();
    let unit = unit.replace(
        "/usr/local/bin/claude-manager",
        common::binary().to_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claude-manager.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (scripts/test installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

#[test]
fn unit_keeps_what_terminals_need() {
    let unit = std::fs::read_to_string(repo("deploy/claude-manager.service")).unwrap();
    for line in [
        "Type=notify",
        "KillMode=mixed",
        "Environment=TERM=xterm-256color",
        "Restart=on-failure",
        "PrivateTmp=no",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l.trim() == line), "unit lacks {line}");
    }
    assert!(
        unit.contains("WatchdogSec=")
            && unit.contains("TimeoutStopSec=")
            && unit.contains("LimitNOFILE=")
    );
}

#[test]
fn scripts_pass_bash_n_and_shellcheck() {
    for script in [
        "deploy/install.sh",
        "bench/http.sh",
        ".ci/run",
        "scripts/test",
    ] {
        let path = repo(script);
        let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("shellcheck")
            .arg(&path)
            .output()
            .expect("shellcheck is installed (scripts/test installs it)");
        assert!(
            out.status.success(),
            "shellcheck {script}:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn example_config_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::binary())
        .args(["migrate", "--config"])
        .arg(repo("deploy/config.example.toml"))
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
