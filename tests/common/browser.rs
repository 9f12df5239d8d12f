//! Browser tests: `web/tests/<name>.test.mjs` run by Node (playwright-core driving Debian's
//! Chromium) against a server the calling test started.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");
/// One browser test, all its steps included; each step inside waits at most 20 s.
const TEST_BOUND: Duration = Duration::from_secs(240);

/// `CM_SKIP_BROWSER_TESTS=1` skips browser tests knowingly (said on stderr).
pub fn skipped(name: &str) -> bool {
    let skip = std::env::var_os("CM_SKIP_BROWSER_TESTS").is_some_and(|v| v == "1");
    if skip {
        eprintln!("CM_SKIP_BROWSER_TESTS=1: browser test {name} skipped");
    }
    skip
}

/// Runs `web/tests/<name>.test.mjs` with `env` (CM_URL, CM_TOKEN, …) added to the Chromium and
/// screenshot settings, bounded; fails the test when it fails.
pub async fn run(name: &str, env: &[(&str, OsString)]) {
    let chromium = std::env::var("CM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: browser tests need Debian's Chromium (apt-get install chromium), \
         or CM_SKIP_BROWSER_TESTS=1 to skip them"
    );
    let mut child = tokio::process::Command::new("node")
        .arg(format!("tests/{name}.test.mjs"))
        .current_dir(Path::new(MANIFEST).join("web"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(
            "CM_SHOT_DIR",
            Path::new(MANIFEST).join("target/web-screenshots"),
        )
        .env("CM_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node.js is needed to build and test the UI)");
    let status = tokio::time::timeout(TEST_BOUND, child.wait())
        .await
        .unwrap_or_else(|_| panic!("browser test {name} still running after {TEST_BOUND:?}"))
        .expect("node exit status");
    assert!(
        status.success(),
        "browser test {name} failed: {status} (output above)"
    );
}
