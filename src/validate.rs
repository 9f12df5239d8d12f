//! Checks shared by routes and actors (a session's directory, a run's project directory): one
//! place, so a terminal and a run agree on what an allowed directory is.

use std::path::{Path, PathBuf};

use crate::error::ApiError;
use crate::pty;

/// Canonicalises a working directory and checks that it is an existing directory inside the
/// allowed roots; errors name `field`. `None` is the home directory when it is inside the
/// roots, else the first root. Blocking (filesystem).
pub fn check_dir(field: &str, dir: Option<&str>, roots: &[PathBuf]) -> Result<PathBuf, ApiError> {
    let Some(dir) = dir else {
        return default_dir(field, roots);
    };
    let requested = PathBuf::from(dir);
    let shown = requested.display().to_string();
    let canonical = std::fs::canonicalize(&requested)
        .map_err(|_| ApiError::validation(field, format!("{shown:?} does not exist")))?;
    if !canonical.is_dir() {
        return Err(ApiError::validation(
            field,
            format!("{shown:?} is not a directory"),
        ));
    }
    if !inside_roots(&canonical, roots) {
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

/// The directory a session starts in when the client named none.
fn default_dir(field: &str, roots: &[PathBuf]) -> Result<PathBuf, ApiError> {
    let home = std::fs::canonicalize(pty::home_dir()).ok();
    let inside = |d: &PathBuf| d.is_dir() && inside_roots(d, roots);
    if let Some(home) = home.filter(inside) {
        return Ok(home);
    }
    match roots.first().and_then(|r| std::fs::canonicalize(r).ok()) {
        Some(first) if first.is_dir() => Ok(first),
        _ => Err(ApiError::validation(
            field,
            "not given, and neither the home directory nor the first allowed root is a usable \
             directory inside the allowed roots; pass it explicitly",
        )),
    }
}

/// Whether a canonical `path` lies inside one of the allowed `roots` (component-wise: `/srv/a`
/// is not inside `/srv/ab`). The one test every route and actor uses.
pub fn inside_roots(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

/// `memory_max_bytes` and `pids_max` (a terminal request's, an agent definition's): positive
/// integers within sane bounds (`pty::caps`); errors name the field. Whether this server can
/// enforce them is decided where the session starts (`Lifecycle::caps_unenforceable`).
pub fn check_caps(
    memory_max_bytes: Option<i64>,
    pids_max: Option<i64>,
) -> Result<pty::Caps, ApiError> {
    use pty::caps::{MEMORY_MAX_BYTES_MAX, MEMORY_MAX_BYTES_MIN, PIDS_MAX_MAX};
    let within = |field: &str, v: Option<i64>, min: u64, max: u64| match v {
        None => Ok(None),
        Some(n) if n >= 0 && (min..=max).contains(&(n as u64)) => Ok(Some(n as u64)),
        Some(n) => Err(ApiError::validation(
            field,
            format!("must be an integer from {min} to {max}, got {n}"),
        )),
    };
    Ok(pty::Caps {
        memory_max_bytes: within(
            "memory_max_bytes",
            memory_max_bytes,
            MEMORY_MAX_BYTES_MIN,
            MEMORY_MAX_BYTES_MAX,
        )?,
        pids_max: within("pids_max", pids_max, 1, PIDS_MAX_MAX)?,
    })
}

/// Most variables a session's or agent's env may set.
const ENV_MAX: usize = 256;

/// A session's or agent's env: at most [`ENV_MAX`] variables, names `[A-Za-z_][A-Za-z0-9_]*`,
/// values without NUL. Names are the user's own input, not secrets; values are never echoed.
pub fn check_env(vars: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    if vars.len() > ENV_MAX {
        return Err(ApiError::validation(
            "env",
            format!("at most {ENV_MAX} variables, got {}", vars.len()),
        ));
    }
    for (k, v) in vars {
        if !is_env_name(k) {
            return Err(ApiError::validation(
                "env",
                format!("variable name {k:?} must match [A-Za-z_][A-Za-z0-9_]*"),
            ));
        }
        if v.contains('\0') {
            return Err(ApiError::validation(
                &format!("env.{k}"),
                "value must not contain a NUL byte",
            ));
        }
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}
