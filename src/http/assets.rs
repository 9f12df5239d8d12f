//! Static UI assets: only from the set compiled into the binary, looked up by exact name.
//!
//! No filesystem path is ever built from a URL, so `//etc/passwd`, `..%2f`, backslashes or NUL
//! bytes can only miss the table (404). The set is empty until the web UI lands; it then fills
//! [`ASSETS`] (e.g. from rust-embed) and nothing else here changes.

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use warp::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection};

/// `(name, content type, bytes)`; `index.html` is served for `/`.
const ASSETS: &[(&str, &str, &[u8])] = &[];

/// The asset called exactly `name`.
pub fn lookup(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, ct, bytes)| (*ct, *bytes))
}

pub fn routes() -> warp::filters::BoxedFilter<(Response,)> {
    warp::get()
        .and(warp::path::full())
        .and_then(|path: FullPath| async move {
            let name = match path.as_str().strip_prefix('/') {
                Some("") => "index.html",
                Some(name) => name,
                None => return Err::<Response, Rejection>(warp::reject::not_found()),
            };
            let Some((content_type, bytes)) = lookup(name) else {
                return Err(warp::reject::not_found());
            };
            let mut resp = Response::new(bytes.into());
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            resp.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(resp)
        })
        .boxed()
}
