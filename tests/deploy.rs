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
        "KillMode=process",
        "FileDescriptorStoreMax=4096",
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
        .args(["migrate", "--create", "--config"])
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

#[test]
fn install_migrates_with_the_new_binary_after_the_old_server_stopped() {
    // Running install.sh needs systemd as PID 1 and root over /etc: the order of its steps is
    // what is checked here, line by line.
    let script = std::fs::read_to_string(repo("deploy/install.sh")).unwrap();
    let line_of = |needle: &str| {
        script
            .lines()
            .position(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("install.sh has no line starting {needle:?}"))
    };
    let stop = line_of("systemctl stop \"$SERVICE\"");
    let new_binary = line_of("install -m 0755 \"$binary\" \"$PREFIX/bin/claude-manager\"");
    let migrate = line_of("if ! cm migrate --create; then");
    let start = line_of("systemctl start \"$SERVICE\"");
    assert!(stop < migrate && new_binary < migrate && migrate < start);
    // `cm` is the installed (new) binary with the service's config file: its data dir.
    let cm = line_of("cm() {");
    assert!(
        script
            .lines()
            .nth(cm)
            .unwrap()
            .contains("\"$PREFIX/bin/claude-manager\" \"$@\" --config \"$CONF_DIR/config.toml\""),
        "cm() must run the installed binary with the service's config"
    );
    assert!(
        !script.contains("systemctl restart"),
        "restart would migrate after the tokens"
    );
}

#[test]
fn the_unit_and_the_commands_read_the_data_dir_from_one_config_file() {
    let unit = std::fs::read_to_string(repo("deploy/claude-manager.service")).unwrap();
    assert!(
        unit.contains("serve --config /etc/claude-manager/config.toml"),
        "ExecStart names the config that commands run by hand read too"
    );
    assert!(
        !unit.contains("CM_DATA_DIR"),
        "a data dir set in the unit is invisible to `claude-manager token …` run by hand"
    );
    let example = std::fs::read_to_string(repo("deploy/config.example.toml")).unwrap();
    assert!(example.contains("\ndata_dir = \"/var/lib/claude-manager\""));
}
