//! The web UI: only files from the set compiled into the binary (`web/dist`, built by build.rs),
//! looked up by exact name.
//!
//! No filesystem path is ever built from a URL, so `//etc/passwd`, `..%2f`, backslashes or NUL
//! bytes can only miss the table (404). The UI's own page paths (`/terminals/7`, `/tasks/3`) are
//! answered with `index.html` so deep links survive a reload; only paths whose first segment is
//! one of the UI's routes and whose segments are plain words qualify. Everything else, and any
//! `/api/...` path, stays a JSON 404.

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
struct Ui;

/// First path segments the UI routes itself (keep in step with `web/src/main.tsx`).
const UI_ROUTES: &[&str] = &[
    "terminals",
    "agent-sessions",
    "agents",
    "tasks",
    "executions",
];

/// The asset called exactly `name`: its content type and bytes.
pub fn lookup(name: &str) -> Option<(String, std::borrow::Cow<'static, [u8]>)> {
    let file = Ui::get(name)?;
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    Some((content_type, file.data))
}

/// Whether `path` (without its leading `/`) is one of the UI's own pages.
fn is_ui_page(path: &str) -> bool {
    let mut segs = path.split('/');
    let first_is_route = segs.next().is_some_and(|s| UI_ROUTES.contains(&s));
    first_is_route
        && path.split('/').count() <= 4
        && path.split('/').all(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    warp::get()
        .and(warp::path::full())
        .and_then(|path: FullPath| async move {
            let Some(path) = path.as_str().strip_prefix('/') else {
                return Err::<Response, Rejection>(warp::reject::not_found());
            };
            let name = if path.is_empty() || is_ui_page(path) {
                "index.html"
            } else {
                path
            };
            let Some((content_type, bytes)) = lookup(name) else {
                return Err(warp::reject::not_found());
            };
            // Vite names bundles by content hash: they never change, so cache them for good;
            // index.html names the current bundles, so it is revalidated every time.
            let cache = if name.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let body = match bytes {
                std::borrow::Cow::Borrowed(b) => bytes::Bytes::from_static(b),
                std::borrow::Cow::Owned(v) => bytes::Bytes::from(v),
            };
            let mut resp = Response::new(body.into());
            let headers = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                headers.insert(CONTENT_TYPE, v);
            }
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
            Ok(resp)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::is_ui_page;

    #[test]
    fn only_plain_ui_routes_are_pages() {
        for p in [
            "tasks",
            "tasks/12",
            "terminals/abc-123",
            "agent-sessions/x_1",
        ] {
            assert!(is_ui_page(p), "{p}");
        }
        for p in [
            "api/tasks",
            "api",
            "metrics",
            "tasks/../etc",
            "tasks//1",
            "tasks/%2e%2e",
            "tasks/a.js",
            "etc/passwd",
            "assets/missing.js",
            "tasks/1/2/3/4",
            "",
        ] {
            assert!(!is_ui_page(p), "{p}");
        }
    }
}
