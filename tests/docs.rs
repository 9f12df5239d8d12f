//! The docs against the code: every setting has a row and is a config-file key, every error code
//! the server sends is in the one table, there is one exit-code table, every repository path a
//! doc names exists, and no page reads like a project log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir` (recursively) whose name ends with `ext`.
fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.to_string_lossy().ends_with(ext) {
            out.push(path);
        }
    }
}

/// README.md and every page under docs/.
fn doc_pages() -> Vec<PathBuf> {
    let mut pages = vec![repo().join("README.md")];
    files_under(&repo().join("docs"), ".md", &mut pages);
    pages
}

/// The `(--flag, CM_VAR)` pairs `serve --help` lists: the settings as the code declares them.
fn serve_settings() -> Vec<(String, String)> {
    let out = Command::new(common::binary())
        .args(["serve", "--help"])
        .env_remove("CM_CONFIG")
        .env_remove("CM_DATA_DIR")
        .output()
        .expect("serve --help runs");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut settings = Vec::new();
    let mut flag: Option<String> = None;
    for line in help.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("--") {
            flag = Some(format!(
                "--{}",
                rest.split([' ', '\t']).next().unwrap_or_default()
            ));
        }
        if let (Some(f), Some(env)) = (&flag, line.split("[env: ").nth(1)) {
            let var = env.split(['=', ']']).next().unwrap_or_default();
            settings.push((f.clone(), var.to_string()));
            flag = None;
        }
    }
    assert!(settings.len() > 20, "parsed too few settings from:\n{help}");
    settings
}

#[test]
fn every_setting_has_a_row_in_the_configuration_reference() {
    let doc = read(&repo().join("docs/configuration.md"));
    let rows: Vec<&str> = doc.lines().filter(|l| l.starts_with("| `--")).collect();
    let settings = serve_settings();
    for (flag, var) in &settings {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{flag}` |")))
            .unwrap_or_else(|| panic!("docs/configuration.md has no row for {flag} ({var})"));
        assert!(
            row.contains(&format!("`{var}`")),
            "the row for {flag} does not name {var}: {row}"
        );
    }
    for row in rows {
        assert!(
            settings
                .iter()
                .any(|(flag, _)| row.starts_with(&format!("| `{flag}` |"))),
            "docs/configuration.md documents a setting `serve` does not have: {row}"
        );
    }
}

#[test]
fn every_setting_but_config_is_a_config_file_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("one-key.toml");
    for (flag, _) in serve_settings() {
        if flag == "--config" {
            continue;
        }
        let key = flag.trim_start_matches("--").replace('-', "_");
        // A value no setting accepts: the error must be about the value, not the key.
        std::fs::write(&file, format!("{key} = \"\\u0000\"\n")).expect("write config");
        let out = Command::new(common::binary())
            .arg("migrate")
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(dir.path().join("never"))
            .env_remove("CM_CONFIG")
            .env_remove("CM_DATA_DIR")
            .output()
            .expect("migrate runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("unknown field"),
            "{key} is not accepted in the config file: {err}"
        );
    }
}

#[test]
fn the_example_config_names_every_setting() {
    let example = read(&repo().join("deploy/config.example.toml"));
    for (flag, _) in serve_settings() {
        let key = flag.trim_start_matches("--").replace('-', "_");
        let named = example.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} ="))
        });
        assert!(
            named || flag == "--config",
            "deploy/config.example.toml does not name {key}"
        );
    }
}

/// The error codes the server can send: the code literal of every `ApiError::new(…)` and
/// `ApiError::conflict(…)` in src/, and of `Self::new(…)` in src/error.rs.
fn error_codes_in_source() -> Vec<String> {
    let mut files = Vec::new();
    files_under(&repo().join("src"), ".rs", &mut files);
    let mut codes = Vec::new();
    for file in files {
        let text = read(&file);
        let mut calls = vec!["ApiError::new(", "ApiError::conflict("];
        if file.ends_with("src/error.rs") {
            calls.push("Self::new(");
        }
        for call in calls {
            for (at, _) in text.match_indices(call) {
                let after = &text[at + call.len()..];
                let window = &after[..after.len().min(300)];
                let Some(literal) = window.split('"').nth(1) else {
                    continue;
                };
                let is_code = !literal.is_empty()
                    && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                if is_code && !codes.iter().any(|c| c == literal) {
                    codes.push(literal.to_string());
                }
            }
        }
    }
    assert!(codes.len() > 10, "found too few error codes: {codes:?}");
    codes
}

#[test]
fn every_error_code_the_server_sends_is_in_the_one_table() {
    let api = read(&repo().join("docs/api.md"));
    let table: Vec<&str> = api
        .lines()
        .skip_while(|l| !l.starts_with("| status | code | when |"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(!table.is_empty(), "docs/api.md has no error-code table");
    let codes = error_codes_in_source();
    for code in &codes {
        assert!(
            table.iter().any(|r| r.contains(&format!("| `{code}` |"))),
            "error code {code} is sent by the server but missing from docs/api.md's table"
        );
    }
    for row in table.iter().skip(2) {
        let code = row.split('`').nth(1).unwrap_or_default();
        assert!(
            codes.iter().any(|c| c == code),
            "docs/api.md lists {code:?}, which the server never sends"
        );
    }
    for page in doc_pages() {
        let count = read(&page).matches("| status | code | when |").count();
        let expected = usize::from(page.ends_with("docs/api.md"));
        assert_eq!(count, expected, "error-code tables in {}", page.display());
    }
}

