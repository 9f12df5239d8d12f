//! The embedded web UI as HTTP sees it (no browser): the page and its bundles come from the
//! binary with the right types and caching, the UI's deep links answer with the page, and
//! nothing else does — unknown `/api/...` paths and missing files stay JSON 404s.

mod common;
use common::TestServer;

/// The `src="/…"` and `href="/…"` files `index.html` names.
fn referenced_files(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"/", "href=\"/"] {
        for part in html.split(attr).skip(1) {
            if let Some(end) = part.find('"') {
                if !part[..end].is_empty() {
                    out.push(part[..end].to_string());
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn the_page_and_its_bundles_are_served_from_the_binary() {
    let mut s = TestServer::start().await;
    s.token = None; // a visitor before login
    let page = s.get("/").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-cache");
    assert!(page.text.contains("<div id=\"app\">"), "{}", page.text);
    // CSP: script-src 'self' — every script is a file, none inline.
    for tag in page.text.split("<script").skip(1) {
        let open = &tag[..tag.find('>').expect("tag closes")];
        assert!(
            open.contains("src=\"/"),
            "inline script in index.html: <script{open}>"
        );
    }
    let files = referenced_files(&page.text);
    assert!(files.iter().any(|f| f.ends_with(".js")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".css")), "{files:?}");
    for f in &files {
        let r = s.get(&format!("/{f}")).await;
        assert_eq!(r.status, 200, "/{f}");
        let ct = r.headers["content-type"].to_str().unwrap().to_string();
        if f.ends_with(".js") {
            assert_eq!(ct, "text/javascript; charset=utf-8", "/{f}");
        } else if f.ends_with(".css") {
            assert_eq!(ct, "text/css; charset=utf-8", "/{f}");
        }
        if f.starts_with("assets/") {
            assert_eq!(
                r.headers["cache-control"], "public, max-age=31536000, immutable",
                "/{f}: content-hashed bundles are cached for good"
            );
        }
        assert!(!r.text.is_empty(), "/{f} is empty");
    }
    s.stop().await;
}

#[tokio::test]
async fn deep_links_get_the_page_and_everything_else_stays_a_json_404() {
    let mut s = TestServer::start().await;
    let admin = s.token.take(); // pages need no credential
    let index = s.get("/").await.text;
    for path in [
        "/terminals",
        "/terminals/0b7c-12",
        "/tasks/42",
        "/agents/3",
        "/agent-sessions/abc_1",
        "/executions/9",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.text, index, "{path} should be the UI page");
    }
    s.token = admin; // with a credential, so a 404 is not hidden behind a 401
    for path in [
        "/api/nope",
        "/api/tasks/1/nope",
        "/assets/missing.js",
        "/tasks/1.js",
        "/nope",
        "/tasks/../../etc/passwd",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r.code(), "not_found", "{path}: {}", r.text);
        assert_ne!(r.text, index, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn bundles_are_sent_gzipped_to_browsers_that_accept_it() {
    let mut s = TestServer::start().await;
    s.token = None;
    let page = s.get("/").await.text;
    let js = referenced_files(&page)
        .into_iter()
        .find(|f| f.ends_with(".js"))
        .expect("a script");
    // reqwest here has no gzip decoding: the bytes arrive as sent.
    let plain = s.get(&format!("/{js}")).await;
    assert!(plain.headers.get("content-encoding").is_none());
    let gz = s
        .send(
            s.http
                .get(s.url(&format!("/{js}")))
                .header("accept-encoding", "gzip, deflate, br"),
        )
        .await;
    assert_eq!(gz.status, 200);
    assert_eq!(gz.headers["content-encoding"], "gzip");
    assert_eq!(gz.headers["vary"], "accept-encoding");
    assert_eq!(gz.headers["content-type"], "text/javascript; charset=utf-8");
    let body = s
        .http
        .get(s.url(&format!("/{js}")))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
    assert!(body.len() < plain.text.len(), "compressed is smaller");
    s.stop().await;
}
