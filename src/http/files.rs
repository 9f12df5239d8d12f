//! `GET /api/files?path=ABS` — a read-only look at the server's files, inside the allowed roots
//! (and the run worktrees under `<data_dir>/worktrees`) only.
//!
//! The path is resolved by the kernel (`canonicalize`: `..` and every symlink followed) and the
//! result must lie inside a root; the file actually opened is checked again through
//! `/proc/self/fd`, so a symlink swapped in after the check is caught too. A directory is listed;
//! a text file comes back as JSON (capped); a binary one as a download (`&download=1`).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection};

use super::json::{ok_json, raw_query, reject, Query};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate::inside_roots;

/// Text returned at most; the rest is cut and flagged.
const TEXT_MAX_BYTES: u64 = 1 << 20;
/// A download larger than this is refused (it is read into memory).
const DOWNLOAD_MAX_BYTES: u64 = 16 << 20;
/// Directory entries listed at most.
const ENTRIES_MAX: usize = 5000;

pub fn routes(state: &AppState) -> warp::filters::BoxedFilter<(Response,)> {
    warp::path!("api" / "files")
        .and(warp::get())
        .and(super::json::with_state(state))
        .and(raw_query())
        .and_then(files)
        .boxed()
}

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    /// `dir` | `file` | `symlink` | `other`
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    /// For a symlink: whether it leads somewhere inside the roots (else it cannot be opened here).
    #[serde(skip_serializing_if = "Option::is_none")]
    inside: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Listing {
    Dir {
        path: String,
        parent: Option<String>,
        entries: Vec<Entry>,
        truncated: bool,
    },
    File {
        path: String,
        size: u64,
        binary: bool,
        /// The text (absent for a binary file: fetch it with `&download=1`).
        content: Option<String>,
        truncated: bool,
    },
}

enum Found {
    Json(Listing),
    Bytes(String, Vec<u8>),
}

fn roots(state: &AppState) -> Vec<PathBuf> {
    let mut roots = state.config.allowed_roots.clone();
    let worktrees = crate::isolation::worktrees_dir(&state.config.data_dir);
    if let Ok(w) = std::fs::canonicalize(worktrees) {
        roots.push(w);
    }
    roots
}

fn outside(shown: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "outside_roots",
        format!("path {shown:?} is outside the allowed roots (setting allowed_roots)"),
    )
    .with_field("path")
}

async fn files(state: AppState, raw: String) -> Result<Response, Rejection> {
    let q = Query::parse(&raw, &["path", "download"]).map_err(reject)?;
    let Some(path) = q.str("path").map(str::to_string) else {
        return Err(reject(
            ApiError::bad_request("query parameter path is required (an absolute path)")
                .with_field("path"),
        ));
    };
    let download = matches!(q.str("download"), Some("1" | "true"));
    // One blocking hop for both: the roots are canonicalised, the path looked up.
    let found = tokio::task::spawn_blocking(move || look(&path, &roots(&state), download))
        .await
        .map_err(|e| reject(ApiError::bad_request(format!("aborted: {e}"))))?
        .map_err(reject)?;
    Ok(match found {
        Found::Json(l) => ok_json(&l),
        Found::Bytes(name, bytes) => {
            let mut resp = Response::new(bytes.into());
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            let safe: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_graphic() && c != '"' && c != '\\' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
    })
}

/// Blocking: resolves, checks and reads `path`.
fn look(path: &str, roots: &[PathBuf], download: bool) -> Result<Found, ApiError> {
    if !path.starts_with('/') {
        return Err(ApiError::validation("path", "must be an absolute path"));
    }
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        // Say "outside" rather than "missing" for what lies outside: no probing beyond the roots.
        Err(_) if !inside_roots(Path::new(path), roots) => return Err(outside(path)),
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{path:?} does not exist"),
            ))
        }
    };
    if !inside_roots(&canonical, roots) {
        return Err(outside(path));
    }
    let shown = canonical.display().to_string();
    if canonical.is_dir() {
        return list(&canonical, roots).map(Found::Json);
    }
    let mut file = std::fs::File::open(&canonical)
        .map_err(|e| ApiError::forbidden(format!("{shown:?} cannot be read: {e}")))?;
    // What was opened, not what was checked: a symlink swapped in meanwhile is caught here.
    use std::os::fd::AsRawFd;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|e| ApiError::forbidden(format!("{shown:?}: {e}")))?;
    if !inside_roots(&opened, roots) {
        return Err(outside(path));
    }
    let meta = file
        .metadata()
        .map_err(|e| ApiError::forbidden(format!("{shown:?}: {e}")))?;
    if !meta.is_file() {
        return Err(ApiError::validation(
            "path",
            format!("{shown:?} is not a regular file or directory"),
        ));
    }
    let size = meta.len();
    let cap = if download {
        DOWNLOAD_MAX_BYTES
    } else {
        TEXT_MAX_BYTES
    };
    if download && size > cap {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{shown:?} is {size} bytes; downloads here are capped at {cap} bytes"),
        ));
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| ApiError::forbidden(format!("{shown:?} cannot be read: {e}")))?;
    let name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if download {
        return Ok(Found::Bytes(name, bytes));
    }
    let truncated = size > bytes.len() as u64;
    let text = as_text(&bytes, truncated);
    Ok(Found::Json(Listing::File {
        path: shown,
        size,
        binary: text.is_none(),
        content: text,
        truncated,
    }))
}

/// The bytes as text, or `None` if they look binary (a NUL, or not UTF-8 — allowing a
/// character cut in half at a truncation point).
fn as_text(bytes: &[u8], truncated: bool) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s.to_string()),
        Err(e) if truncated && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

fn list(dir: &Path, roots: &[PathBuf]) -> Result<Listing, ApiError> {
    let shown = dir.display().to_string();
    let read = std::fs::read_dir(dir)
        .map_err(|e| ApiError::forbidden(format!("{shown:?} cannot be listed: {e}")))?;
    let mut entries = Vec::new();
    let mut truncated = false;
    for entry in read.flatten() {
        if entries.len() >= ENTRIES_MAX {
            truncated = true;
            break;
        }
        let Ok(ft) = entry.file_type() else { continue };
        let (kind, inside_roots) = if ft.is_symlink() {
            let target = std::fs::canonicalize(entry.path());
            (
                "symlink",
                Some(target.is_ok_and(|t| inside_roots(&t, roots))),
            )
        } else if ft.is_dir() {
            ("dir", None)
        } else if ft.is_file() {
            ("file", None)
        } else {
            ("other", None)
        };
        let size = if ft.is_file() {
            entry.metadata().map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind,
            size,
            inside: inside_roots,
        });
    }
    entries.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    let parent = dir
        .parent()
        .filter(|p| inside_roots(p, roots))
        .map(|p| p.display().to_string());
    Ok(Listing::Dir {
        path: shown,
        parent,
        entries,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cut_mid_character_is_still_text_but_nul_is_binary() {
        let s = "héllo".as_bytes();
        assert_eq!(as_text(&s[..2], true).as_deref(), Some("h"));
        assert_eq!(as_text(&s[..2], false), None);
        assert_eq!(as_text(b"a\0b", false), None);
        assert_eq!(as_text(b"plain", false).as_deref(), Some("plain"));
    }
}
