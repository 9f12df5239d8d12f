//! The web UI: only files from the set compiled into the binary (`web/dist`, built by build.rs),
//! looked up by exact name.
//!
//! No filesystem path is ever built from a URL, so `//etc/passwd`, `..%2f`, backslashes or NUL
//! bytes can only miss the table (404). The UI's own page paths (`/terminals/7`, `/tasks/3`) are
//! answered with `index.html` so deep links survive a reload; only paths whose first segment is
//! one of the UI's routes and whose segments are plain words qualify. Everything else, and any
//! `/api/...` path, stays a JSON 404.

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
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
    let segs: Vec<&str> = path.split('/').collect();
    UI_ROUTES.contains(&segs[0])
        && segs.len() <= 4
        && segs.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether an `Accept-Encoding` value admits gzip (`gzip;q=0` refuses it).
fn accepts_gzip(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused = it.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    warp::get()
        .and(warp::path::full())
        .and(warp::header::optional::<String>("accept-encoding"))
        .and_then(|path: FullPath, accept: Option<String>| async move {
            let Some(path) = path.as_str().strip_prefix('/') else {
                return Err::<Response, Rejection>(warp::reject::not_found());
            };
            let name = if path.is_empty() || is_ui_page(path) {
                "index.html"
            } else {
                path
            };
            let Some((content_type, plain)) = lookup(name) else {
                return Err(warp::reject::not_found());
            };
            // web/scripts/postbuild.mjs stores `name.gz` beside each text file.
            let gzipped = accepts_gzip(accept.as_deref())
                .then(|| Ui::get(&format!("{name}.gz")))
                .flatten();
            let (bytes, encoding) = match gzipped {
                Some(file) => (file.data, Some("gzip")),
                None => (plain, None),
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
            headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
            if let Some(enc) = encoding {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static(enc));
            }
            Ok(resp)
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::{accepts_gzip, is_ui_page};

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        for a in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1.0, gzip;q=0.8",
            "*",
            "GZIP",
        ] {
            assert!(accepts_gzip(Some(a)), "{a}");
        }
        for a in ["", "br", "identity", "gzip;q=0", "deflate, gzip;q=0.0"] {
            assert!(!accepts_gzip(Some(a)), "{a}");
        }
        assert!(!accepts_gzip(None));
    }

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