#[test]
fn there_is_one_exit_code_table() {
    for page in doc_pages() {
        let count = read(&page).matches("| code | meaning |").count();
        let expected = usize::from(page.ends_with("docs/cli.md"));
        assert_eq!(count, expected, "exit-code tables in {}", page.display());
    }
}

/// Whether `token` names a path in this repository (rather than on a server or in a URL).
fn names_repo_path(token: &str) -> bool {
    const ROOTS: [&str; 8] = [
        "src/", "tests/", "deploy/", "docs/", "bench/", "web/", ".ci/", "scripts/",
    ];
    const FILES: [&str; 4] = ["build.rs", "schema.sql", "Cargo.toml", "Cargo.lock"];
    ROOTS.iter().any(|r| token.starts_with(r)) || FILES.contains(&token)
}

/// The page without its fenced code blocks (commands and examples, not references).
fn outside_code_blocks(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_repository_path_a_doc_names_exists() {
    let mut missing = Vec::new();
    for page in doc_pages() {
        let text = outside_code_blocks(&read(&page));
        // `code spans` that name a repository path (no placeholders or globs).
        for (i, span) in text.split('`').enumerate() {
            let path = span.split(['#', ':']).next().unwrap_or_default();
            let literal = !path.contains(['{', '}', '*', '<', ' ']);
            if i % 2 == 1 && literal && names_repo_path(path) && !repo().join(path).exists() {
                missing.push(format!("{}: `{span}`", page.display()));
            }
        }
        // [relative links](to/files), resolved from the page's directory.
        for target in text.split("](").skip(1) {
            let target = target.split([')', '#', ' ']).next().unwrap_or_default();
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let dir = page.parent().expect("page dir");
            if !dir.join(target).exists() {
                missing.push(format!("{}: link {target}", page.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs name paths that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn docs_serve_their_readers_not_the_project_history() {
    const HISTORY: [&str; 12] = [
        "the issue",
        "issues were",
        "issue #",
        "old system",
        "python original",
        "system we replace",
        "decision for",
        "for the lead",
        "wave 2",
        "branch `",
        "design log",
        "as the issue",
    ];
    let mut found = Vec::new();
    for page in doc_pages() {
        let text = read(&page).to_lowercase();
        for phrase in HISTORY {
            if text.contains(phrase) {
                found.push(format!("{}: {phrase:?}", page.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "project-history wording in docs:\n{}",
        found.join("\n")
    );
}
