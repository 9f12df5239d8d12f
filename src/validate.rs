//! Checks shared by routes and actors (a session's directory, a run's project directory): one
//! place, so a terminal and a run agree on what an allowed directory is.

use std::path::PathBuf;

use crate::error::ApiError;
use crate::pty;

/// Canonicalises a working directory (`None`: the home directory) and checks that it is an
/// existing directory inside the allowed roots; errors name `field`. Blocking (filesystem).
pub fn check_dir(field: &str, dir: Option<&str>, roots: &[PathBuf]) -> Result<PathBuf, ApiError> {
    let requested = dir.map(PathBuf::from).unwrap_or_else(pty::home_dir);
    let shown = requested.display().to_string();
    let canonical = std::fs::canonicalize(&requested)
        .map_err(|_| ApiError::validation(field, format!("{shown:?} does not exist")))?;
    if !canonical.is_dir() {
        return Err(ApiError::validation(
            field,
            format!("{shown:?} is not a directory"),
        ));
    }
    if !roots.iter().any(|root| canonical.starts_with(root)) {
        let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(ApiError::validation(
            field,
            format!(
                "{shown:?} is outside the allowed roots ({}; setting allowed_roots)",
                roots.join(":")
            ),
        ));
    }
    Ok(canonical)
}
