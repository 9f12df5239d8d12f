//! Builds the web UI (`web/` → `web/dist`) so that `cargo build` alone yields a binary serving the
//! current UI: `npm ci` when the lockfile changed, then `npm run build`, re-run only when a UI
//! source changes. `src/http/assets.rs` embeds `web/dist` into the binary.
//!
//! `CM_SKIP_WEB_BUILD=1` skips npm (a server-only build, e.g. without Node): whatever is in
//! `web/dist` is embedded, or a page saying the UI was not built.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &[
    "public",
    "scripts",
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = root.join("web");
    for s in SOURCES {
        println!("cargo:rerun-if-changed=web/{s}");
    }
    println!("cargo:rerun-if-env-changed=CM_SKIP_WEB_BUILD");
    let dist = web.join("dist");
    if std::env::var_os("CM_SKIP_WEB_BUILD").is_some_and(|v| v == "1") {
        placeholder(&dist);
        return;
    }
    let npm =
        find_on_path("npm").unwrap_or_else(|| fail(&format!("npm not found on PATH. {NEEDS}")));
    check_node();
    if needs_install(&web) {
        run(&npm, &["ci", "--no-audit", "--no-fund"], &web);
    }
    run(&npm, &["run", "build"], &web);
    if !dist.join("index.html").is_file() {
        fail("`npm run build` finished but web/dist/index.html is missing");
    }
}

/// `npm ci` is needed when node_modules is missing or older than the lockfile.
fn needs_install(web: &Path) -> bool {
    let stamp = web.join("node_modules/.package-lock.json");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    match (modified(&stamp), modified(&web.join("package-lock.json"))) {
        (Some(installed), Some(lock)) => lock > installed,
        _ => true,
    }
}

/// What the UI build needs, said once for every failure about it.
const NEEDS: &str = "The web UI is built with Node.js >= 20.19 (or >= 22.12) and npm >= 10, \
     which Debian 12 and Ubuntu 22.04/24.04 do not ship: see docs/deployment/linux-cloud.md \
     (step 2) for how to get them, or set CM_SKIP_WEB_BUILD=1 to build the server without the UI.";

/// Fails early, with [`NEEDS`], on a Node.js older than Vite accepts (`^20.19 || >=22.12`),
/// instead of letting the build die with a syntax or module error.
fn check_node() {
    let node =
        find_on_path("node").unwrap_or_else(|| fail(&format!("node not found on PATH. {NEEDS}")));
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut parts = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let supported = (major == 20 && minor >= 19) || (major == 22 && minor >= 12) || major >= 23;
    if !supported {
        fail(&format!(
            "{} is Node.js {version:?}. {NEEDS}",
            node.display()
        ));
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn run(npm: &Path, args: &[&str], dir: &Path) {
    let status = Command::new(npm)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| {
            fail(&format!(
                "cannot run {} {}: {e}",
                npm.display(),
                args.join(" ")
            ))
        });
    if !status.success() {
        fail(&format!(
            "`npm {}` in web/ failed ({status}); its output is above",
            args.join(" ")
        ));
    }
}

/// Without a built UI, embed a page that says so (the API works either way).
fn placeholder(dist: &Path) {
    if dist.join("index.html").is_file() {
        return;
    }
    let page = "<!doctype html><meta charset=utf-8><title>claude-manager</title>\
                <p>This binary was built with CM_SKIP_WEB_BUILD=1: the web UI is not included. \
                The API under /api works.</p>\n";
    if let Err(e) =
        std::fs::create_dir_all(dist).and_then(|_| std::fs::write(dist.join("index.html"), page))
    {
        fail(&format!("cannot write {}: {e}", dist.display()));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    panic!("web UI build failed: {msg}");
}
